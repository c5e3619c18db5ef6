"""Deployment recipes and the local cluster that runs them as processes."""
