"""Benchmarks: `make bench` runs them and writes bench/results/<name>.json and a markdown table."""
