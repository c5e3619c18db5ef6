"""Benchmark of the service: in-process limit, HTTP load, memory, start.

Run it from the project root with the project's virtualenv::

    .venv/bin/python -m bench            # full run, a few minutes
    .venv/bin/python -m bench --quick    # about a minute

It prints Markdown tables (ready to paste into docs/performance.md), every
figure next to its ratio to a reference measured in the same run, and
whether each performance target holds.
"""
