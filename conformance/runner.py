"""Run the kit: pick the target (in-process or ``--target``), run the suites, write reports.

In process, each part runs on a fresh server: the NIST testkit with ``AFFINITY_DOMAIN =
connectathon`` (its metadata uses the IHE Connectathon code sets), the DMP examples, FHIR and
mail with the default DMP affinity domain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from conformance.context import KitContext, PatientSource
from conformance.model import CaseResult, SuiteSummary, summarize
from conformance.pki import kit_pki
from conformance.report import write_reports
from conformance.server import EspacePatients, PooledPatients, serve_in_process
from conformance.transport import Transport
from conformance.xds.soap import XdsEndpoints

SUITES: Final = ("xds", "fhir", "mail")

Part = Callable[[KitContext], list[CaseResult]]


def _nist(context: KitContext) -> list[CaseResult]:
    from conformance.xds.suite import run_nist

    return run_nist(context, context.extra.get("nist_tests"))


def _dmp(context: KitContext) -> list[CaseResult]:
    from conformance.xds.dmp_replay import run_dmp_replay

    return run_dmp_replay(context)


def _fhir(context: KitContext) -> list[CaseResult]:
    from conformance.fhir.suite import run_fhir

    return run_fhir(context)


def _mail(context: KitContext) -> list[CaseResult]:
    from conformance.mail import run_mail

    return run_mail(context)


#: suite -> parts, each with the affinity domain its in-process server needs.
PARTS: Final[dict[str, list[tuple[str, Part]]]] = {
    "xds": [("connectathon", _nist), ("dmp", _dmp)],
    "fhir": [("dmp", _fhir)],
    "mail": [("dmp", _mail)],
}


@dataclass
class RunResult:
    results: list[CaseResult]
    summaries: dict[str, SuiteSummary]
    reports: dict[str, Path] = field(default_factory=dict)


@contextmanager
def _context(
    target: str | None, pki_dir: Path, affinity: str, options: Mapping[str, Any]
) -> Iterator[KitContext]:
    pki = kit_pki(pki_dir)
    if target is None:
        with serve_in_process(pki_dir, affinity_domain=affinity) as server:
            transport = Transport(server.base_url)
            try:
                yield KitContext(
                    transport=transport,
                    pki=pki,
                    pki_dir=pki_dir,
                    patients=EspacePatients(server.espace, pki),
                    in_process=True,
                    oauth_settings={
                        k: server.settings[k]
                        for k in ("OAUTH_ISSUER", "OAUTH_AUDIENCE")
                        if k in server.settings
                    },
                    extra={"espace": server.espace, **options},
                )
            finally:
                transport.close()
        return
    transport = Transport(target, verify=options.get("verify", True))
    espace = options.get("espace")  # a target whose database the caller holds (tests)
    patients: PatientSource = (
        EspacePatients(espace, pki)
        if espace is not None
        else PooledPatients(start=int(options.get("patient_offset", 0)))
    )
    try:
        yield KitContext(
            transport=transport,
            pki=pki,
            pki_dir=pki_dir,
            patients=patients,
            xds_endpoints=XdsEndpoints(
                registry=options.get("registry_path", "/xds/registry"),
                repository=options.get("repository_path", "/xds/repository"),
            ),
            fhir_base=options.get("fhir_base", "/fhir"),
            in_process=False,
            oauth_settings=dict(options.get("oauth_settings", {})),
            extra=dict(options),
        )
    finally:
        transport.close()


def run(
    *,
    suites: list[str],
    pki_dir: Path,
    parts: list[str] | None = None,
    target: str | None = None,
    report_dir: Path | None = None,
    options: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``suites`` against ``target`` (None: in process) and write the reports.

    ``parts`` limits the run to some parts (``nist``, ``dmp``, ``fhir``, ``mail``); options:
    ``nist_tests`` (test ids), ``verify`` (TLS), ``patient_offset`` (pool), ``espace`` (the
    target's :class:`Espace`, to register patients directly), ``smtp`` (host:port).
    """
    options = dict(options or {})
    started = datetime.now(UTC).isoformat(timespec="seconds")
    results: list[CaseResult] = []
    for suite in suites:
        for affinity, part in PARTS[suite]:
            if parts is not None and part.__name__.strip("_") not in parts:
                continue
            begin = time.perf_counter()
            try:
                with _context(target, pki_dir, affinity, options) as context:
                    produced = part(context)
            except Exception as exc:  # a broken part is reported, the others still run
                crashed = CaseResult(
                    suite=suite,
                    case_id=f"{part.__name__.strip('_')}/crashed",
                    title=f"part {part.__name__.strip('_')} of suite {suite}",
                )
                crashed.error(f"{type(exc).__name__}: {exc}")
                produced = [crashed]
            results.extend(produced)
            if progress:
                progress(
                    f"{suite}/{part.__name__.strip('_')}: {len(produced)} cases in "
                    f"{time.perf_counter() - begin:.1f} s"
                )
    run_result = RunResult(results=results, summaries=summarize(results))
    if report_dir is not None:
        meta = {"target": target or "in-process", "started_at": started, "suites": suites}
        run_result.reports = write_reports(results, report_dir, meta)
    return run_result
