"""Benchmark harness: sluice measured against the physical floor and the seed systems' methods.

    python -m bench                       # usage
    python -m bench glam --rows 1000000   # the GLAM aggregate import, see bench/README.md

Every benchmark runs all of its steps in one invocation, so that its ratios come from the same
machine state, and ends with one JSON line of its figures.
"""
