"""convex_notebook benchmark harness: see bench/run.py and bench/RESULTS.md."""
