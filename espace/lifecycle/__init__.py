"""The life of a patient space: enrolment, opposition, creation, activation, closure, reopening,
definitive deletion, death, purge, and the representatives of minors and protected adults.

Sources (see docs/lifecycle.md for what could not be sourced):

- CSP L.1111-13-1 and L.1111-14 (loi 2019-774, ordonnance 2020-1407): the space is opened
  automatically unless the person, the legal representative of a minor or the person in charge
  of a protection measure objects, after being informed;
- décret 2021-1048 (CSP R.1111-26 to R.1111-43): six-week opposition period after the
  information (letter or e-mail carrying a one-time code);
- CSP R.1111-36: closure at any time; data archived ten years after closure then deleted; an
  express request deletes earlier; a new space may be created at any time and receives the
  archived data;
- HL7v3 PRPA_IN201314UV02 (DMP TD1.4): closure reasons ``FERMETURE_DEMANDE_PATIENT``...

Every step runs in exactly one :meth:`espace.service.Espace.operation` (policy + trace + outbox
in one transaction) and notifies the person (``espace.notifications``). Durations read the
injectable clock. Enrolment codes are stored as scrypt hashes only.

Modules: ``model`` (tables, constants, results), ``common`` (shared helpers), ``codes``
(one-time codes), ``throttle`` (soft lockouts of code guesses and new-code requests),
``code_delivery`` (a new code sent to the contact channel on file, the letters' print
queue), ``export_jobs`` (the export requested, built by the job worker, downloaded;
imported on use, not re-exported), ``enrolment``, ``opposition``, ``activation``
(creation and activation), ``closure`` (closure, reopening, death, deletion),
``representatives``, ``majority`` and ``jobs`` (automatic creation, purge, the scheduler's
entry point). This package re-exports their public names: ``from espace.lifecycle import
enrol`` is the way to import them.
"""

from __future__ import annotations

from espace.lifecycle.activation import activate, create_voluntarily, space_state
from espace.lifecycle.activation import check_email as _check_email
from espace.lifecycle.activation import check_phone as _check_phone
from espace.lifecycle.closure import (
    close,
    delete_definitively,
    purge_space_rows,
    record_death,
    reopen,
)
from espace.lifecycle.code_delivery import (
    CodeRequestLimited,
    Letter,
    print_letters,
    request_new_code,
    send_new_code,
)
from espace.lifecycle.codes import issue_new_code, normalize_code
from espace.lifecycle.common import (
    add_years,
    age_of,
    get_space_or_raise,
    opposition_period,
    retention_years,
    settings_duration,
    support_actor,
    system_actor,
)
from espace.lifecycle.enrolment import enrol, report_bounce
from espace.lifecycle.jobs import run_automatic_creation, run_due_jobs, run_purge
from espace.lifecycle.majority import run_majority
from espace.lifecycle.model import (
    CLOSURE_REASONS,
    CODE_ALPHABET,
    CODE_BACKOFF_BASE,
    CODE_BACKOFF_MAX,
    CODE_FREE_ATTEMPTS,
    CODE_LENGTH,
    CODE_REQUESTER_MEMORY,
    CODE_SPACE_ATTEMPTS_PER_HOUR,
    CODE_VALIDITY,
    NEW_CODE_PER_ADDRESS_PER_HOUR,
    NEW_CODE_PER_SPACE_PER_DAY,
    OPPOSITION_PERIOD,
    PATIENT_SIDE,
    REPRESENTATIVE_KINDS,
    RETENTION_YEARS,
    TERMS_VERSION,
    AttemptCounter,
    CodeDelivery,
    CodeLetter,
    Enrolment,
    EnrolmentCode,
    ExportArchive,
    JobReport,
    OppositionReceipt,
    Person,
    PreventionCampaign,
    SpaceLifecycle,
    SpaceState,
    Timestamp,
)
from espace.lifecycle.opposition import oppose, opposition_receipt
from espace.lifecycle.representatives import (
    answer_invitation,
    attach_representative,
    invite_representative,
    list_representatives,
)
from espace.lifecycle.throttle import TooManyAttempts

__all__ = [
    "CLOSURE_REASONS",
    "CODE_ALPHABET",
    "CODE_BACKOFF_BASE",
    "CODE_BACKOFF_MAX",
    "CODE_FREE_ATTEMPTS",
    "CODE_LENGTH",
    "CODE_REQUESTER_MEMORY",
    "CODE_SPACE_ATTEMPTS_PER_HOUR",
    "CODE_VALIDITY",
    "NEW_CODE_PER_ADDRESS_PER_HOUR",
    "NEW_CODE_PER_SPACE_PER_DAY",
    "OPPOSITION_PERIOD",
    "PATIENT_SIDE",
    "REPRESENTATIVE_KINDS",
    "RETENTION_YEARS",
    "TERMS_VERSION",
    "AttemptCounter",
    "CodeDelivery",
    "CodeLetter",
    "CodeRequestLimited",
    "Enrolment",
    "EnrolmentCode",
    "ExportArchive",
    "JobReport",
    "Letter",
    "OppositionReceipt",
    "Person",
    "PreventionCampaign",
    "SpaceLifecycle",
    "SpaceState",
    "Timestamp",
    "TooManyAttempts",
    "_check_email",
    "_check_phone",
    "activate",
    "add_years",
    "age_of",
    "answer_invitation",
    "attach_representative",
    "close",
    "create_voluntarily",
    "delete_definitively",
    "enrol",
    "get_space_or_raise",
    "invite_representative",
    "issue_new_code",
    "list_representatives",
    "normalize_code",
    "opposition_period",
    "opposition_receipt",
    "oppose",
    "print_letters",
    "purge_space_rows",
    "record_death",
    "reopen",
    "report_bounce",
    "request_new_code",
    "retention_years",
    "run_automatic_creation",
    "run_due_jobs",
    "run_majority",
    "run_purge",
    "send_new_code",
    "settings_duration",
    "space_state",
    "support_actor",
    "system_actor",
]
