"""Dramatiq actors; importing this package binds nothing (see actors.broker.setup)."""
