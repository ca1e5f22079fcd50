"""ISO/IEC 42001:2023 Annex A rows of catalog 2026.1: control objectives and control titles.

Only titles and our own one-line descriptions (the standard's text is not
reproduced). Controls that bear on the oversight of one system become
obligations of high-risk systems (voluntary; mapped in ``crosswalk.py``); the
objectives and organisation-wide controls are reference rows.
Refs follow ``ISO42001-A.<clause>[.<control>]``.
"""

from __future__ import annotations

from typing import Any


def _ctl(ref: str, group: str, level: str, title: str, summary: str, per_system: bool = False,
         evidence: str = "") -> dict[str, Any]:
    return {
        "ref": f"ISO42001-{ref}", "group": group, "level": level, "title": title, "summary": summary, "duty": "",
        "tiers": ["high"] if per_system else [], "conditions": {}, "evidence": evidence, "milestone": "",
        "annex_i": False,
    }


ISO_42001: list[dict[str, Any]] = [
    _ctl("A.2", "A.2", "objective", "Policies related to AI", "Management direction and support for AI systems."),
    _ctl("A.2.2", "A.2", "control", "AI policy", "A documented policy for the development or use of AI systems."),
    _ctl("A.2.3", "A.2", "control", "Alignment with other organisational policies",
         "How other policies apply to, or are affected by, AI is determined."),
    _ctl("A.2.4", "A.2", "control", "Review of the AI policy", "The AI policy is reviewed at planned intervals."),
    _ctl("A.3", "A.3", "objective", "Internal organisation", "Accountability for responsible AI is established."),
    _ctl("A.3.2", "A.3", "control", "AI roles and responsibilities",
         "Roles and responsibilities for AI are defined and allocated.", True, "reviewer_competence"),
    _ctl("A.3.3", "A.3", "control", "Reporting of concerns",
         "A process lets people report concerns about the organisation's role with respect to an AI system.",
         True, "incident_register"),
    _ctl("A.4", "A.4", "objective", "Resources for AI systems",
         "Resources for the AI system are accounted for in order to understand and address risks."),
    _ctl("A.4.2", "A.4", "control", "Resource documentation", "Resources needed for AI activities are documented."),
    _ctl("A.4.3", "A.4", "control", "Data resources", "Data resources used are documented."),
    _ctl("A.4.4", "A.4", "control", "Tooling resources", "Tooling resources used are documented."),
    _ctl("A.4.5", "A.4", "control", "System and computing resources", "Computing resources used are documented."),
    _ctl("A.4.6", "A.4", "control", "Human resources",
         "The people and competences involved are documented.", True, "reviewer_competence"),
    _ctl("A.5", "A.5", "objective", "Assessing impacts of AI systems",
         "Impacts on individuals, groups and societies are assessed throughout the lifecycle."),
    _ctl("A.5.2", "A.5", "control", "AI system impact assessment process",
         "A process assesses the potential consequences of the AI system.", True, "fria"),
    _ctl("A.5.3", "A.5", "control", "Documentation of AI system impact assessments",
         "Impact assessment results are documented and retained.", True, "fria"),
    _ctl("A.5.4", "A.5", "control", "Assessing AI system impact on individuals or groups of individuals",
         "Impacts on individuals and groups are assessed.", True, "fria"),
    _ctl("A.5.5", "A.5", "control", "Assessing societal impacts of AI systems",
         "Impacts on societies are assessed."),
    _ctl("A.6", "A.6", "objective", "AI system life cycle",
         "Responsible development and lifecycle management of AI systems."),
    _ctl("A.6.1.2", "A.6", "control", "Objectives for responsible development of AI system",
         "Objectives guiding responsible development are identified and documented."),
    _ctl("A.6.1.3", "A.6", "control", "Processes for responsible AI system design and development",
         "Processes for responsible design and development are defined."),
    _ctl("A.6.2.2", "A.6", "control", "AI system requirements and specification",
         "Requirements for new systems or changes are specified."),
    _ctl("A.6.2.3", "A.6", "control", "Documentation of AI system design and development",
         "Design and development are documented."),
    _ctl("A.6.2.4", "A.6", "control", "AI system verification and validation",
         "Verification and validation measures and their criteria are defined.", True, "kpi_snapshot"),
    _ctl("A.6.2.5", "A.6", "control", "AI system deployment", "A deployment plan exists and requirements are met."),
    _ctl("A.6.2.6", "A.6", "control", "AI system operation and monitoring",
         "Operation and monitoring elements (repairs, updates, support) are defined.", True, "intervention_points"),
    _ctl("A.6.2.7", "A.6", "control", "AI system technical documentation",
         "Technical documentation for each relevant category of interested party is provided.", True, "dossier"),
    _ctl("A.6.2.8", "A.6", "control", "AI system recording of event logs",
         "The lifecycle phases in which event logs are recorded are determined, at least during use.", True,
         "audit_chain"),
    _ctl("A.7", "A.7", "objective", "Data for AI systems",
         "The role and impacts of data in AI systems are understood."),
    _ctl("A.7.2", "A.7", "control", "Data for development and enhancement of AI system",
         "Data management processes are defined."),
    _ctl("A.7.3", "A.7", "control", "Acquisition of data", "How data are acquired and selected is documented."),
    _ctl("A.7.4", "A.7", "control", "Quality of data for AI systems",
         "Data quality requirements are defined and met.", True),
    _ctl("A.7.5", "A.7", "control", "Data provenance", "The provenance of data is recorded over the lifecycle."),
    _ctl("A.7.6", "A.7", "control", "Data preparation", "Criteria for selecting and preparing data are defined."),
    _ctl("A.8", "A.8", "objective", "Information for interested parties of AI systems",
         "Interested parties have what they need to understand and assess risks."),
    _ctl("A.8.2", "A.8", "control", "System documentation and information for users",
         "Users receive the information they need.", True, "intervention_points"),
    _ctl("A.8.3", "A.8", "control", "External reporting",
         "Interested parties can report adverse impacts of the system."),
    _ctl("A.8.4", "A.8", "control", "Communication of incidents",
         "A plan communicates incidents to users of the system.", True, "incident_register"),
    _ctl("A.8.5", "A.8", "control", "Information for interested parties",
         "Obligations to report information about the system to interested parties are determined."),
    _ctl("A.9", "A.9", "objective", "Use of AI systems", "AI systems are used responsibly and per policy."),
    _ctl("A.9.2", "A.9", "control", "Processes for responsible use of AI systems",
         "Processes for the responsible use of AI systems are defined.", True, "intervention_points"),
    _ctl("A.9.3", "A.9", "control", "Objectives for responsible use of AI system",
         "Objectives guiding responsible use are identified."),
    _ctl("A.9.4", "A.9", "control", "Intended use of the AI system",
         "The system is used according to its intended uses and documentation.", True),
    _ctl("A.10", "A.10", "objective", "Third-party and customer relationships",
         "Responsibilities and risks are understood when third parties are involved."),
    _ctl("A.10.2", "A.10", "control", "Allocating responsibilities",
         "Responsibilities are allocated between the organisation, partners, suppliers and customers."),
    _ctl("A.10.3", "A.10", "control", "Suppliers", "Supplier services, products or materials fit the approach."),
    _ctl("A.10.4", "A.10", "control", "Customers", "Customer expectations and needs are considered."),
]
