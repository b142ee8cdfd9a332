"""Builders for the habilitation tests: actors, spaces and documents with known ids."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from habilitation.model import (
    AccessMode,
    AccessRequest,
    Action,
    Actor,
    ActorKind,
    AuthenticationMode,
    DocumentFacts,
    DocumentStatus,
    Purpose,
    SpaceFacts,
    SpaceStatus,
)

INS = "123456789012345"
STRUCTURE = "1S1234"
OTHER_STRUCTURE = "1S9999"
MT_ID = "810000000001"
MEDECIN_ID = "810000000002"
INFIRMIER_ID = "810000000003"
MDT_ID = "810000000004"
CPE_ID = "CPE-0001"
INDIRECT_ID = "810000000005"
DENTISTE_ID = "810000000006"
OTHER_PS_ID = "810000000099"
LR_ID = "LR-1"
LR2_ID = "LR-2"
TUTOR_ID = "TUTOR-1"
APP_ID = "app-diabeto"


def professional(
    id: str = MEDECIN_ID,
    profession: str | None = "10",
    specialty: str | None = "SM26",
    mode: AuthenticationMode = AuthenticationMode.DIRECT,
    access: AccessMode = AccessMode.NORMAL,
    structure_id: str | None = STRUCTURE,
    **kw: Any,
) -> Actor:
    return Actor(
        ActorKind.PROFESSIONAL,
        id,
        profession=profession,
        specialty=specialty,
        structure_id=structure_id,
        authentication_mode=mode,
        access_mode=access,
        **kw,
    )


def medecin(access: AccessMode = AccessMode.NORMAL, **kw: Any) -> Actor:
    return professional(MEDECIN_ID, "10", "SM26", access=access, **kw)


def medecin_traitant(access: AccessMode = AccessMode.NORMAL) -> Actor:
    return professional(MT_ID, "10", "SM26", access=access)


def infirmier(access: AccessMode = AccessMode.NORMAL, **kw: Any) -> Actor:
    return professional(INFIRMIER_ID, "60", None, access=access, **kw)


def medecin_du_travail(specialty: str = "SM25", access: AccessMode = AccessMode.NORMAL) -> Actor:
    return professional(MDT_ID, "10", specialty, access=access)


def cpe(access: AccessMode = AccessMode.NORMAL) -> Actor:
    return professional(CPE_ID, None, None, mode=AuthenticationMode.CPE, access=access)


def indirect(
    access: AccessMode = AccessMode.NORMAL,
    mode: AuthenticationMode = AuthenticationMode.INDIRECT,
) -> Actor:
    return professional(INDIRECT_ID, "10", "SM26", mode=mode, access=access)


def patient(**kw: Any) -> Actor:
    return Actor(ActorKind.PATIENT, INS, authentication_mode=AuthenticationMode.PATIENT_LOGIN, **kw)


def legal_representative(id: str = LR_ID) -> Actor:
    return Actor(
        ActorKind.LEGAL_REPRESENTATIVE,
        id,
        authentication_mode=AuthenticationMode.PATIENT_LOGIN,
        on_behalf_of=INS,
    )


def tutor() -> Actor:
    return Actor(
        ActorKind.PROTECTED_ADULT_REPRESENTATIVE,
        TUTOR_ID,
        authentication_mode=AuthenticationMode.PATIENT_LOGIN,
        on_behalf_of=INS,
    )


def app(app_id: str = APP_ID, on_behalf_of: str | None = INS) -> Actor:
    return Actor(
        ActorKind.APP,
        app_id,
        authentication_mode=AuthenticationMode.APP_TOKEN,
        on_behalf_of=on_behalf_of,
        app_id=app_id,
    )


def support() -> Actor:
    return Actor(ActorKind.SUPPORT_AGENT, "agent-7")


def system() -> Actor:
    return Actor(ActorKind.SYSTEM, "purge", authentication_mode=AuthenticationMode.SYSTEM)


def space(**kw: Any) -> SpaceFacts:
    """An active space where every test professional is authorized (normal mode works)."""
    base = SpaceFacts(
        space_id="space-1",
        ins=INS,
        status=SpaceStatus.ACTIVE,
        authorized_professionals=frozenset(
            {MEDECIN_ID, INFIRMIER_ID, MDT_ID, CPE_ID, INDIRECT_ID, DENTISTE_ID}
        ),
        authorized_structures=frozenset({STRUCTURE}),
        medecin_traitant=MT_ID,
        legal_representatives=frozenset({LR_ID, LR2_ID}),
        protected_adult_representative=TUTOR_ID,
        app_consents={APP_ID: frozenset({Purpose.DOCUMENTS_READ, Purpose.MEASUREMENTS_READ})},
    )
    return replace(base, **kw)


def document(
    entry_id: str = "doc-1",
    type_code: str = "11488-4",
    codes: frozenset[str] = frozenset(),
    authors: frozenset[str] = frozenset({OTHER_PS_ID}),
    structures: frozenset[str] = frozenset({OTHER_STRUCTURE}),
    status: DocumentStatus = DocumentStatus.APPROVED,
    added_by_patient: bool = False,
) -> DocumentFacts:
    return DocumentFacts(
        entry_id,
        type_code,
        confidentiality_codes=codes,
        author_ids=authors,
        author_structure_ids=structures,
        status=status,
        added_by_patient=added_by_patient,
    )


def request(
    actor: Actor,
    action: Action,
    space_facts: SpaceFacts | None = None,
    doc: DocumentFacts | None = None,
) -> AccessRequest:
    return AccessRequest(actor, action, space_facts, doc)
