"""``visibility_clause`` (SQL) and ``DocumentVisibility.matches`` (Python) select the same rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from espace.admin import register_space
from espace.models import DocumentEntryRow, flat
from espace.service import Espace
from espace.store import document_facts, visibility_clause
from habilitation.model import DocumentStatus, DocumentVisibility

TYPES = ["11490-0", "34133-9", "ATTEST-RESID", "80788-3", "60591-5", "a_b%c"]
CODES = ["N", "R", "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"]
AUTHORS = ["810000000001", "810000000002", "860000000003", "207058575627097"]
STRUCTURES = ["S1", "S2", "S%_"]


def _populate(espace: Espace) -> list[DocumentEntryRow]:
    rng = random.Random(11)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    with espace.session_factory() as session:
        space = register_space(session, ins="207058575627097", now=now)
        for n in range(80):
            row = DocumentEntryRow(
                entry_uuid=f"urn:uuid:{n:08d}",
                space_id=space.id,
                logical_id=f"urn:uuid:{n:08d}",
                unique_id=f"1.2.3.{n}",
                status=rng.choice(list(DocumentStatus)).value,
                type_code=rng.choice(TYPES),
                confidentiality_codes=flat(rng.sample(CODES, rng.randint(0, 3))),
                author_ids=flat(rng.sample(AUTHORS, rng.randint(0, 2))),
                author_structure_ids=flat(rng.sample(STRUCTURES, rng.randint(0, 2))),
                submission_time=now,
                updated_at=now,
            )
            session.add(row)
            rows.append(row)
        session.commit()
    return rows


def _subset(items: list[str]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(items))


visibilities = st.builds(
    DocumentVisibility,
    nothing=st.booleans().map(lambda b: b and False),
    statuses=st.frozensets(st.sampled_from(list(DocumentStatus)), min_size=0),
    allowed_type_codes=st.none() | _subset(TYPES),
    denied_type_codes=_subset(TYPES),
    type_codes_exempt_authors=_subset(AUTHORS),
    hidden_confidentiality_codes=_subset(CODES),
    hidden_codes_exempt_authors=_subset(AUTHORS),
    hidden_codes_exempt_structures=_subset(STRUCTURES),
    only_authors=st.none() | _subset(AUTHORS),
    only_author_structures=_subset(STRUCTURES),
)


def test_sql_and_python_predicates_agree(espace: Espace) -> None:
    rows = _populate(espace)
    facts = {row.entry_uuid: document_facts(row) for row in rows}

    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(vis=visibilities)
    def check(vis: DocumentVisibility) -> None:
        expected = {uid for uid, f in facts.items() if vis.matches(f)}
        with espace.session_factory() as session:
            got = set(
                session.execute(
                    select(DocumentEntryRow.entry_uuid).where(visibility_clause(vis))
                ).scalars()
            )
            count = session.execute(
                select(func.count()).select_from(DocumentEntryRow).where(visibility_clause(vis))
            ).scalar_one()
        assert got == expected
        assert count == len(expected)

    check()


def test_nothing_selects_nothing(espace: Espace) -> None:
    _populate(espace)
    with espace.session_factory() as session:
        assert (
            session.execute(
                select(func.count())
                .select_from(DocumentEntryRow)
                .where(visibility_clause(DocumentVisibility(nothing=True)))
            ).scalar_one()
            == 0
        )
