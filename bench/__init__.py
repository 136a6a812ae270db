"""findings-router benchmarks: `python -m bench` (or `make bench`) runs them all and writes bench/results.json.

Every headline figure is a ratio of two things measured side by side in the same run, interleaved, repeated,
and summarized by the median, because absolute times on a shared machine mean little. See docs/performance.md.
"""
