"""Deployment settings, response headers, uploads and packet entry names."""
