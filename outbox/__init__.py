"""Transactional outbox: background tasks written in the transaction of the change that needs
them, and handed to the broker after it commits."""
