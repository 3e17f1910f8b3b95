"""Intercept ingest: what bots and ad collectors push (sources, conversations, messages, ads),
and the analytics built on it."""
