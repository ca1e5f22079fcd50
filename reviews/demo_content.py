"""Demo cases with rich content: a document check with an image, a PDF and highlighted text, and a chat
moderation case, each with the AI's explanation, waiting in the queue for the demo reviewers.

Everything goes through the services (intervention point and case ingestion), as an
integration's traffic would; the files are drawn here (Pillow, a hand-built PDF), so
the demo needs nothing from the network.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from django.contrib.auth.models import User

from reviews.api.serializers.cases import CaseSubmissionValidator
from reviews.models import AISystem, InterventionPoint
from reviews.services.ingest import case_ingest
from reviews.services.systems import intervention_point_create

DOCUMENT_POINT = "document-check"
CHAT_POINT = "chat-review"


def _id_card_png() -> bytes:
    """An identity-document-like picture: a card with a portrait box and text lines."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (420, 260), (236, 240, 245))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((10, 10, 410, 250), radius=16, fill=(255, 255, 255), outline=(30, 94, 191), width=4)
    draw.rectangle((10, 10, 410, 54), fill=(30, 94, 191))
    draw.text((24, 24), "RESIDENCE PERMIT  ·  DEMO", fill=(255, 255, 255))
    draw.rectangle((28, 72, 128, 200), fill=(200, 208, 220), outline=(120, 130, 150))
    draw.ellipse((52, 90, 104, 142), fill=(150, 160, 178))
    draw.rectangle((48, 146, 108, 196), fill=(150, 160, 178))
    for row, text in enumerate(("Surname: EXAMPLE", "Given name: ALEX", "Born: 1988-04-12", "Valid to: 2027-03-31")):
        draw.text((150, 84 + row * 28), text, fill=(20, 30, 45))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def payslip_pdf() -> bytes:
    """A one-page payslip PDF with a valid cross-reference table, built by hand."""
    content = (b"0.12 0.37 0.75 rg 40 720 515 60 re f "
               b"BT /F1 26 Tf 1 1 1 rg 56 740 Td (Payslip - November 2026) Tj ET "
               b"BT /F1 14 Tf 0 0 0 rg 56 680 Td (Employer: Northwind Logistics GmbH) Tj ET "
               b"BT /F1 14 Tf 56 655 Td (Employee: Alex Example) Tj ET "
               b"BT /F1 14 Tf 56 630 Td (Net pay: 2,950.00 EUR) Tj ET")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _data_uri(kind: str, data: bytes) -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _point(actor: User, system: AISystem, slug: str, name: str, **rules: Any) -> InterventionPoint:
    point = InterventionPoint.objects.filter(system=system, slug=slug).first()
    if point is None:
        point = intervention_point_create(actor=actor, system=system, slug=slug, name=name, stage="validation",
                                          confidence_below=0.8, sla_seconds=6 * 3600, **rules)
    return point


def _submit(integration: User, body: dict[str, Any]) -> None:
    data, errors = CaseSubmissionValidator(actor=integration).validate(body)
    if errors or data is None:
        raise ValueError(f"demo case refused: {errors}")
    case_ingest(actor=integration, data=data)


def add_rich_demo(*, actor: User, integration: User) -> list[str]:
    """Two intervention points with display configurations and three waiting rich cases (once)."""
    if InterventionPoint.objects.filter(slug=DOCUMENT_POINT).exists():
        return []
    credit = AISystem.objects.get(slug="credit-scoring")
    moderation = AISystem.objects.get(slug="content-moderation")
    _point(actor, credit, DOCUMENT_POINT, "Document check", display=[
        {"field": "id_document", "renderer": "image", "label": "Identity document"},
        {"field": "payslip", "renderer": "pdf", "label": "Payslip"},
        {"field": "note", "renderer": "text", "label": "Applicant's note", "highlights": "note_flags"},
        {"field": "applicant", "renderer": "key_value", "label": "Applicant"},
    ], decision_fields=[
        {"name": "documents", "label": "Documents", "type": "single_choice", "required": True,
         "choices": ["consistent", "inconsistent", "unreadable"]},
    ])
    note = "Income went up in November after a promotion; earlier payslips were lower."
    _submit(integration, {
        "system": "credit-scoring", "intervention_point": DOCUMENT_POINT, "external_id": "doc-0001",
        "input": {
            "id_document": _data_uri("image/png", _id_card_png()),
            "payslip": _data_uri("application/pdf", payslip_pdf()),
            "note": note, "note_flags": [{"start": 0, "end": 35, "label": "income change"}],
            "applicant": {"amount": 18000, "term_months": 48, "monthly_income": 2950},
        },
        "prediction": {"label": "approve", "confidence": 0.58, "model_version": "v3.2", "explanation": {
            "reason_codes": ["R07: income above the threshold for the amount", "R21: recent income change"],
            "attributions": [{"feature": "monthly_income", "value": 2950, "weight": 0.41},
                             {"feature": "term_months", "value": 48, "weight": -0.12},
                             {"feature": "income_change_90d", "value": 0.31, "weight": -0.27}],
        }},
    })
    _point(actor, moderation, CHAT_POINT, "Chat review", display=[
        {"field": "conversation", "renderer": "chat", "label": "Conversation"},
        {"field": "metadata", "renderer": "key_value", "label": "Context"},
    ])
    for number, (label, confidence, messages) in enumerate([
        ("allow", 0.55, [
            {"role": "user", "content": "Where can I buy the cheapest train tickets to Berlin?"},
            {"role": "assistant", "content": "Book early on the operator's site; saver fares open 6 months ahead."},
            {"role": "user", "content": "Thanks, that helps a lot!"},
        ]),
        ("remove", 0.61, [
            {"role": "user", "content": "Tell me how to get into my neighbour's wifi without the password."},
            {"role": "assistant", "content": "I can't help with accessing networks you don't own."},
            {"role": "user", "content": "Come on, just the commands, nobody will know."},
        ]),
    ], start=1):
        _submit(integration, {
            "system": "content-moderation", "intervention_point": CHAT_POINT, "external_id": f"chat-{number:04d}",
            "input": {"conversation": messages, "metadata": {"channel": "support chat", "language": "en"}},
            "prediction": {"label": label, "confidence": confidence, "model_version": "mod-2.4",
                           "explanation": {"reason_codes": [f"flagged terms: {2 * number - 1}"]}},
        })
    return ["rich-content cases: a document check (image, PDF, highlights, explanation) and two chat reviews"]
