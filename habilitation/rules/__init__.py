"""The rules of the policy decision point, one small module each.

Every module exposes ``decide(ctx: Context) -> Decision | None``: a PERMIT when it grants, a
DENY when it forbids, None when it does not apply. :mod:`habilitation.combiner` combines them
(deny overrides; no permit means DENY). Some modules also contribute to the document
visibility predicate (:func:`habilitation.pdp.PolicyDecisionPoint.visible_documents`).
"""
