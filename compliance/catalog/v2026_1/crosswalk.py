"""Crosswalk of catalog 2026.1: which rows of different frameworks cover the same ground.

NIST rows follow the "EU AI Act link" column of the reference table (a link to a
whole article, e.g. "14", expands to all its rows: ``AIA-14.*``). The ISO 42001
mapping is our own indicative reading of the control titles. Links are symmetric.
"""

from __future__ import annotations

CROSSWALK: list[tuple[str, list[str]]] = [
    # NIST AI RMF ↔ EU AI Act (reference table §4)
    ("NIST-GOVERN-2.1", ["AIA-26.2", "AIA-17.1.m"]),
    ("NIST-GOVERN-2.2", ["AIA-4", "AIA-26.2"]),
    ("NIST-GOVERN-3.2", ["AIA-14.3.*", "AIA-26.2"]),
    ("NIST-GOVERN-4.1", ["AIA-14.4.b"]),
    ("NIST-MAP-2.2", ["AIA-13.3.b", "AIA-14.4.a"]),
    ("NIST-MAP-3.4", ["AIA-26.2", "AIA-4"]),
    ("NIST-MAP-3.5", ["AIA-14.*"]),
    ("NIST-MEASURE-2.8", ["AIA-13.*"]),
    ("NIST-MEASURE-2.9", ["AIA-14.4.c", "AIA-86.1"]),
    ("NIST-MEASURE-2.11", ["AIA-10.2.f"]),
    ("NIST-MEASURE-3.3", ["AIA-26.11", "AIA-86.1"]),
    ("NIST-MANAGE-1.3", ["AIA-9.2.d"]),
    ("NIST-MANAGE-2.4", ["AIA-14.4.d", "AIA-14.4.e"]),
    ("NIST-MANAGE-4.1", ["AIA-26.5", "AIA-72.1"]),
    ("NIST-MANAGE-4.3", ["AIA-73.1", "AIA-26.5"]),
    # ISO/IEC 42001 Annex A ↔ EU AI Act (indicative)
    ("ISO42001-A.2.2", ["AIA-17.1"]),
    ("ISO42001-A.3.2", ["AIA-26.2", "AIA-17.1.m", "AIA-14.3.b", "NIST-GOVERN-2.1", "NIST-GOVERN-3.2"]),
    ("ISO42001-A.3.3", ["AIA-26.5", "AIA-73.1", "NIST-MEASURE-3.3"]),
    ("ISO42001-A.4.6", ["AIA-4", "AIA-26.2", "NIST-GOVERN-2.2", "NIST-MAP-3.4"]),
    ("ISO42001-A.5.2", ["AIA-27.1", "AIA-9.2.a"]),
    ("ISO42001-A.5.3", ["AIA-27.1", "AIA-6.4"]),
    ("ISO42001-A.5.4", ["AIA-27.1", "AIA-9.9"]),
    ("ISO42001-A.5.5", ["AIA-27.1"]),
    ("ISO42001-A.6.2.4", ["AIA-9.6", "AIA-15.3", "AIA-ANNEXIV.2.g"]),
    ("ISO42001-A.6.2.5", ["AIA-26.1"]),
    ("ISO42001-A.6.2.6", ["AIA-26.5", "AIA-72.1", "AIA-14.4.a", "NIST-MANAGE-4.1"]),
    ("ISO42001-A.6.2.7", ["AIA-11.1"]),
    ("ISO42001-A.6.2.8", ["AIA-12.1", "AIA-19.1", "AIA-26.6"]),
    ("ISO42001-A.7.2", ["AIA-10.2"]),
    ("ISO42001-A.7.4", ["AIA-10.3"]),
    ("ISO42001-A.7.5", ["AIA-10.2"]),
    ("ISO42001-A.7.6", ["AIA-10.2"]),
    ("ISO42001-A.8.2", ["AIA-13.3.b", "AIA-13.3.d"]),
    ("ISO42001-A.8.3", ["AIA-73.1"]),
    ("ISO42001-A.8.4", ["AIA-73.1", "AIA-26.5", "NIST-MANAGE-4.3"]),
    ("ISO42001-A.8.5", ["AIA-26.11", "AIA-50.1"]),
    ("ISO42001-A.9.2", ["AIA-26.1", "AIA-14.4.d"]),
    ("ISO42001-A.9.3", ["AIA-26.1"]),
    ("ISO42001-A.9.4", ["AIA-26.1", "AIA-13.3.b"]),
    ("ISO42001-A.10.2", ["AIA-26.5", "AIA-17.1.m"]),
]
