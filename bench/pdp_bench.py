"""Micro-benchmark of the policy decision point.

Run ``python bench/pdp_bench.py``: for ``authorize_operation`` and ``visible_documents`` it
prints decisions per second and microseconds per decision, as the median of 7 repeats with the
min and max. The workload mixes professionals (normal, bris de glace, centre 15, structure
modes), the patient side and apps, permits and denials, with and without a document.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# habilitation/ is pure Python: let the script run from a checkout without installing it
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from habilitation.model import (  # noqa: E402
    MASKED_TO_PROFESSIONALS,
    AccessMode,
    AccessRequest,
    Action,
    Actor,
    ActorKind,
    AuthenticationMode,
    DocumentFacts,
    Purpose,
    SpaceFacts,
    SpaceStatus,
)
from habilitation.pdp import PolicyDecisionPoint  # noqa: E402

REPEATS = 7
INS = "123456789012345"


def workload() -> tuple[list[AccessRequest], list[tuple[Actor, SpaceFacts]]]:
    space = SpaceFacts(
        space_id="s1",
        ins=INS,
        status=SpaceStatus.ACTIVE,
        is_minor=True,
        authorized_professionals=frozenset({f"8{i:011d}" for i in range(50)}),
        authorized_structures=frozenset({"S1"}),
        blocked_professionals=frozenset({"899999999999"}),
        medecin_traitant="800000000000",
        legal_representatives=frozenset({"LR1"}),
        app_consents={"app": frozenset({Purpose.DOCUMENTS_READ, Purpose.MEASUREMENTS_READ})},
    )

    def pro(id: str, profession: str, specialty: str | None, **kw: object) -> Actor:
        return Actor(
            ActorKind.PROFESSIONAL,
            id,
            profession=profession,
            specialty=specialty,
            structure_id="S1",
            authentication_mode=kw.pop("mode", AuthenticationMode.DIRECT),  # type: ignore[arg-type]
            **kw,  # type: ignore[arg-type]
        )

    actors = [
        pro("800000000000", "10", "SM26"),  # médecin traitant
        pro("800000000001", "10", "SM26"),
        pro("800000000002", "60", None),
        pro("800000000003", "21", "G15_21"),
        pro("877777777777", "10", "SM26", access_mode=AccessMode.BREAK_GLASS),
        pro("866666666666", "10", "SM26", access_mode=AccessMode.REGULATION),
        pro("800000000004", "10", "SM25"),  # médecin du travail
        pro("899999999999", "10", "SM26"),  # blocked
        pro("855555555555", "40", None),  # not authorized
        pro("CPE1", "", None, mode=AuthenticationMode.CPE),
        pro("800000000005", "10", "SM26", mode=AuthenticationMode.INDIRECT),
        Actor(ActorKind.PATIENT, INS, authentication_mode=AuthenticationMode.PATIENT_LOGIN),
        Actor(ActorKind.LEGAL_REPRESENTATIVE, "LR1", on_behalf_of=INS),
        Actor(ActorKind.APP, "app", app_id="app", on_behalf_of=INS),
    ]
    docs = [
        None,
        DocumentFacts("d1", "11488-4", author_ids=frozenset({"800000000001"})),
        DocumentFacts(
            "d2", "68599-0", frozenset({MASKED_TO_PROFESSIONALS}), frozenset({"800000000009"})
        ),
    ]
    actions = [
        Action.TEST_EXISTENCE,
        Action.SEARCH_METADATA,
        Action.READ_DOCUMENT,
        Action.SUBMIT_DOCUMENT,
        Action.DELETE_DOCUMENT,
        Action.READ_MEASUREMENTS,
    ]
    requests = [
        AccessRequest(actor, action, space, doc)
        for actor in actors
        for action in actions
        for doc in docs
    ]
    return requests, [(actor, space) for actor in actors]


def measure(label: str, run: Callable[[], int]) -> None:
    run()  # warm the caches
    rates: list[float] = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    median = statistics.median(rates)
    print(
        f"{label:<22} {median:>12,.0f} decisions/s  {1e6 / median:7.2f} µs/decision "
        f"(median of {REPEATS}; min {min(rates):,.0f}/s = {1e6 / min(rates):.2f} µs, "
        f"max {max(rates):,.0f}/s = {1e6 / max(rates):.2f} µs)"
    )


def main(rounds: int = 40) -> None:
    pdp = PolicyDecisionPoint()
    requests, pairs = workload()

    def authorize() -> int:
        for _ in range(rounds):
            for request in requests:
                pdp.authorize_operation(request)
        return rounds * len(requests)

    def visibility(batch: Sequence[tuple[Actor, SpaceFacts]] = pairs) -> int:
        for _ in range(rounds * 10):
            for actor, space in batch:
                pdp.visible_documents(actor, space)
        return rounds * 10 * len(batch)

    permits = sum(pdp.authorize_operation(r).permitted for r in requests)
    print(f"workload: {len(requests)} requests ({permits} permitted), {len(pairs)} actors")
    measure("authorize_operation", authorize)
    measure("visible_documents", visibility)


if __name__ == "__main__":
    main()
