"""Compliance workspace models (requirements catalog, obligations, incidents): see later issues."""
