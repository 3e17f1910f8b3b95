"""Admin screens (filled in below)."""
