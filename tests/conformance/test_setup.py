"""``mes conformance setup``: the kit's patients and app on a target's database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from conformance.fhir.kit import KIT_APP_ID
from conformance.server import DMP_EXAMPLE_PATIENTS, NO_CONSENT_PATIENT, make_ins, setup_pool
from espace.models import AppConsent, PatientSpace, SpaceProfessionalLink
from espace.service import Espace


def test_setup_registers_pool_examples_and_consents_once(espace: Espace, pki: Any) -> None:
    assert setup_pool(espace, pki, 2) == 2 + len(DMP_EXAMPLE_PATIENTS) + 1
    assert setup_pool(espace, pki, 2) == 0  # idempotent
    with espace.session_factory() as session:
        spaces = {s.ins: s.id for s in session.execute(select(PatientSpace)).scalars()}
        consented = {
            c.space_id
            for c in session.execute(select(AppConsent)).scalars()
            if c.app_id == KIT_APP_ID
        }
        links = {
            (link.space_id, link.professional_id, link.kind)
            for link in session.execute(select(SpaceProfessionalLink)).scalars()
        }
    pool = [make_ins(n, prefix="2700299999") for n in (1, 2)]
    assert set(pool) | set(DMP_EXAMPLE_PATIENTS) | {NO_CONSENT_PATIENT} == set(spaces)
    assert consented == {spaces[ins] for ins in pool}  # not the no-consent patient
    assert all((spaces[ins], pki.professional_id, "authorized") in links for ins in spaces)
