"""Placeholder replaced by the sandbox work."""
