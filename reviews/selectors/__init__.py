"""Reads of the reviews app, one module per area; object visibility lives in ``visibility``."""
