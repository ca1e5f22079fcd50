"""Reads of the compliance app, one module per area (incidents, obligations, ...)."""
