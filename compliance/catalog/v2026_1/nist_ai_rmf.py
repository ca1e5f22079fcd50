"""NIST AI RMF 1.0 rows of catalog 2026.1: functions, categories, oversight-relevant subcategories.

Functions and categories are reference rows (structure); the subcategories most
relevant to human oversight become obligations of high-risk systems, voluntary
alongside the EU duties they map to (see ``crosswalk.py``). Refs follow
``NIST-<FUNCTION>-<category>[.<subcategory>]``. Paraphrased from NIST AI 100-1.
"""

from __future__ import annotations

from typing import Any


def _ref(ref: str, group: str, level: str, title: str, summary: str, tiers: list[str] | None = None,
         evidence: str = "") -> dict[str, Any]:
    return {
        "ref": ref, "group": group, "level": level, "title": title, "summary": summary, "duty": "",
        "tiers": tiers or [], "conditions": {}, "evidence": evidence, "milestone": "", "annex_i": False,
    }


_FUNCTIONS = [
    ("GOVERN", "A culture of risk management is cultivated and present across the organisation."),
    ("MAP", "Context is recognised and risks related to the context are identified."),
    ("MEASURE", "Identified risks are assessed, analysed or tracked."),
    ("MANAGE", "Risks are prioritised and acted upon based on their projected impact."),
]

_CATEGORIES = [
    ("GOVERN", "1", "Policies, processes and procedures",
     "Policies and practices for mapping, measuring and managing AI risks are in place, transparent and "
     "implemented."),
    ("GOVERN", "2", "Accountability and training",
     "Structures make the right teams accountable, empowered and trained for AI risk management."),
    ("GOVERN", "3", "Workforce diversity and oversight roles",
     "Diverse teams inform risk management, and roles for human-AI configurations are defined."),
    ("GOVERN", "4", "Risk culture",
     "Teams are committed to a culture that considers and communicates AI risk."),
    ("GOVERN", "5", "Stakeholder engagement",
     "Processes engage relevant AI actors and affected communities."),
    ("GOVERN", "6", "Third-party risk",
     "Risks from third-party software, data and supply chains are addressed."),
    ("MAP", "1", "Context", "The context of use is established and understood."),
    ("MAP", "2", "Categorisation", "The AI system is categorised, including its tasks and knowledge limits."),
    ("MAP", "3", "Capabilities, benefits and costs",
     "Capabilities, targeted usage, goals, expected benefits and costs are understood."),
    ("MAP", "4", "Component risks", "Risks and benefits are mapped for all components, third-party ones included."),
    ("MAP", "5", "Impacts", "Impacts on individuals, groups, communities, organisations and society are described."),
    ("MEASURE", "1", "Methods and metrics", "Appropriate methods and metrics are identified and applied."),
    ("MEASURE", "2", "Trustworthiness evaluation",
     "Systems are evaluated for trustworthy characteristics, fairness (2.11) included."),
    ("MEASURE", "3", "Tracking over time", "Mechanisms track identified risks over time."),
    ("MEASURE", "4", "Feedback on measurement", "Feedback on the efficacy of measurement is gathered and assessed."),
    ("MANAGE", "1", "Prioritise and respond",
     "Risks from the MAP and MEASURE functions are prioritised, responded to and managed."),
    ("MANAGE", "2", "Maximise benefit", "Strategies maximise benefits and minimise negative impacts."),
    ("MANAGE", "3", "Third-party risk", "Risks and benefits from third-party entities are managed."),
    ("MANAGE", "4", "Post-deployment monitoring",
     "Risk treatments, including response, recovery and communication, are documented and monitored."),
]

# The subcategories most relevant to human oversight (catalog table §4).
_SUBCATEGORIES = [
    ("GOVERN", "2.1", "Roles and reporting lines documented",
     "Roles, responsibilities and lines of communication for mapping, measuring and managing AI risk are "
     "documented and clear across the organisation.", ""),
    ("GOVERN", "2.2", "Staff trained in AI risk management",
     "Personnel and partners receive AI risk management training suited to their duties.",
     "reviewer_competence"),
    ("GOVERN", "3.2", "Human-AI oversight roles defined",
     "Policies define roles and responsibilities for human-AI configurations and the oversight of AI systems.",
     "intervention_points"),
    ("GOVERN", "4.1", "Critical thinking and safety-first mindset",
     "Practices foster critical thinking and a safety-first mindset in design, development and use.", ""),
    ("MAP", "2.2", "Knowledge limits and oversight of output documented",
     "The system's knowledge limits and how humans may use and oversee its output are documented.",
     "intervention_points"),
    ("MAP", "3.4", "Operator proficiency defined and assessed",
     "Processes for operator and practitioner proficiency with the system are defined, assessed and "
     "documented.", "reviewer_competence"),
    ("MAP", "3.5", "Human oversight processes defined",
     "Processes for human oversight are defined, assessed and documented in line with organisational policy.",
     "intervention_points"),
    ("MEASURE", "2.8", "Transparency and accountability risks examined",
     "Risks associated with transparency and accountability are examined and documented.", ""),
    ("MEASURE", "2.9", "Model explained, output interpreted in context",
     "The model is explained, validated and documented, and its output interpreted within its context.", ""),
    ("MEASURE", "2.11", "Fairness and bias evaluated",
     "Fairness and bias are evaluated and the results documented.", "bias_audits"),
    ("MEASURE", "3.3", "Feedback and appeal channels",
     "Channels let end users and affected communities report problems and appeal outcomes.", ""),
    ("MANAGE", "1.3", "Responses to high-priority risks",
     "Responses to the highest-priority risks are developed, planned and documented.", ""),
    ("MANAGE", "2.4", "Supersede, disengage or deactivate",
     "Mechanisms exist, with assigned responsibilities, to supersede, disengage or deactivate systems whose "
     "performance is inconsistent with their intended use.", "intervention_points"),
    ("MANAGE", "4.1", "Post-deployment monitoring",
     "Post-deployment monitoring plans cover user input, appeal and override, decommissioning, incident "
     "response, recovery and change management.", "kpi_snapshot"),
    ("MANAGE", "4.3", "Incidents communicated and tracked",
     "Incidents and errors are communicated to relevant actors, and tracking, response and recovery are "
     "followed and documented.", "incident_register"),
]

NIST_AI_RMF: list[dict[str, Any]] = [
    *[_ref(f"NIST-{fn}", fn, "function", fn.title(), summary) for fn, summary in _FUNCTIONS],
    *[_ref(f"NIST-{fn}-{cat}", f"{fn} {cat}", "category", title, summary) for fn, cat, title, summary in _CATEGORIES],
    *[
        _ref(f"NIST-{fn}-{sub}", f"{fn} {sub.split('.')[0]}", "subcategory", title, summary, ["high"], evidence)
        for fn, sub, title, summary, evidence in _SUBCATEGORIES
    ],
]
