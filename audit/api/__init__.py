"""HTTP interface of the audit log."""
