"""EU AI Act rows of catalog 2026.1 (paraphrased; Regulation (EU) 2024/1689).

Each row: ``ref`` (``AIA-<article>.<paragraph>.<point>``, Annex IV as
``AIA-ANNEXIV.<section>``), ``group``, ``level``, ``title``, ``summary``,
``duty`` (provider / deployer / both), ``tiers`` the obligation applies to (empty:
a reference row that never becomes an obligation), ``conditions`` (see
``compliance.classification.requirement_applies``), ``evidence`` (what the portal
can produce itself), ``milestone`` (dates of application) and ``annex_i`` (True when
the Art. 6(1) product route has its own, later dates).
"""

from __future__ import annotations

from typing import Any

HIGH = ["high"]
ALL_ANNEX_III = ["1", "2", "3", "4", "5", "6", "7", "8"]


def _row(
    ref: str,
    group: str,
    title: str,
    summary: str,
    duty: str,
    *,
    tiers: list[str] | None = None,
    conditions: dict[str, Any] | None = None,
    evidence: str = "",
    milestone: str = "annex-iii-regime",
    annex_i: bool = True,
    level: str = "paragraph",
) -> dict[str, Any]:
    return {
        "ref": ref, "group": group, "level": level, "title": title, "summary": summary, "duty": duty,
        "tiers": HIGH if tiers is None else tiers, "conditions": conditions or {}, "evidence": evidence,
        "milestone": milestone, "annex_i": annex_i,
    }


_PROHIBITED_POINTS = [
    ("a", "Manipulative or deceptive techniques",
     "Subliminal, purposefully manipulative or deceptive techniques that distort behaviour and cause or are "
     "likely to cause significant harm are banned; such a system must not be placed on the market or used."),
    ("b", "Exploiting vulnerabilities",
     "Exploiting vulnerabilities due to age, disability or a social or economic situation to distort "
     "behaviour in a harmful way is banned."),
    ("c", "Social scoring",
     "Scoring people on social behaviour or personal traits that leads to unjustified or out-of-context "
     "detrimental treatment is banned."),
    ("d", "Crime prediction from profiling alone",
     "Predicting the risk that a person commits a crime solely from profiling or personality traits is banned; "
     "supporting a human assessment grounded in objective, verifiable facts is not."),
    ("e", "Untargeted facial image scraping",
     "Building or expanding facial-recognition databases by untargeted scraping of images from the internet "
     "or CCTV footage is banned."),
    ("f", "Emotion inference at work or in education",
     "Inferring emotions of people at the workplace or in education institutions is banned, except for "
     "medical or safety reasons."),
    ("g", "Biometric categorisation by sensitive traits",
     "Categorising people from biometric data to infer race, political opinions, trade union membership, "
     "religious beliefs, sex life or sexual orientation is banned."),
    ("h", "Real-time remote biometric identification for law enforcement",
     "Real-time remote biometric identification in publicly accessible spaces for law enforcement is banned, "
     "save narrow exceptions that need prior authorisation, a FRIA and registration."),
]

_ANNEX_IV = [
    ("1", "General description",
     "Intended purpose, provider, versions, interaction with other systems, forms of supply, hardware, user "
     "interface and instructions for use."),
    ("2", "Development process",
     "Methods and steps of development, design specifications and trade-offs, architecture and compute, "
     "data sheets, oversight assessment, pre-determined changes, validation and testing, cybersecurity."),
    ("3", "Monitoring, functioning and control",
     "Capabilities and limits including accuracy per group of persons, foreseeable unintended outcomes, "
     "human oversight measures and input data specifications."),
    ("4", "Appropriateness of the performance metrics",
     "Why the chosen performance metrics suit the system."),
    ("5", "Risk management system", "A description of the Art. 9 risk management system."),
    ("6", "Lifecycle changes", "Relevant changes made by the provider over the system's lifecycle."),
    ("7", "Standards applied", "Harmonised standards or other specifications applied."),
    ("8", "EU declaration of conformity", "A copy of the EU declaration of conformity."),
    ("9", "Post-market monitoring plan", "The system for evaluating performance after placing on the market."),
]


EU_AI_ACT: list[dict[str, Any]] = [
    # --- Art. 4 AI literacy: everyone ----------------------------------------------------------
    _row("AIA-4", "Art. 4", "AI literacy of staff",
         "Providers and deployers take measures so that staff who operate or use AI systems have sufficient AI "
         "literacy, fitted to their technical knowledge, experience, training and the context of use.",
         "both", tiers=["high", "limited", "minimal"], evidence="reviewer_competence", milestone="prohibitions",
         annex_i=False, level="article"),
    # --- Art. 5 prohibited practices ---------------------------------------------------------------
    *[
        _row(f"AIA-5.1.{point}", "Art. 5", f"Prohibited practice: {title}",
             f"{summary} Withdraw the system or stop using it.", "both", tiers=["prohibited"],
             conditions={"art5": [point]}, milestone="prohibitions", annex_i=False, level="point")
        for point, title, summary in _PROHIBITED_POINTS
    ],
    # --- Art. 6 classification (grounds; 6(4) is a duty) ------------------------------------------
    _row("AIA-6.1", "Art. 6", "High risk as a product safety component (Annex I)",
         "A system is high-risk when it is, or is a safety component of, a product covered by Annex I law that "
         "needs a third-party conformity assessment.", "both", tiers=[], milestone="annex-i-regime",
         annex_i=False),
    _row("AIA-6.2", "Art. 6", "High risk by Annex III use case",
         "Systems used in an Annex III area are high-risk unless the Art. 6(3) exception applies.", "both",
         tiers=[], annex_i=False),
    _row("AIA-6.3", "Art. 6", "Exception for Annex III systems without significant risk",
         "An Annex III system is not high-risk when it poses no significant risk because it only performs a "
         "narrow procedural task, improves a completed human activity, detects decision patterns without "
         "replacing human assessment, or performs a preparatory task. A system that profiles natural persons "
         "is always high-risk.", "provider", tiers=[], annex_i=False),
    _row("AIA-6.4", "Art. 6", "Document the exception assessment",
         "A provider relying on the Art. 6(3) exception documents its assessment before placing the system on "
         "the market, registers it (Art. 49(2)) and hands the assessment to authorities on request.",
         "provider", tiers=["limited", "minimal"], conditions={"exception_6_3": True}, annex_i=False),
    # --- Art. 9 risk management -------------------------------------------------------------------
    _row("AIA-9.1", "Art. 9", "Risk management system",
         "Establish, implement, document and maintain a risk management system for the high-risk system.",
         "provider"),
    _row("AIA-9.2.a", "Art. 9", "Identify known and foreseeable risks",
         "Identify and analyse the known and reasonably foreseeable risks to health, safety and fundamental "
         "rights when used as intended.", "provider", level="point"),
    _row("AIA-9.2.b", "Art. 9", "Estimate risks under use and misuse",
         "Estimate and evaluate risks under intended use and reasonably foreseeable misuse.", "provider",
         level="point"),
    _row("AIA-9.2.c", "Art. 9", "Evaluate emerging risks from post-market data",
         "Evaluate other risks that emerge from the post-market monitoring data.", "provider",
         evidence="incident_register", level="point"),
    _row("AIA-9.2.d", "Art. 9", "Adopt risk management measures",
         "Adopt appropriate, targeted measures to address the identified risks.", "provider", level="point"),
    _row("AIA-9.5", "Art. 9", "Residual risk acceptable",
         "Residual risk must be judged acceptable; eliminate risks by design first, then mitigate and control, "
         "then inform and train deployers.", "provider"),
    _row("AIA-9.6", "Art. 9", "Testing against pre-defined metrics",
         "Test the system, before it is placed on the market, against metrics and probabilistic thresholds "
         "defined in advance (Art. 9(6)-(8)).", "provider", evidence="kpi_snapshot"),
    _row("AIA-9.9", "Art. 9", "Minors and vulnerable groups",
         "Consider whether the system is likely to affect people under 18 or other vulnerable groups.",
         "provider"),
    # --- Art. 10 data governance ----------------------------------------------------------------
    _row("AIA-10.2", "Art. 10", "Data governance practices",
         "Training, validation and test data follow governance practices covering design choices, collection "
         "and origin, preparation (annotation, labelling, cleaning), assumptions and suitability.", "provider"),
    _row("AIA-10.2.f", "Art. 10", "Examine possible biases",
         "Examine data for biases that may affect health, safety or fundamental rights or lead to "
         "discrimination, including through feedback loops.", "provider", evidence="bias_audits",
         level="point"),
    _row("AIA-10.2.g", "Art. 10", "Detect, prevent and mitigate biases",
         "Take measures to detect, prevent and mitigate the biases found.", "provider", evidence="bias_audits",
         level="point"),
    _row("AIA-10.2.h", "Art. 10", "Data gaps",
         "Identify data gaps or shortcomings that prevent compliance and how they are addressed.", "provider",
         level="point"),
    _row("AIA-10.3", "Art. 10", "Relevant and representative data",
         "Data sets are relevant, sufficiently representative and, as far as possible, free of errors and "
         "complete for the intended purpose.", "provider"),
    _row("AIA-10.4", "Art. 10", "Fit for the setting",
         "Data sets reflect the geographical, contextual, behavioural or functional setting of use.", "provider"),
    _row("AIA-10.5", "Art. 10", "Special-category data for bias detection",
         "Special categories of personal data may be processed only where strictly necessary for bias "
         "detection and correction, under strict safeguards.", "provider"),
    # --- Art. 11 and Annex IV technical documentation -----------------------------------------
    _row("AIA-11.1", "Art. 11", "Technical documentation",
         "Draw up technical documentation with the Annex IV contents before placing on the market and keep it "
         "up to date.", "provider", evidence="dossier"),
    *[
        _row(f"AIA-ANNEXIV.{section}", "Annex IV", f"Annex IV section {section}: {title}", summary, "provider",
             tiers=[], level="section")
        for section, title, summary in _ANNEX_IV
    ],
    _row("AIA-ANNEXIV.2.e", "Annex IV", "Assessment of the human oversight measures",
         "Document the assessment of the Art. 14 oversight measures, including the technical measures that "
         "help deployers interpret outputs.", "provider", evidence="intervention_points", level="point"),
    _row("AIA-ANNEXIV.2.g", "Annex IV", "Validation and testing, incl. discriminatory impact",
         "Describe validation and testing with the metrics used, including potentially discriminatory "
         "impacts, with dated and signed test logs.", "provider", evidence="bias_audits", level="point"),
    # --- Art. 12 record-keeping -------------------------------------------------------------------
    _row("AIA-12.1", "Art. 12", "Automatic event logging",
         "The system technically allows automatic recording of events over its whole lifetime.", "provider",
         evidence="audit_chain"),
    _row("AIA-12.2", "Art. 12", "What the logs must support",
         "Logging lets one identify situations of risk or substantial modification, supports post-market "
         "monitoring and lets deployers monitor operation.", "provider", evidence="audit_chain"),
    _row("AIA-12.3", "Art. 12", "Minimum log fields for remote biometric identification",
         "For Annex III 1(a) systems the logs hold at least each period of use, the reference database, the "
         "input data that led to a match and who verified the results.", "provider",
         conditions={"annex_iii": ["1a"]}, evidence="audit_chain"),
    # --- Art. 13 transparency to deployers --------------------------------------------------------
    _row("AIA-13.3.a", "Art. 13", "Instructions: provider identity",
         "Instructions for use name the provider and its contact details.", "provider", level="point"),
    _row("AIA-13.3.b", "Art. 13", "Instructions: characteristics, capabilities and limits",
         "Instructions describe purpose, accuracy and its metrics, foreseeable risks, explainability, "
         "performance per group of persons, input specifications and how to interpret output.", "provider",
         evidence="kpi_snapshot", level="point"),
    _row("AIA-13.3.c", "Art. 13", "Instructions: pre-determined changes",
         "Instructions describe changes to the system and its performance decided in advance.", "provider",
         level="point"),
    _row("AIA-13.3.d", "Art. 13", "Instructions: human oversight measures",
         "Instructions describe the Art. 14 oversight measures and the technical aids to interpret output.",
         "provider", evidence="intervention_points", level="point"),
    _row("AIA-13.3.e", "Art. 13", "Instructions: resources, lifetime and maintenance",
         "Instructions state computational and hardware needs, expected lifetime and maintenance.", "provider",
         level="point"),
    _row("AIA-13.3.f", "Art. 13", "Instructions: collecting and interpreting logs",
         "Instructions explain how deployers collect, store and interpret the logs.", "provider",
         evidence="audit_chain", level="point"),
    # --- Art. 14 human oversight ------------------------------------------------------------------
    _row("AIA-14.1", "Art. 14", "Effective oversight by natural persons",
         "The system is designed so that natural persons can oversee it effectively while it is in use, "
         "through suitable human-machine interface tools.", "both", evidence="intervention_points"),
    _row("AIA-14.2", "Art. 14", "Aim of oversight",
         "Oversight aims to prevent or minimise risks to health, safety or fundamental rights, including under "
         "foreseeable misuse.", "both", evidence="intervention_points"),
    _row("AIA-14.3.a", "Art. 14", "Oversight built into the system",
         "Oversight measures commensurate with risk, autonomy and context are built in by the provider where "
         "technically feasible.", "provider", evidence="intervention_points", level="point"),
    _row("AIA-14.3.b", "Art. 14", "Oversight implemented by the deployer",
         "Measures identified by the provider are implemented by the deployer.", "both",
         evidence="intervention_points", level="point"),
    _row("AIA-14.4.a", "Art. 14", "Understand and monitor",
         "Overseers can understand the system's capacities and limits and monitor its operation, detecting "
         "anomalies, dysfunctions and unexpected performance.", "both", evidence="intervention_points",
         level="point"),
    _row("AIA-14.4.b", "Art. 14", "Awareness of automation bias",
         "Overseers stay aware of the tendency to over-rely on the system's output (automation bias).", "both",
         evidence="intervention_points", level="point"),
    _row("AIA-14.4.c", "Art. 14", "Correct interpretation of output",
         "Overseers can interpret the output correctly, with the interpretation tools available.", "both",
         evidence="intervention_points", level="point"),
    _row("AIA-14.4.d", "Art. 14", "Decide not to use, override or reverse",
         "Overseers can decide not to use the system, or disregard, override or reverse its output.", "both",
         evidence="intervention_points", level="point"),
    _row("AIA-14.4.e", "Art. 14", "Intervene or halt (stop button)",
         "Overseers can intervene or interrupt the system through a stop button or similar procedure that "
         "brings it to a safe state.", "both", evidence="intervention_points", level="point"),
    _row("AIA-14.5", "Art. 14", "Two-person verification for remote biometric identification",
         "For Annex III 1(a) systems no action or decision is taken on an identification unless at least two "
         "competent, trained and authorised persons verified and confirmed it separately.", "both",
         conditions={"annex_iii": ["1a"]}, evidence="intervention_points"),
    # --- Art. 15 accuracy, robustness, cybersecurity --------------------------------------------------
    _row("AIA-15.1", "Art. 15", "Accuracy, robustness and cybersecurity",
         "The system achieves an appropriate level of accuracy, robustness and cybersecurity and performs "
         "consistently throughout its lifecycle.", "provider", evidence="kpi_snapshot"),
    _row("AIA-15.3", "Art. 15", "Declared accuracy metrics",
         "The levels of accuracy and the relevant metrics are declared in the instructions for use.", "provider",
         evidence="kpi_snapshot"),
    _row("AIA-15.4", "Art. 15", "Resilience and feedback loops",
         "The system is resilient to errors and faults, with fail-safe plans where appropriate; systems that "
         "keep learning avoid biased outputs feeding back into future inputs.", "provider",
         evidence="kpi_snapshot"),
    _row("AIA-15.5", "Art. 15", "Resistance to attacks",
         "The system resists attempts to alter its use or performance, such as data or model poisoning and "
         "adversarial examples.", "provider"),
    # --- Art. 17, 18, 19 provider organisation ---------------------------------------------------------
    _row("AIA-17.1", "Art. 17", "Quality management system",
         "A documented quality management system covering compliance strategy, design control, quality "
         "assurance, testing, standards, data management, risk management, post-market monitoring, incident "
         "reporting, communication, record-keeping and resources.", "provider"),
    _row("AIA-17.1.m", "Art. 17", "Accountability framework",
         "The quality management system sets out the responsibilities of management and staff.", "provider",
         level="point"),
    _row("AIA-18", "Art. 18", "Keep documentation for ten years",
         "Keep the technical documentation, QMS documentation and declaration of conformity available to "
         "authorities for ten years after placing on the market.", "provider", level="article"),
    _row("AIA-19.1", "Art. 19", "Keep logs at least six months",
         "Providers keep the automatically generated logs under their control for at least six months.",
         "provider", evidence="audit_chain"),
    # --- Art. 26 deployers -------------------------------------------------------------------------------
    _row("AIA-26.1", "Art. 26", "Use according to the instructions",
         "Deployers take technical and organisational measures to use the system as its instructions say.",
         "deployer"),
    _row("AIA-26.2", "Art. 26", "Competent, trained and authorised overseers",
         "Deployers assign human oversight to natural persons with the necessary competence, training and "
         "authority, and give them the support they need.", "deployer", evidence="reviewer_competence"),
    _row("AIA-26.4", "Art. 26", "Relevant and representative input data",
         "Where the deployer controls input data, it ensures the data are relevant and sufficiently "
         "representative for the intended purpose.", "deployer"),
    _row("AIA-26.5", "Art. 26", "Monitor, inform, suspend",
         "Deployers monitor operation, inform the provider; on a suspected risk they inform the provider and "
         "authority and suspend use; on a serious incident they inform the provider at once.", "deployer",
         evidence="incident_register"),
    _row("AIA-26.6", "Art. 26", "Keep logs at least six months",
         "Deployers keep the logs under their control for at least six months.", "deployer",
         evidence="audit_chain"),
    _row("AIA-26.7", "Art. 26", "Inform workers before workplace use",
         "Before using the system at the workplace, employers inform the affected workers and their "
         "representatives.", "deployer"),
    _row("AIA-26.8", "Art. 26", "Public authorities register their use",
         "Deployers that are public authorities check the system is registered and register their use.",
         "deployer", conditions={"public_body": True}),
    _row("AIA-26.9", "Art. 26", "Use provider information for the DPIA",
         "Deployers use the Art. 13 information to carry out a data protection impact assessment where one is "
         "required.", "deployer"),
    _row("AIA-26.11", "Art. 26", "Tell affected persons",
         "Deployers of Annex III systems that make or help make decisions about natural persons inform those "
         "persons that they are subject to the system.", "deployer", conditions={"annex_iii": ALL_ANNEX_III}),
    # --- Art. 27 fundamental rights impact assessment ---------------------------------------------------
    *[
        _row(ref, "Art. 27", title, summary, "deployer",
             conditions={"any": [{"public_body": True}, {"annex_iii": ["5b", "5c"]}], "not_annex_iii": ["2"]},
             evidence="fria", annex_i=False)
        for ref, title, summary in [
            ("AIA-27.1", "Fundamental rights impact assessment",
             "Before first use, public bodies, private providers of public services and all deployers of credit "
             "scoring (5(b)) or life and health insurance pricing (5(c)) systems assess the impact on fundamental "
             "rights: (a) processes, (b) period and frequency, (c) affected persons, (d) risks of harm, (e) human "
             "oversight, (f) measures if risks materialise, incl. governance and complaints."),
            ("AIA-27.2", "Keep the FRIA up to date",
             "The assessment covers first use; when any element changes, the deployer updates it."),
            ("AIA-27.3", "Notify the market surveillance authority",
             "The deployer notifies the market surveillance authority of the results of the assessment."),
        ]
    ],
    # --- Art. 43 conformity assessment ---------------------------------------------------------------
    _row("AIA-43.1", "Art. 43", "Conformity assessment for biometric systems",
         "For Annex III point 1 systems the provider follows internal control or assessment with a notified "
         "body, as the harmonised standards allow.", "provider", conditions={"annex_iii": ["1"]}),
    _row("AIA-43.2", "Art. 43", "Internal control for Annex III points 2-8",
         "For Annex III points 2 to 8 the provider follows the internal control procedure (Annex VI).",
         "provider", conditions={"annex_iii": ["2", "3", "4", "5", "6", "7", "8"]}),
    _row("AIA-43.3", "Art. 43", "Conformity assessment under Annex I law",
         "For Annex I products the provider follows the conformity assessment of the sectoral law.", "provider",
         conditions={"annex_i": True}),
    _row("AIA-43.4", "Art. 43", "New assessment on substantial modification",
         "A substantially modified system undergoes a new conformity assessment.", "provider"),
    # --- Art. 49 registration ---------------------------------------------------------------------------
    _row("AIA-49.1", "Art. 49", "Register in the EU database",
         "Before placing an Annex III high-risk system on the market, the provider registers itself and the "
         "system in the EU database.", "provider", conditions={"annex_iii": ALL_ANNEX_III}, annex_i=False),
    _row("AIA-49.2", "Art. 49", "Register systems self-assessed under Art. 6(3)",
         "A provider that concluded an Annex III system is not high-risk under Art. 6(3) registers it too.",
         "provider", tiers=["limited", "minimal"], conditions={"exception_6_3": True}, annex_i=False),
    _row("AIA-49.3", "Art. 49", "Public-authority deployers register their use",
         "Deployers that are public authorities register themselves and select the system in the EU database.",
         "deployer", conditions={"public_body": True}, annex_i=False),
    # --- Art. 50 transparency (stacks with high risk) --------------------------------------------------
    _row("AIA-50.1", "Art. 50", "Disclose interaction with AI",
         "Providers design systems that interact with people so that they are told they are dealing with an "
         "AI system, unless obvious.", "provider", tiers=["high", "limited"], conditions={"art50": ["50.1"]},
         milestone="transparency", annex_i=False),
    _row("AIA-50.2", "Art. 50", "Mark synthetic content",
         "Providers of systems generating audio, image, video or text mark the output in a machine-readable, "
         "detectable way.", "provider", tiers=["high", "limited"], conditions={"art50": ["50.2"]},
         milestone="transparency", annex_i=False),
    _row("AIA-50.3", "Art. 50", "Inform people exposed to emotion recognition or biometric categorisation",
         "Deployers of emotion recognition or biometric categorisation systems inform the persons exposed.",
         "deployer", tiers=["high", "limited"], conditions={"art50": ["50.3"]}, milestone="transparency",
         annex_i=False),
    _row("AIA-50.4", "Art. 50", "Disclose deepfakes and AI-generated public-interest text",
         "Deployers disclose deepfakes, and AI-generated text published to inform the public, unless a person "
         "reviewed it under editorial responsibility.", "deployer", tiers=["high", "limited"],
         conditions={"art50": ["50.4"]}, milestone="transparency", annex_i=False),
    _row("AIA-50.5", "Art. 50", "Clear information at first interaction",
         "The Art. 50 information is given clearly and distinguishably at the latest at the first interaction "
         "or exposure.", "both", tiers=["high", "limited"],
         conditions={"art50": ["50.1", "50.2", "50.3", "50.4"]}, milestone="transparency", annex_i=False),
    # --- Art. 72, 73 post-market monitoring and incidents --------------------------------------------
    _row("AIA-72.1", "Art. 72", "Post-market monitoring system",
         "Providers set up a post-market monitoring system proportionate to the risks, collecting and analysing "
         "performance data over the system's lifetime.", "provider", evidence="kpi_snapshot"),
    _row("AIA-72.3", "Art. 72", "Post-market monitoring plan",
         "The monitoring is based on a plan that is part of the technical documentation (Annex IV).", "provider",
         evidence="dossier"),
    _row("AIA-73.1", "Art. 73", "Report serious incidents",
         "Serious incidents (death or serious harm to health, serious irreversible disruption of critical "
         "infrastructure, breach of fundamental-rights obligations, serious harm to property or environment) "
         "are reported to the market surveillance authority; deployers who cannot reach the provider report "
         "themselves.", "both", evidence="incident_register"),
    _row("AIA-73.2", "Art. 73", "Report within 15 days",
         "Report as soon as a causal link is established or reasonably likely, and at the latest 15 days after "
         "becoming aware.", "both", evidence="incident_register"),
    _row("AIA-73.3", "Art. 73", "Report widespread infringements within 2 days",
         "A widespread infringement or a serious disruption of critical infrastructure is reported at the "
         "latest 2 days after becoming aware.", "both", evidence="incident_register"),
    _row("AIA-73.4", "Art. 73", "Report a death within 10 days",
         "A death is reported at the latest 10 days after becoming aware of it.", "both",
         evidence="incident_register"),
    _row("AIA-73.5", "Art. 73", "Initial report, then complete",
         "An incomplete initial report may be filed first and completed later.", "both",
         evidence="incident_register"),
    # --- Art. 86 explanation -------------------------------------------------------------------------
    _row("AIA-86.1", "Art. 86", "Right to an explanation",
         "A person affected by a decision based on an Annex III system's output, with legal or similarly "
         "significant effects, may obtain a clear explanation of the system's role and the decision's main "
         "elements.", "deployer", conditions={"annex_iii": ["1", "3", "4", "5", "6", "7", "8"]}, annex_i=False),
]
