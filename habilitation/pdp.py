"""The policy decision point: who may do what on a patient space, and why.

Two questions, as HAPI FHIR's ``IConsentService`` asks them:

- :meth:`PolicyDecisionPoint.authorize_operation`, once per transaction (``startOperation``);
  when the request names a document that is read (or, for the patient side, acted upon), the
  document must also be visible;
- :meth:`PolicyDecisionPoint.visible_documents`, the predicate the store pushes into SQL before
  paging (``SearchNarrowingInterceptor``), and :meth:`PolicyDecisionPoint.can_see_document`,
  the same predicate on one document, with the rule that excludes it (``canSeeResource``).

The rules (``habilitation/rules/``) are combined by :func:`habilitation.combiner.deny_overrides`:
deny overrides, no permit means DENY (``default_deny``).

Statuses (``DocumentVisibility.statuses``): a professional sees Approved entries plus the
Archived, Deprecated (older versions) and Deleted ones where PDT-INF-526 TD3.2 says oui; a search
that names no status returns Approved only (:func:`habilitation.visibility.search_statuses`).
The patient side sees Approved and Archived entries.

Obligations (``NOTIFY_PATIENT_NOW`` for bris de glace / centre 15) ride on the
``authorize_operation`` decision of the transaction; the visibility predicate carries none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike

from habilitation.combiner import deny_overrides
from habilitation.context import DOCUMENT_ACTIONS, Context
from habilitation.matrix import HabilitationMatrix
from habilitation.model import (
    NOTHING_VISIBLE,
    AccessRequest,
    Action,
    Actor,
    ActorKind,
    Decision,
    DocumentFacts,
    DocumentVisibility,
    SpaceFacts,
)
from habilitation.rights import ActorCategory, FunctionalRights
from habilitation.rules import (
    app_pairing,
    blocked_professionals,
    break_glass,
    care_team,
    functional_rights,
    legal_representative,
    masked_documents,
    messaging,
    minor_secret,
    profession_matrix,
    service_actors,
    space_status,
    unknown_roles,
)
from habilitation.visibility import explain_exclusion

Rule = Callable[[Context], Decision | None]

RULES: Sequence[Rule] = (
    space_status.decide,
    unknown_roles.decide,
    profession_matrix.decide,
    blocked_professionals.decide,
    service_actors.decide,
    legal_representative.decide,
    app_pairing.decide,
    functional_rights.decide,
    care_team.decide,
    break_glass.decide,
    messaging.decide,
    minor_secret.decide,
)
"""The rules, in evaluation order (the first DENY is the one reported)."""

_STRUCTURE_CATEGORIES = frozenset({ActorCategory.NON_PS_CPE, ActorCategory.STRUCTURE_CERTIFICATE})


class PolicyDecisionPoint:
    """Decide access requests from the habilitation matrix and PDT-INF-526. No I/O."""

    def __init__(
        self,
        matrix: HabilitationMatrix | None = None,
        functional_rights: FunctionalRights | None = None,
    ) -> None:
        self.matrix = matrix if matrix is not None else HabilitationMatrix.default()
        self.functional_rights = (
            functional_rights if functional_rights is not None else FunctionalRights.default()
        )

    @classmethod
    def from_path(
        cls,
        matrix_path: str | PathLike[str],
        functional_rights_path: str | PathLike[str] | None = None,
    ) -> PolicyDecisionPoint:
        """Build a PDP from a configured habilitation matrix (and optionally PDT-INF-526) file."""
        return cls(
            HabilitationMatrix.from_path(matrix_path),
            FunctionalRights.from_path(functional_rights_path) if functional_rights_path else None,
        )

    def _context(self, request: AccessRequest) -> Context:
        return Context.build(request, self.matrix, self.functional_rights)

    def _combine(self, ctx: Context) -> Decision:
        return deny_overrides(rule(ctx) for rule in RULES)

    def authorize_operation(self, request: AccessRequest) -> Decision:
        """Decide one transaction; when it names a document to read, check it is visible."""
        ctx = self._context(request)
        decision = self._combine(ctx)
        doc = request.document
        if not decision.permitted or doc is None or request.space is None:
            return decision
        if request.action is Action.READ_DOCUMENT or (
            ctx.is_patient_side and request.action in DOCUMENT_ACTIONS
        ):
            seen = self.can_see_document(request.actor, request.space, doc)
            if not seen.permitted:
                return seen
        return decision

    def visible_documents(self, actor: Actor, space: SpaceFacts) -> DocumentVisibility:
        """Return the predicate selecting the entries of ``space`` the actor may see."""
        read = AccessRequest(actor, Action.READ_DOCUMENT, space)
        ctx = self._context(read)
        gate = self._combine(ctx)
        if not gate.permitted:
            if ctx.category in _STRUCTURE_CATEGORIES:
                ref_ctx = self._context(AccessRequest(actor, Action.SEARCH_REFERENCE, space))
                ref = self._combine(ref_ctx)
                if ref.permitted:
                    return functional_rights.structure_reference_visibility(ref_ctx, ref.rule_id)
            return DocumentVisibility(nothing=True, rule_id=gate.rule_id, reason=gate.reason)
        if actor.kind is ActorKind.PROFESSIONAL:
            return self._professional_visibility(ctx, gate)
        if ctx.is_patient_side or actor.kind is ActorKind.APP:
            return legal_representative.visibility(actor.kind, gate.rule_id, gate.reason)
        return NOTHING_VISIBLE  # pragma: no cover - no other kind is granted READ_DOCUMENT

    def _professional_visibility(self, ctx: Context, gate: Decision) -> DocumentVisibility:
        column = ctx.column
        types = profession_matrix.readable_type_codes(ctx.actor, self.matrix)
        if column is None or types is None:  # pragma: no cover - the gate denied these
            return NOTHING_VISIBLE
        hidden, exempt = masked_documents.hidden_codes(ctx)
        return DocumentVisibility(
            statuses=functional_rights.readable_statuses(self.functional_rights, column),
            allowed_type_codes=types,
            # the author reads their own documents whatever the matrix (PDT-INF-526 note 6)
            type_codes_exempt_authors=frozenset({ctx.actor.id}),
            hidden_confidentiality_codes=hidden,
            hidden_codes_exempt_authors=exempt,
            rule_id=gate.rule_id,
            reason=gate.reason,
        )

    def can_see_document(self, actor: Actor, space: SpaceFacts, doc: DocumentFacts) -> Decision:
        """Decide one document, exactly as ``visible_documents(actor, space).matches(doc)``."""
        vis = self.visible_documents(actor, space)
        excluded = explain_exclusion(vis, doc)
        if excluded is not None:
            return Decision.deny(*excluded)
        return Decision.permit(vis.rule_id, vis.reason)


__all__ = ["RULES", "PolicyDecisionPoint"]
