"""Requirements catalog, version 2026.1: the data one migration loads (``0003_load_catalog_2026_1``).

Everything here is data: refs, paraphrased summaries, tiers, conditions, dates.
The code that decides what applies to a system reads these rows from the
database and never holds a date itself. A correction is a new version package
and a new data migration, never an edit of this one once it has shipped.

Summaries are our own paraphrases of the sources named in ``VERSION``; they are
orientation for compliance work, not the legal text.
"""

from compliance.catalog.v2026_1.crosswalk import CROSSWALK
from compliance.catalog.v2026_1.eu_ai_act import EU_AI_ACT
from compliance.catalog.v2026_1.iso_42001 import ISO_42001
from compliance.catalog.v2026_1.nist_ai_rmf import NIST_AI_RMF

VERSION = {
    "version": "2026.1",
    "title": "EU AI Act, NIST AI RMF 1.0 and ISO/IEC 42001 Annex A: oversight-relevant requirements",
    "published_on": "2026-11-24",
    "sources": (
        "EUR-Lex CELEX 32024R1689 (Regulation (EU) 2024/1689, OJ 12 July 2024); "
        "NIST AI 100-1 (AI RMF 1.0) and its Playbook; ISO/IEC 42001:2023 Annex A control titles."
    ),
    "notes": (
        "Both date sets are kept: the dates as published, and the dates reportedly set by the "
        "Digital Omnibus on AI (2026). The Omnibus also reportedly reworded Art. 4, 5, 10(5), 11(1) "
        "and 72(3). Due dates follow the amended set; switch with a new catalog version if it changes."
    ),
    "date_basis": "amended",
}

# Dates of application. ``original`` as published; ``amended`` as reportedly amended
# (equal to ``original`` where no amendment was reported).
MILESTONES = [
    {
        "key": "prohibitions",
        "title": "General provisions, AI literacy and prohibited practices",
        "applies": "Definitions, Art. 4 AI literacy, Art. 5 prohibited practices.",
        "original": "2025-02-02",
        "amended": "2025-02-02",
        "amendment_note": "New Art. 5(1) points reportedly apply from 2 December 2026.",
    },
    {
        "key": "gpai",
        "title": "General-purpose AI models, governance and penalties",
        "applies": "Art. 51-56 GPAI model duties, governance bodies, penalties.",
        "original": "2025-08-02",
        "amended": "2025-08-02",
        "amendment_note": "",
    },
    {
        "key": "annex-iii-regime",
        "title": "High-risk regime for Annex III systems",
        "applies": "Art. 6(2) and Art. 8-27 for Annex III systems, Art. 49, 71-73, 86.",
        "original": "2026-08-02",
        "amended": "2027-12-02",
        "amendment_note": "Reportedly postponed to 2 December 2027 by the Digital Omnibus on AI.",
    },
    {
        "key": "transparency",
        "title": "Transparency duties",
        "applies": "Art. 50 transparency duties of providers and deployers.",
        "original": "2026-08-02",
        "amended": "2026-08-02",
        "amendment_note": "",
    },
    {
        "key": "annex-i-regime",
        "title": "High-risk regime for Annex I products",
        "applies": "Art. 6(1): safety components of products under Annex I harmonisation law.",
        "original": "2027-08-02",
        "amended": "2028-08-02",
        "amendment_note": "Reportedly postponed to 2 August 2028 by the Digital Omnibus on AI.",
    },
]

__all__ = ["CROSSWALK", "EU_AI_ACT", "ISO_42001", "MILESTONES", "NIST_AI_RMF", "VERSION"]
