"""The append-only audit log: recording now; chain, checkpoints and proofs build on it."""
