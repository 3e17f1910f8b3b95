"""Schema fuzzing with Schemathesis (docs/fuzzing.md)."""
