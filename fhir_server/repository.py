"""The per-request repository: every read and write of the FHIR face, scoped to one space.

Built from the request's :class:`~espace.service.Operation` (Medplum's per-request repository,
HAPI's ``SearchNarrowingInterceptor``): it only ever touches the space the operation opened,
pushes "the bricks this caller may read" into every SQL query before counting and paging,
and asks the PDP again (``op.authorize``) for the brick of each resource it writes or reads
by id. Handlers call it and never check anything themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from espace import fhir_store as store
from espace import measurements as mes
from espace.errors import NotFound
from espace.models import ReferencedApp
from espace.notifications import notify
from espace.service import Operation
from espace.spaces import INS_OID_NIR
from espace.trace import Target
from fhir_server import jsonpatch, models, pairing, virtual
from fhir_server.errors import FhirError
from fhir_server.routing import (
    BRICK_ACTIONS,
    CONSENTS,
    MEASUREMENTS,
    READ,
    STORED_BRICKS,
    STORED_TYPES,
    VIRTUAL_TYPES,
    WRITE,
    brick_of,
)
from fhir_server.search import (
    MAX_REVINCLUDE,
    ParsedSearch,
    RawResource,
    Resource,
    parse,
    searchset,
)
from habilitation.model import AccessRequest, Action, ActorKind

# The reference to the patient, per type (R4 compartment "Patient").
PATIENT_FIELDS: dict[str, str] = {
    "Observation": "subject",
    "Condition": "subject",
    "MedicationStatement": "subject",
    "Procedure": "subject",
    "AllergyIntolerance": "patient",
    "FamilyMemberHistory": "patient",
    "Immunization": "patient",
    "RelatedPerson": "patient",
    "CareTeam": "subject",
    "Consent": "patient",
    "CommunicationRequest": "subject",
    "Device": "patient",
}
def raw_resource(row: store.FhirResourceRow | store.StoredJson) -> RawResource:
    """The current version as stored: spliced into a searchset without decoding."""
    return RawResource(row.resource_type, row.id, row.json)


ETAG_RE = re.compile(r'^(?:W/)?"(\d+)"$')


@dataclass(slots=True)
class Outcome:
    """What a write produced: HTTP status, the resource and its version."""

    status: int
    resource: dict[str, Any] | None
    resource_type: str
    resource_id: str
    version_id: int | None = None
    last_updated: str = ""


def parse_etag(value: str | None) -> int | None:
    if not value:
        return None
    match = ETAG_RE.match(value.strip())
    if match is None:
        raise FhirError(400, "invalid", f"not a version ETag: {value!r}", code="bad_etag")
    return int(match.group(1))


class FhirRepository:
    """Reads and writes of one request, inside its one ``Espace.operation``."""

    def __init__(self, op: Operation, *, base_url: str, lenient: bool = False) -> None:
        if op.space is None or op.facts is None:
            raise NotFound("no patient space")
        self.op = op
        self.session = op.session
        self.space = op.space
        self.actor = op.actor
        self.base = base_url
        self.lenient = lenient
        self._permitted: dict[str, frozenset[str]] = {}  # mode -> bricks (``readable``)
        self._app: ReferencedApp | None = None

    # ------------------------------------------------------------------ policy
    def permits(self, action: Action) -> bool:
        if self.actor.kind is ActorKind.SYSTEM:
            action = Action.SYSTEM_JOB
        decision = self.op.espace.pdp.authorize_operation(
            AccessRequest(self.actor, action, self.op.facts)
        )
        return decision.permitted

    def require(self, brick: str, mode: str) -> None:
        """Ask the PDP for ``mode`` on ``brick`` (AccessDenied, traced, when refused)."""
        actions = BRICK_ACTIONS[brick]
        action = actions.get(mode, actions[READ])
        if self.actor.kind is ActorKind.SYSTEM:
            action = Action.SYSTEM_JOB
        if action is not self.op.action:
            self.op.authorize(action)

    @property
    def readable(self) -> frozenset[str]:
        return self._bricks_permitted(READ)

    @property
    def writable(self) -> frozenset[str]:
        return self._bricks_permitted(WRITE)

    def _bricks_permitted(self, mode: str) -> frozenset[str]:
        """The stored bricks on which the PDP permits ``mode`` to this caller (asked once)."""
        if mode not in self._permitted:
            self._permitted[mode] = frozenset(
                b for b in STORED_BRICKS
                if mode in BRICK_ACTIONS[b] and self.permits(BRICK_ACTIONS[b][mode])
            )
        return self._permitted[mode]

    def writer(self, resource: dict[str, Any] | None = None) -> store.Writer:
        """Who writes; an app's data carries ``meta.source`` = its solution OID (MES API
        Mesures §2.2.4), or the sub-OID it sent when that belongs to its root OID."""
        source = ""
        app_id = ""
        if self.actor.kind is ActorKind.APP:
            app_id = self.actor.app_id or self.actor.id
            app = self.app()
            source = f"urn:oid:{app.oid}" if app is not None and app.oid else app_id
            sent = str(((resource or {}).get("meta") or {}).get("source") or "")
            sub_oid = bool(app is not None and app.oid and sent.startswith(f"urn:oid:{app.oid}."))
            if sub_oid or sent == source:
                source = sent
        return store.Writer(self.actor.id, str(self.actor.kind), source, app_id)

    def app(self) -> ReferencedApp | None:
        if self._app is None and self.actor.kind is ActorKind.APP:
            self._app = self.session.get(ReferencedApp, self.actor.app_id or self.actor.id)
        return self._app

    def target(self, rtype: str, rid: str = "") -> None:
        self.op.target = Target(type=rtype, id=rid)

    # ------------------------------------------------------------------ reads
    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        self.target(rtype, rid)
        if rtype in VIRTUAL_TYPES:
            return virtual.read(self, rtype, rid)
        if rtype == "Observation" and mes.weight_id_of(rid) is not None:
            return virtual.read_bmi(self, rid)
        row = self._row(rtype, rid)
        self.require(row.brick, READ)
        return store.resource_of(row)

    def _row(self, rtype: str, rid: str) -> store.FhirResourceRow:
        return store.get_row(self.session, self.space.id, rtype, rid, STORED_BRICKS)

    def vread(self, rtype: str, rid: str, vid: str) -> dict[str, Any]:
        self.target(rtype, rid)
        if rtype in VIRTUAL_TYPES:
            resource = virtual.read(self, rtype, rid)
            if str((resource.get("meta") or {}).get("versionId", "1")) != vid:
                raise NotFound(f"{rtype}/{rid}/_history/{vid} is not known")
            return resource
        if not vid.isdigit():
            raise NotFound(f"{rtype}/{rid}/_history/{vid} is not known")
        version = store.get_version(
            self.session, self.space.id, frozenset(STORED_BRICKS), rtype, rid, int(vid)
        )
        self.require(version.brick, READ)
        return store.resource_of(version)

    def search(self, rtype: str, params: Sequence[tuple[str, str]], path: str) -> dict[str, Any]:
        self.target(rtype)
        self.op.detail["query"] = "&".join(f"{k}={v}" for k, v in params)[:1000]
        if rtype in VIRTUAL_TYPES:
            return virtual.search(self, rtype, params, path)
        parsed = parse(rtype, params, lenient=self.lenient)
        if rtype == "Observation":
            mode_checked = self._measurement_search_rules(parsed)
            if mes.BMI in {v.rsplit("|", 1)[-1] for v in parsed.values("code")}:
                return virtual.search_bmi(self, parsed, path, mode_checked)
        return self.run_search(parsed, path)

    def _measurement_search_rules(self, parsed: ParsedSearch) -> bool:
        """MES API Mesures §2.3.1: subject.identifier and the "all"/"last" modes (apps)."""
        for value in parsed.values("subject.identifier"):
            if value.rsplit("|", 1)[-1] != self.space.ins:
                raise FhirError(403, "forbidden", mes.IDPE_MISMATCH, code="idpe_mismatch")
        parsed.drop("subject.identifier")
        codes = parsed.values("code")
        if self.actor.kind is not ActorKind.APP or not codes:
            return False
        if not all(mes.is_measurement_code(c) for c in codes):
            return False
        raw = dict(parsed.raw)
        try:
            mode = mes.search_mode(
                sort=raw.get("_sort"), count=raw.get("_count"), offset=raw.get("_offset"),
                dates=[v for k, v in parsed.raw if k == "date"],
            )
        except mes.MeasurementError as exc:
            raise FhirError(exc.status, exc.issue, exc.diagnostics, details=exc.message,
                            code=exc.code) from exc
        parsed.count, parsed.offset = mode.count, mode.offset
        if mode.mode == "last":
            parsed.sort = [("date", True)]
        return True

    def patient_filter_ok(self, parsed: ParsedSearch) -> bool:
        own = {self.space.id, f"Patient/{self.space.id}"}
        return all(ref in own for ref in parsed.patient_refs) and all(
            value.rsplit("|", 1)[-1] == self.space.ins for value in parsed.patient_identifiers
        )

    def run_search(self, parsed: ParsedSearch, path: str) -> dict[str, Any]:
        """A search of stored resources: space, bricks and filters in SQL, then one page."""
        rtype = parsed.resource_type
        query = store.SearchQuery(
            resource_type=rtype,
            space_id=self.space.id,
            bricks=self.readable if self.patient_filter_ok(parsed) else frozenset(),
            criteria=parsed.criteria,
            sort=parsed.sort,
            count=0 if parsed.summary_count else parsed.count,
            offset=parsed.offset,
        )
        page = store.search_json_page(self.session, query, want_total=parsed.want_total)
        rows = page.rows
        included: list[Resource] = []
        for itype, param in parsed.includes:
            included.extend(
                raw_resource(r)
                for r in store.includes(
                    self.session, self.space.id, self.readable, rows, itype, param
                )
            )
        revincluded, warnings = self.revincluded(
            rtype, [r.id for r in rows], parsed.revincludes)
        return searchset(
            base=self.base, path=path, raw=parsed.used, total=page.total,
            offset=parsed.offset, count=parsed.count, matches=[raw_resource(r) for r in rows],
            included=included + revincluded, now=self.op.now, warnings=warnings,
        )

    def revincluded(
        self, target_type: str, target_ids: Sequence[str],
        revincludes: Sequence[tuple[str, str]],
    ) -> tuple[list[Resource], list[str]]:
        """The resources ``_revinclude`` adds to a page (search.html#revinclude), and a warning
        when there are more than ``MAX_REVINCLUDE``. Same isolation as ``_include``: this
        space only, readable bricks only, pushed into SQL; nothing when nothing matched."""
        found: list[Resource] = []
        seen: set[tuple[str, str]] = set()
        warnings: list[str] = []
        if not target_ids:
            return found, warnings
        for source, param in revincludes:
            room = MAX_REVINCLUDE - len(found)
            rows = store.revincludes(
                self.session, self.space.id, self.readable, source,
                param=param,
                targets=None if target_type == "Patient" else [
                    f"{target_type}/{rid}" for rid in target_ids],
                limit=room + 1,
            )
            if len(rows) > room:
                rows = rows[:room]
                warnings.append(f"_revinclude={source}:{param}: only the first "
                                f"{MAX_REVINCLUDE} resources are included")
            for row in rows:
                if (row.resource_type, row.id) not in seen:
                    seen.add((row.resource_type, row.id))
                    found.append(raw_resource(row))
            if len(found) >= MAX_REVINCLUDE:
                break
        return found, warnings

    def history(
        self, rtype: str | None, rid: str | None, params: Sequence[tuple[str, str]], path: str
    ) -> dict[str, Any]:
        self.target(rtype or "", rid or "")
        parsed = parse("", [p for p in params if p[0] != "_since"], known=())
        since = next((v for k, v in params if k == "_since"), None)
        since_at = None
        if since is not None:
            try:
                since_at = store.date_range(since)[0]
            except Exception as exc:
                raise FhirError(400, "invalid", f"bad _since {since!r}", code="bad_since") from exc
        if rtype is not None and rtype not in STORED_TYPES:
            raise FhirError(405, "not-supported", f"no history for {rtype}", code="no_history")
        if rid is not None and rtype is not None:
            self.require(self._row_any(rtype, rid).brick, READ)
        total, versions = store.history(
            self.session, self.space.id, self.readable, resource_type=rtype, resource_id=rid,
            since=since_at, count=parsed.count, offset=parsed.offset,
        )
        from fhir_server.search import history_entry

        bundle = searchset(
            base=self.base, path=path, raw=parsed.used, total=total, offset=parsed.offset,
            count=parsed.count, matches=[], now=self.op.now, bundle_type="history",
        )
        entries = [
            history_entry(self.base, v.resource_type, v.resource_id, v.version_id, v.method,
                          v.json, v.last_updated)
            for v in versions
        ]
        if entries:
            bundle["entry"] = entries
        return bundle

    def _row_any(self, rtype: str, rid: str, *, lock: bool = False) -> store.FhirResourceRow:
        row = (store.lock_row(self.session, rtype, rid) if lock
               else self.session.get(store.FhirResourceRow, (rtype, rid)))
        if row is None or row.space_id != self.space.id:
            raise NotFound(f"{rtype}/{rid} is not known")
        return row

    # ------------------------------------------------------------------ writes
    def _prepare(self, rtype: str, body: Any) -> tuple[dict[str, Any], str]:
        if rtype not in STORED_TYPES:
            raise FhirError(405, "not-supported", f"{rtype} cannot be written here",
                            code="read_only_type")
        if not isinstance(body, dict):
            raise FhirError(400, "invalid", "the body is not a JSON object", code="bad_body")
        resource = self._own_patient(dict(body))
        if resource.get("resourceType") != rtype:
            raise FhirError(400, "invalid", f"resourceType must be {rtype}",
                            code="type_mismatch")
        self._link_patient(resource)
        models.validate(resource, rtype)
        brick = brick_of(resource)
        if brick == MEASUREMENTS and rtype == "Observation":
            self._check_measurement(resource)
        return resource, brick

    def _link_patient(self, resource: dict[str, Any]) -> None:
        """Every stored resource concerns the space's patient (R4 Patient compartment)."""
        rtype = str(resource.get("resourceType"))
        own = f"Patient/{self.space.id}"
        if rtype == "Appointment":
            participants = list(resource.get("participant") or [])
            refs = [str((p.get("actor") or {}).get("reference", "")) for p in participants]
            self._check_refs(refs)
            if own not in refs:
                participants.append({"actor": {"reference": own}, "status": "accepted"})
            resource["participant"] = participants
            return
        field = PATIENT_FIELDS.get(rtype)
        if field is None:
            return
        value = resource.get(field)
        if isinstance(value, dict):
            self._check_refs([str(value.get("reference", ""))])
            if rtype == "Observation" and "identifier" in value and "reference" not in value:
                return  # MES API Mesures: the subject is the pairing identifier (AssignAuth|idPe)
            if "reference" not in value:
                resource[field] = {**value, "reference": own}
        elif value is None and rtype != "Device":
            resource[field] = {"reference": own}

    def _check_refs(self, refs: list[str]) -> None:
        for ref in refs:
            if ref.startswith("Patient/") and ref != f"Patient/{self.space.id}":
                raise FhirError(422, "processing",
                                "the resource must concern the caller's own patient",
                                code="foreign_patient")

    def _own_patient(self, node: Any) -> Any:
        """Resolve conditional references ``Patient?identifier=<system>|<INS>`` (http.html
        §3.1.0.11.2) to the space's Patient; another patient's is refused."""
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "reference" and isinstance(value, str) and value.startswith("Patient?"):
                    wanted = dict(parse_qsl(value[8:])).get("identifier", "")
                    if wanted.rsplit("|", 1)[-1] != self.space.ins:
                        raise FhirError(422, "processing",
                                        "the resource must concern the caller's own patient",
                                        code="foreign_patient")
                    out[key] = f"Patient/{self.space.id}"
                else:
                    out[key] = self._own_patient(value)
            return out
        if isinstance(node, list):
            return [self._own_patient(v) for v in node]
        return node

    def _check_measurement(self, resource: dict[str, Any]) -> None:
        app = self.app()
        is_app = self.actor.kind is ActorKind.APP
        subject = resource.get("subject") or {}
        if not is_app and not subject.get("identifier"):
            resource["subject"] = {
                **subject,
                "identifier": {"system": f"urn:oid:{self.space.ins_oid or INS_OID_NIR}",
                               "value": self.space.ins},
            }
        mes.validate_observation(
            resource, patient_ins=self.space.ins, app_oid=app.oid if app else None,
            subject_required=is_app,
        )

    def create(
        self, rtype: str, body: Any, *, if_none_exist: str | None = None,
        resource_id: str | None = None,
    ) -> Outcome:
        resource, brick = self._prepare(rtype, body)
        self.require(brick, WRITE)
        if rtype == "Consent" and brick == CONSENTS:
            raise FhirError(422, "business-rule",
                            "app pairings are created through the OAuth2 authorization flow",
                            code="pairing_via_oauth")
        if if_none_exist:
            existing = self.conditional_match(rtype, if_none_exist)
            if existing is not None:
                self.target(rtype, existing.id)
                if existing.brick not in self.readable:
                    # a write-only caller learns the match's id (to reference it), never its
                    # content: the answer carries no representation
                    self.op.detail["matched_unreadable"] = True
                    return Outcome(200, None, rtype, existing.id, existing.version_id)
                return Outcome(200, store.resource_of(existing), rtype, existing.id,
                               existing.version_id, store.resource_of(existing)["meta"]
                               ["lastUpdated"])
        rid = resource_id if resource_id and store.id_is_free(self.session, rtype, resource_id) \
            else None
        row = store.create(self.session, self.space.id, resource, brick=brick,
                           writer=self.writer(resource), now=self.op.now, resource_id=rid)
        self.target(rtype, row.id)
        self._after_write(rtype, "create", resource, row.id)
        stored = store.resource_of(row)
        return Outcome(201, stored, rtype, row.id, row.version_id, stored["meta"]["lastUpdated"])

    def conditional_match(self, rtype: str, query: str) -> store.FhirResourceRow | None:
        """``If-None-Exist`` (http.html#ccreate): 0 matches create, 1 returns it, 2+ is 412.

        The match is searched "as the user" among the bricks the caller may read or write (a
        write-only feeder must find the Device it created; a brick it can neither read nor
        write is not probed)."""
        params = parse_qsl(query.lstrip("?"), keep_blank_values=True)
        if not params:
            raise FhirError(400, "invalid", "empty If-None-Exist", code="bad_if_none_exist")
        parsed = parse(rtype, params)
        if parsed.includes or parsed.sort or parsed.summary_count:
            raise FhirError(400, "invalid", "If-None-Exist takes search criteria only",
                            code="bad_if_none_exist")
        total, rows = store.search(
            self.session,
            store.SearchQuery(rtype, self.space.id, self.readable | self.writable,
                              parsed.criteria, count=2),
        )
        if total > 1:
            raise FhirError(412, "duplicate", "If-None-Exist matches several resources",
                            code="conditional_multiple")
        return rows[0] if rows else None

    def update(self, rtype: str, rid: str, body: Any, *, if_match: str | None) -> Outcome:
        if isinstance(body, dict) and body.get("id") != rid:
            raise FhirError(400, "invalid", "the resource id must match the URL id",
                            code="id_mismatch")
        resource, brick = self._prepare(rtype, body)
        row = store.lock_row(self.session, rtype, rid)
        if row is None or row.space_id != self.space.id:
            self.require(brick, WRITE)
            raise FhirError(405, "not-supported",
                            "update as create is not supported (server-assigned ids)",
                            code="no_update_create")
        self.target(rtype, rid)
        self.require(row.brick, WRITE)
        self.require(brick, WRITE)
        self._check_owner(row, editing=True)
        version = parse_etag(if_match)
        if row.brick == CONSENTS or brick == CONSENTS:
            if row.brick != brick:
                raise FhirError(422, "business-rule", "a pairing stays a pairing",
                                code="pairing_kind_change")
            pairing.apply_update(self, row, resource)
        store.update(self.session, row, resource, writer=self.writer(resource), now=self.op.now,
                     if_match=version, brick=brick)
        self._after_write(rtype, "update", resource, rid)
        stored = store.resource_of(row)
        return Outcome(200, stored, rtype, rid, row.version_id, stored["meta"]["lastUpdated"])

    def conditional_update(self, rtype: str, params: Sequence[tuple[str, str]], body: Any,
                           *, if_match: str | None) -> Outcome:
        """``PUT [type]?criteria`` (http.html#cond-update; ANS GAP flow 6 updates an
        Appointment by its identifier): no match creates, one match updates, several: 412."""
        if not params:
            raise FhirError(400, "invalid", "conditional update needs search criteria",
                            code="bad_conditional_update")
        existing = self.conditional_match(rtype, "&".join(f"{k}={v}" for k, v in params))
        if existing is None:
            if isinstance(body, dict) and body.get("id"):
                raise FhirError(400, "invalid", "no match: the body must not carry an id",
                                code="id_mismatch")
            return self.create(rtype, body)
        if isinstance(body, dict) and body.get("id") not in (None, existing.id):
            raise FhirError(400, "invalid", "the body id is not the matched resource's",
                            code="id_mismatch")
        return self.update(rtype, existing.id, {**body, "id": existing.id}
                           if isinstance(body, dict) else body, if_match=if_match)

    def patch(self, rtype: str, rid: str, patch: Any, *, if_match: str | None) -> Outcome:
        """``PATCH [type]/[id]`` with a JSON Patch (http.html#patch, RFC 6902): the current
        version is read under the row lock, patched, and written as an update (same
        validation, same ``If-Match`` and ownership rules). Patching reads the resource
        (``test`` operations, the returned representation), so the caller needs read and
        write on its brick."""
        if rtype not in STORED_TYPES:
            raise FhirError(405, "not-supported", f"{rtype} cannot be patched here",
                            code="read_only_type")
        self.target(rtype, rid)
        row = self._row_any(rtype, rid, lock=True)
        self.require(row.brick, READ)
        self.require(row.brick, WRITE)
        if row.deleted:
            raise store.Gone(f"{rtype}/{rid} was deleted")
        self._check_owner(row, editing=True)
        version = parse_etag(if_match)
        if version is not None and version != row.version_id:
            raise store.VersionConflict(
                f"version {version} is stale, current is {row.version_id}",
                code="version_conflict")
        current = store.resource_of(row)
        try:
            patched = jsonpatch.apply(current, patch)
        except jsonpatch.PatchError as exc:
            invalid = isinstance(exc, jsonpatch.PatchInvalid)
            where = "" if exc.index is None else f"patch operation {exc.index}: "
            raise FhirError(
                400 if invalid else 422, "invalid" if invalid else "processing",
                f"{where}{exc.message}", code="bad_patch" if invalid else "patch_failed",
            ) from exc
        if not isinstance(patched, dict) or patched.get("resourceType") != rtype or \
                patched.get("id") != rid:
            raise FhirError(422, "processing", "a patch may not change resourceType or id",
                            code="patch_identity")
        self.op.detail["patch_operations"] = len(patch)
        return self.update(rtype, rid, patched, if_match=if_match)

    def conditional_rows(self, rtype: str, params: Sequence[tuple[str, str]],
                         what: str) -> list[store.FhirResourceRow]:
        """At most two current matches of ``[type]?criteria`` among the resources the caller
        may read (conditional delete and patch: a search, then an action)."""
        if rtype not in STORED_TYPES:
            raise FhirError(405, "not-supported", f"{rtype} cannot be changed here",
                            code="read_only_type")
        criteria = [(k, v) for k, v in params if k not in ("_format", "_pretty")]
        if not criteria:
            raise FhirError(400, "invalid", f"{what} needs search criteria",
                            code="bad_conditional")
        parsed = parse(rtype, criteria)
        if parsed.includes or parsed.revincludes or parsed.sort or parsed.summary_count:
            raise FhirError(400, "invalid", f"{what} takes search criteria only",
                            code="bad_conditional")
        self.op.detail["query"] = "&".join(f"{k}={v}" for k, v in criteria)[:1000]
        bricks = self.readable if self.patient_filter_ok(parsed) else frozenset()
        _, rows = store.search(
            self.session, store.SearchQuery(rtype, self.space.id, bricks, parsed.criteria,
                                            count=2),
        )
        return rows

    def conditional_delete(self, rtype: str, params: Sequence[tuple[str, str]]) -> Outcome:
        """``DELETE [type]?criteria`` (http.html#cdelete, "single" support): no match deletes
        nothing (204), one match is an ordinary delete, several: 412."""
        self.target(rtype)
        rows = self.conditional_rows(rtype, params, "conditional delete")
        if len(rows) > 1:
            raise FhirError(412, "multiple-matches",
                            "conditional delete matches several resources",
                            code="conditional_multiple")
        if not rows:
            self.op.detail["matches"] = 0
            return Outcome(204, None, rtype, "")
        return self.delete(rtype, rows[0].id)

    def conditional_patch(self, rtype: str, params: Sequence[tuple[str, str]], patch: Any,
                          *, if_match: str | None) -> Outcome:
        """``PATCH [type]?criteria`` (http.html#patch): one match is patched, none is a 404,
        several a 412 (the rules of conditional update, without update-as-create)."""
        self.target(rtype)
        rows = self.conditional_rows(rtype, params, "conditional patch")
        if len(rows) > 1:
            raise FhirError(412, "multiple-matches",
                            "conditional patch matches several resources",
                            code="conditional_multiple")
        if not rows:
            raise FhirError(404, "not-found", "conditional patch matches no resource",
                            code="conditional_none")
        return self.patch(rtype, rows[0].id, patch, if_match=if_match)

    def delete(self, rtype: str, rid: str) -> Outcome:
        if rtype not in STORED_TYPES:
            raise FhirError(405, "not-supported", f"{rtype} cannot be deleted here",
                            code="read_only_type")
        self.target(rtype, rid)
        row = self._row_any(rtype, rid, lock=True)
        self.require(row.brick, WRITE)
        if row.deleted:
            return Outcome(204, None, rtype, rid, row.version_id)
        self._check_owner(row, editing=False)
        if row.brick == CONSENTS:
            pairing.withdraw(self, store.resource_of(row))
        store.remove(self.session, row, writer=self.writer(), now=self.op.now)
        return Outcome(204, None, rtype, rid, row.version_id)

    def _check_owner(self, row: store.FhirResourceRow, *, editing: bool) -> None:
        """App data: the app edits and deletes its own; the patient deletes it, never edits."""
        if self.actor.kind is ActorKind.SYSTEM:
            return
        app_id = self.actor.app_id or self.actor.id
        if self.actor.kind is ActorKind.APP:
            if row.source_app != app_id:
                raise FhirError(403, "forbidden", "an app may only change the data it wrote",
                                code="not_owner")
        elif row.source_app and editing:
            raise FhirError(403, "forbidden",
                            "data written by an app may be deleted by the patient, not edited",
                            code="app_data_read_only")

    def _after_write(self, rtype: str, interaction: str, resource: dict[str, Any],
                     rid: str) -> None:
        if rtype == "Immunization" and interaction == "create":
            notify(
                self.session, self.space, "vaccination_added",
                "Une vaccination a été ajoutée à votre profil médical.",
                dedup_key=f"vaccination:{self.space.id}:{rid}", now=self.op.now,
            )
