"""Reads, with the async ORM: one module per concern, as in chat/services/."""
