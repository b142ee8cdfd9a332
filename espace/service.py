"""The application service: storage, policy, clock, cipher and trace, wired once per process.

``Espace.operation()`` is the one road every face takes for every transaction (the
enforcement point's core, as HAPI's ``ConsentInterceptor``/Medplum's per-request repository):

1. load the space and its consent state,
2. ask the policy decision point once (``authorize_operation``),
3. run the use case in one database transaction,
4. append the trace record (permit or deny, success or failure) and the notifications in the
   same transaction; a failure or a denial is traced in a fresh transaction after rollback.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, exists, select
from sqlalchemy.orm import Session, sessionmaker

from espace import trace
from espace.clock import Clock
from espace.crypto import DocumentCipher
from espace.errors import AccessDenied, UnknownSpace
from espace.models import PatientSpace, TraceHead, TraceRecord
from espace.notifications import enqueue
from espace.spaces import space_facts
from espace.trace import GENESIS, HeadSnapshot, Source, Target, TraceEntry, TraceSigner
from habilitation.model import (
    AccessRequest,
    Action,
    Actor,
    ActorKind,
    Decision,
    DocumentFacts,
    DocumentVisibility,
    Obligation,
    SpaceFacts,
)
from habilitation.pdp import PolicyDecisionPoint

# Actions by which a professional accesses the record: the first one notifies the patient.
# (Delivering a secure message or testing existence is not an access to the record.)
RECORD_ACCESS_ACTIONS = frozenset(
    {
        Action.READ_ADMINISTRATIVE_DATA,
        Action.SUBMIT_DOCUMENT,
        Action.SEARCH_METADATA,
        Action.SEARCH_REFERENCE,
        Action.READ_DOCUMENT,
        Action.MASK_DOCUMENT,
        Action.UNMASK_DOCUMENT,
        Action.MAKE_VISIBLE_TO_PATIENT,
        Action.DELETE_DOCUMENT,
        Action.ARCHIVE_DOCUMENT,
        Action.UNARCHIVE_DOCUMENT,
    }
)

# Actions whose transaction holds the patient space row (``FOR NO KEY UPDATE``) from its first
# statement: concurrent submissions to one space run one after the other, so the idempotency
# and duplicate checks of ITI-41/ITI-42 (IHE ITI TF-3 4.1.7, 4.2.4.1) see every committed copy
# even under READ COMMITTED. Writes to other spaces, and reads of this one, are not held up.
SERIALIZED_ACTIONS = frozenset({Action.SUBMIT_DOCUMENT})


@dataclass
class Operation:
    """One transaction in progress: its session, actor, space, decision and trace target."""

    session: Session
    actor: Actor
    action: Action
    event_type: str
    source: Source
    espace: Espace
    space: PatientSpace | None = None
    space_id: str | None = None  # kept apart: ``space`` expires when the transaction rolls back
    facts: SpaceFacts | None = None
    decision: Decision = field(default_factory=lambda: Decision.deny("pending", "not decided"))
    target: Target = field(default_factory=Target)
    detail: dict[str, Any] = field(default_factory=dict)
    outcome: str = "success"
    error_code: str = ""
    # read with the space, in the same statement: the trace chain head (a compare-and-set guess
    # for the append) and whether the professional already accessed the record (None: unknown)
    trace_head: HeadSnapshot | None = None
    accessed_before: bool | None = None

    @property
    def now(self) -> Any:
        return self.espace.clock.now()

    def visibility(self) -> DocumentVisibility:
        """The documents of this space the actor may see (a predicate for SQL)."""
        if self.facts is None:
            from habilitation.model import NOTHING_VISIBLE

            return NOTHING_VISIBLE
        return self.espace.pdp.visible_documents(self.actor, self.facts)

    def authorize(self, action: Action, document: DocumentFacts | None = None) -> Decision:
        """A further decision inside the same transaction (e.g. per-document rights in ITI-57).

        Raises AccessDenied when refused; the operation's trace then records this decision.
        """
        decision = self.espace.pdp.authorize_operation(
            AccessRequest(self.actor, action, self.facts, document)
        )
        if not decision.permitted:
            self.decision = decision
            raise AccessDenied(decision)
        return decision

    def notify(self, category: str, body: str, *, dedup_key: str) -> None:
        if self.space is not None:
            enqueue(self.session, self.space, category, body, dedup_key=dedup_key, now=self.now)


@dataclass
class Espace:
    session_factory: sessionmaker[Session]
    pdp: PolicyDecisionPoint
    clock: Clock
    cipher: DocumentCipher
    signer: TraceSigner
    settings: Mapping[str, Any] = field(default_factory=dict)

    @contextmanager
    def operation(
        self,
        actor: Actor,
        action: Action,
        *,
        event_type: str,
        source: Source,
        space_ins: str | None = None,
        space_id: str | None = None,
        document: DocumentFacts | None = None,
        target: Target | None = None,
        require_space: bool = True,
    ) -> Iterator[Operation]:
        """Run one traced, policy-checked transaction (see the module docstring)."""
        session = self.session_factory()
        op = Operation(session, actor, action, event_type, source, self)
        if target is not None:
            op.target = target
        try:
            if space_ins is not None or space_id is not None:
                self._load_space(op, space_ins=space_ins, space_id=space_id)
            if op.space is not None:
                op.space_id = op.space.id
                op.facts = space_facts(session, op.space, self.clock.now())
            elif require_space and (space_ins is not None or space_id is not None):
                op.decision = Decision.deny("unknown_space", "no patient space for this identity")
                raise UnknownSpace(f"no patient space for {space_ins or space_id}")
            op.decision = self.pdp.authorize_operation(
                AccessRequest(actor, action, op.facts, document)
            )
            if not op.decision.permitted:
                raise AccessDenied(op.decision)
            yield op
            self._after_permit(op)
            trace.append(
                session,
                self._entry(op),
                now=self.clock.now(),
                signer=self.signer,
                head=op.trace_head,
            )
            session.commit()
        except BaseException as exc:
            session.rollback()
            op.outcome = "denied" if isinstance(exc, AccessDenied) else "failure"
            op.error_code = op.error_code or str(getattr(exc, "code", type(exc).__name__))
            if isinstance(exc, AccessDenied):
                op.decision = exc.decision
            self._trace_failure(op)
            raise
        finally:
            session.close()

    def _load_space(self, op: Operation, *, space_ins: str | None, space_id: str | None) -> None:
        """Load the space, its trace head and the first-access fact in one statement.

        For ``SERIALIZED_ACTIONS`` the space row is locked ``FOR NO KEY UPDATE`` (PostgreSQL;
        SQLite's ``BEGIN IMMEDIATE`` already serializes writers): this does not conflict with
        the ``FOR KEY SHARE`` locks that inserts referencing the space take.
        """
        check_first_access = (
            op.actor.kind is ActorKind.PROFESSIONAL and op.action in RECORD_ACCESS_ACTIONS
        )
        statement = _load_statement(
            by_ins=space_ins is not None,
            first_access=check_first_access,
            lock=op.action in SERIALIZED_ACTIONS,
        )
        parameters = {"space_key": space_ins if space_ins is not None else space_id}
        if check_first_access:
            parameters["actor_id"] = op.actor.id
        row = op.session.execute(statement, parameters).first()
        if row is None:
            return
        op.space = row[0]
        op.trace_head = (
            HeadSnapshot(0, GENESIS) if row[1] is None else HeadSnapshot(int(row[1]), row[2])
        )
        if check_first_access:
            op.accessed_before = bool(row[3])

    def _after_permit(self, op: Operation) -> None:
        if op.space is None:
            return
        actor = op.actor
        if Obligation.NOTIFY_PATIENT_NOW in op.decision.obligations:
            op.notify(
                "emergency_access",
                f"Le {op.now:%d/%m/%Y à %H:%M}, {actor.name or actor.id} a accédé à votre "
                f"dossier en mode « {actor.access_mode} ».",
                dedup_key=f"emergency:{op.space.id}:{actor.id}:{op.source.request_id or op.now}",
            )
        if actor.kind is ActorKind.PROFESSIONAL and op.action in RECORD_ACCESS_ACTIONS:
            seen = op.accessed_before
            if seen is None:
                seen = (
                    op.session.execute(
                        select(TraceRecord.id)
                        .where(_record_accesses(op.space.id, actor.id))
                        .limit(1)
                    ).first()
                    is not None
                )
            if not seen:
                op.notify(
                    "first_access",
                    f"{actor.name or actor.id} a accédé pour la première fois à votre dossier "
                    f"médical le {op.now:%d/%m/%Y}.",
                    dedup_key=f"first_access:{op.space.id}:{actor.id}",
                )

    def _entry(self, op: Operation) -> TraceEntry:
        return TraceEntry(
            actor=op.actor,
            action=str(op.action),
            event_type=op.event_type,
            decision=op.decision,
            outcome=op.outcome,
            source=op.source,
            space_id=op.space_id,
            target=op.target,
            error_code=op.error_code,
            detail=op.detail,
        )

    def _trace_failure(self, op: Operation) -> None:
        with self.session_factory() as session:
            # the head read by the rolled-back transaction is still a fair guess (compare-and-set)
            trace.append(
                session,
                self._entry(op),
                now=self.clock.now(),
                signer=self.signer,
                head=op.trace_head,
            )
            session.commit()

    def record(self, entry: TraceEntry) -> None:
        """Trace an event that did not reach a use case (e.g. a refused VIHF signature)."""
        with self.session_factory() as session:
            trace.append(session, entry, now=self.clock.now(), signer=self.signer)
            session.commit()


@functools.cache
def _load_statement(
    *, by_ins: bool, first_access: bool, lock: bool
) -> Select[*tuple[Any, ...]]:
    """The statement of ``Espace._load_space``, built once per shape with bound parameters
    ``space_key`` (and ``actor_id``): building and cache-keying a statement on every request
    cost ~0.4 ms of CPU (issue #8), a prebuilt one is keyed once (SQLAlchemy memoizes it)."""
    statement: Select[*tuple[Any, ...]] = select(
        PatientSpace, TraceHead.seq, TraceHead.hash
    ).outerjoin(
        TraceHead, TraceHead.space_key == PatientSpace.id
    )
    if first_access:
        statement = statement.add_columns(
            exists()
            .where(_record_accesses(PatientSpace.id, bindparam("actor_id")))
            .label("accessed_before")
        )
    key = PatientSpace.ins if by_ins else PatientSpace.id
    statement = statement.where(key == bindparam("space_key"))
    if lock:
        statement = statement.with_for_update(key_share=True, of=PatientSpace)
    return statement


def _record_accesses(space_key: Any, actor_id: Any) -> Any:
    """The WHERE clause of the successful record accesses of ``actor_id`` in a space's trace."""
    return (
        (TraceRecord.space_key == space_key)
        & (TraceRecord.actor_id == actor_id)
        & (TraceRecord.outcome == "success")
        & TraceRecord.action.in_(sorted(str(a) for a in RECORD_ACCESS_ACTIONS))
    )
