"""Operator commands of intercept ingest."""
