"""Benchmarks run by `ghostdesk bench ...`; each compares ratios measured side by side."""
