"""skulens benchmarks: each module is a script (``python -m bench.NAME``); see bench/README.md."""
