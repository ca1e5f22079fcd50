"""Writes of the quality app: gold items and their servings, calibration sessions, competence,
reviewer snapshots, threshold application. Each module is one area; each state change is atomic
and writes its audit event in the same transaction.
"""
