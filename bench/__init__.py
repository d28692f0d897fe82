"""Benchmarks: the cost of log(), CPU per delivered event, end to end rates, outages, idle.

Run ``python -m bench`` (full) or ``python -m bench --quick`` from the repository root.
"""
