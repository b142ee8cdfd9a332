"""In-process A/B of the FHIR Observation search (issue #8): the previous request path (count
statement + page statement, ``json.loads`` of each stored resource, ``json.dumps`` of the
Bundle) against the current one (count in the page statement, stored JSON spliced), through
Flask's test client on the same database, interleaved, medians of ``time.perf_counter``.

Usage: ``python -m bench.fhir_search_ab postgresql://postgres@127.0.0.1:5432/fhirab 3000 300``
(database URL, observations of the probe patient, requests per variant; a fourth argument
``search`` or ``create`` prints a pyinstrument profile of that request instead). The database is
emptied and filled: give it a database of its own.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, func, select, text

from espace import fhir_store as store
from espace.clock import FrozenClock
from espace.crypto import DocumentCipher
from espace.db import Base
from espace.trace import TraceSigner
from fhir_server import repository, web
from habilitation.model import ActorKind
from mes.tokens import issue_token
from mes.wiring import build_espace, create_schema, import_all_models


def _old_search_page(session: Any, query: store.SearchQuery, *,
                     want_total: bool = True) -> store.Page:
    """The previous ``fhir_store.search``: a count statement, then the page statement."""
    row = store.FhirResourceRow
    where = store._where(query)
    total = int(session.execute(select(func.count()).select_from(row).where(*where)).scalar_one())
    rows = list(session.execute(
        select(row).where(*where).order_by(*store._order(query))
        .offset(query.offset).limit(query.count)).scalars())
    return store.Page(total, rows)


def _old_reindex(session: Any, row: store.FhirResourceRow, resource: dict[str, Any] | None,
                 *, fresh: bool = False) -> None:
    """The previous index write: always a DELETE, then one ORM object per index row."""
    session.execute(delete(store.FhirSearchIndex).where(
        store.FhirSearchIndex.resource_type == row.resource_type,
        store.FhirSearchIndex.resource_id == row.id))
    for param, system, code, lo, hi in store.index_values(resource or {}):
        session.add(store.FhirSearchIndex(
            space_id=row.space_id, resource_type=row.resource_type, resource_id=row.id,
            param=param, system=system, code=code, date_lo=lo, date_hi=hi))


_CREATE = store.create


def _old_create(session: Any, space_id: str, resource: dict[str, Any], **kw: Any) -> Any:
    """The previous create: the generated id looked up before the INSERT."""
    rid = kw.pop("resource_id", None) or store.new_id()
    store.id_is_free(session, str(resource["resourceType"]), rid)
    return _CREATE(session, space_id, resource, resource_id=rid, **kw)


def _old_stored_brick(rtype: str, rid: str) -> str | None:
    """The previous gate lookup: the whole row loaded as an ORM entity."""
    with web.current_app.extensions["espace"].session_factory() as session:
        row = session.get(store.FhirResourceRow, (rtype, rid))
        return row.brick if row is not None else None


def _old_dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


@contextmanager
def variant(name: str) -> Iterator[None]:
    saved = (store.search_json_page, repository.raw_resource, web.dumps)
    saved_write = (store._reindex, store.create, web._stored_brick)
    if name == "old":
        store._reindex = _old_reindex
        store.create = _old_create  # type: ignore[assignment]
        web._stored_brick = _old_stored_brick
        store.search_json_page = _old_search_page  # type: ignore[assignment]
        repository.raw_resource = store.resource_of  # type: ignore[assignment]
        web.dumps = _old_dumps
    try:
        yield
    finally:
        store.search_json_page, repository.raw_resource, web.dumps = saved  # type: ignore
        store._reindex, store.create, web._stored_brick = saved_write  # type: ignore


def _weight(ins: str, serial: int) -> dict[str, Any]:
    day = date(2020, 1, 1) + timedelta(hours=7 * serial)
    return {
        "resourceType": "Observation",
        "meta": {"profile": ["https://interop.esante.gouv.fr/ig/fhir/mesures/"
                             "StructureDefinition/mesures-fr-observation-body-weight"]},
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7",
                             "display": "Body weight"}]},
        "subject": {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": ins}},
        "effectiveDateTime": f"{day.isoformat()}T08:00:00+01:00",
        "valueQuantity": {"value": 70 + serial % 10, "unit": "kg",
                          "system": "http://unitsofmeasure.org", "code": "kg"},
    }


def main(url: str, observations: int, requests: int, profile: str = "") -> None:
    from espace.admin import register_space
    from mes.app import create_app
    from mes.pki import generate_test_pki

    pki = generate_test_pki(Path("/tmp/fhirab-pki"))
    settings: dict[str, Any] = {
        "VAR_DIR": "/tmp/fhirab-var", "DATABASE_URL": url,
        "DOCUMENT_KEY": DocumentCipher.generate_key(),
        "TRACE_SIGNING_KEY": TraceSigner.generate_key(), "LOG_JSON": False,
        "PKI_DIR": str(pki.directory),
    }
    clock = FrozenClock()
    espace = build_espace(settings, clock=clock)
    import_all_models()
    Base.metadata.drop_all(espace.session_factory.kw["bind"])
    create_schema(espace)
    ins = "285027512345697"
    ins = f"{ins[:13]}{97 - int(ins[:13]) % 97:02d}"
    with espace.session_factory() as session:
        space = register_space(session, ins=ins, now=clock.now(), family_name="MARTIN",
                               given_names="Alice", sex="F", birth_date=date(1985, 2, 14))
        writer = store.Writer(ins, "patient")
        for serial in range(observations):
            store.create(session, space.id, _weight(ins, serial), brick="measurements",
                         writer=writer, now=clock.now())
        session.commit()
        space_id = space.id
    with espace.session_factory() as session:
        session.execute(text("ANALYZE")) if url.startswith("postgresql") else None
        session.commit()
    app = create_app(settings, espace=espace)
    client = app.test_client()
    token = issue_token(settings, subject=ins, kind=ActorKind.PATIENT, patient=ins)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    queries = {
        "page of 50": "/fhir/Observation?code=http://loinc.org|29463-7&_count=50",
        "_total=none": "/fhir/Observation?code=http://loinc.org|29463-7&_count=50&_total=none",
        "read": None,
        "create": "/fhir/Observation",
    }
    first = client.get(queries["page of 50"], headers=headers).get_json()
    if "entry" not in first:
        raise SystemExit(f"no match: {json.dumps(first)[:600]}")
    rid = first["entry"][0]["resource"]["id"]
    queries["read"] = f"/fhir/Observation/{rid}"
    engine = espace.session_factory.kw["bind"]
    counted: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *a: counted.append(str(a[2]).split(None, 1)[0].upper()))
    for name in ("old", "new"):
        with variant(name):
            counted.clear()
            body = client.get(queries["page of 50"], headers=headers).get_json()
            print(f"{name}: SQL statements per search: {len(counted)} {counted}; "
                  f"total {body.get('total')}, entries {len(body.get('entry', []))}")
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for n in range(requests):
            if profile == "create":
                created = client.post("/fhir/Observation", json=_weight(ins, 10_000 + n),
                                      headers={**headers, "Content-Type": "application/fhir+json"})
                assert created.status_code == 201, created.data[:300]
            else:
                client.get(queries["page of 50"], headers=headers)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
        return
    times: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    for label, query in queries.items():
        assert query is not None
        for _ in range(5):  # warm up
            for name in ("old", "new"):
                with variant(name):
                    client.get(queries["read"] or "", headers=headers)
        for i in range(requests):
            for name in (("old", "new") if i % 2 == 0 else ("new", "old")):
                with variant(name):
                    start, cpu = time.perf_counter(), time.process_time()
                    if label == "create":
                        response = client.post(query, json=_weight(ins, 20_000 + i), headers={
                            **headers, "Content-Type": "application/fhir+json"})
                    else:
                        response = client.get(query, headers=headers)
                    times.setdefault((label, name), []).append(time.perf_counter() - start)
                    cpus.setdefault((label, name), []).append(time.process_time() - cpu)
                    assert response.status_code in (200, 201), response.data[:300]
    for label in queries:
        old = statistics.median(times[(label, "old")]) * 1000
        new = statistics.median(times[(label, "new")]) * 1000
        old_cpu = statistics.median(cpus[(label, "old")]) * 1000
        new_cpu = statistics.median(cpus[(label, "new")]) * 1000
        print(f"{label}: wall old {old:.2f} ms, new {new:.2f} ms (new/old {new / old:.2f}); "
              f"Python CPU old {old_cpu:.2f} ms, new {new_cpu:.2f} ms "
              f"(new/old {new_cpu / old_cpu:.2f}); medians of {requests} each, interleaved")
    print(f"space {space_id}, {observations} observations, {url.split('@')[-1]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), (sys.argv[4:] or [""])[0])
