"""Writes of the reviews app, one module per area (systems, people, ingest, queue, ...).

Every function here is keyword-only, atomic, and records its audit event in the
same transaction; views, admin actions, tasks and commands all call these.
"""
