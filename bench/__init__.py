"""Benchmarks (not tests): each prints `figure <name> <value> goal <op><target> met|MISSED` lines."""
