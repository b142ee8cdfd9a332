"""The PDF confirmation of an opposition to the creation of Mon espace santé (fpdf2).

The confirmation ("justificatif de refus") is what the person keeps as proof; it names the
reference, the person, the date, and who recorded it (the person, a representative, or a
support-desk agent).
"""

from __future__ import annotations

from fpdf import FPDF

from espace.lifecycle import OppositionReceipt

_BY = {
    "patient": "la personne elle-même",
    "legal_representative": "son représentant légal",
    "protected_adult_representative": "la personne chargée de la mesure de protection",
    "support_agent": "l'assistance Mon espace santé / la caisse d'assurance maladie",
}


def opposition_pdf(receipt: OppositionReceipt) -> bytes:
    """Render the confirmation as PDF bytes."""
    pdf = FPDF()
    pdf.set_title(f"Opposition {receipt.reference}")
    pdf.set_creator("mes-server")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 12, "Mon espace santé", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 10, "Confirmation d'opposition à la création", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    lines = [
        f"Référence : {receipt.reference}",
        f"Titulaire : {receipt.given_names} {receipt.family_name}".rstrip(),
        f"Matricule INS : {receipt.ins}",
    ]
    if receipt.birth_date is not None:
        lines.append(f"Date de naissance : {receipt.birth_date:%d/%m/%Y}")
    lines += [
        f"Opposition enregistrée le {receipt.opposed_at:%d/%m/%Y à %H:%M} (UTC)",
        f"Demandée par : {_BY.get(receipt.opposed_by_kind, receipt.opposed_by_kind)}",
    ]
    if receipt.agent_id:
        lines.append(f"Agent : {receipt.agent_id}")
    lines += [
        "",
        "Votre profil Mon espace santé ne sera pas créé. Vous pourrez le créer à tout moment",
        "plus tard, avec un nouveau code provisoire (en ligne ou au 3422).",
    ]
    for line in lines:
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
