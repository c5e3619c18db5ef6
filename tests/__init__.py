"""Tests of the service, run by pytest."""
