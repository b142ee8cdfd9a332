"""Plain, immutable inputs and outputs of the policy decision point.

Nothing here performs I/O. The faces build an :class:`Actor` from what the wire carried
(VIHF assertion, OAuth2 bearer token, SMTP client certificate), the store builds
:class:`SpaceFacts` and :class:`DocumentFacts` from rows, and the PDP answers with a
:class:`Decision` (HAPI FHIR's ``Verdict``: the effect with the deciding rule) or a
:class:`DocumentVisibility` predicate that the store pushes into SQL before paging.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class ActorKind(StrEnum):
    """Who is calling. Unknown roles (insurer, employer, state...) have no kind: denied."""

    PROFESSIONAL = "professional"  # a health professional (PS) or a non-PS member of a care team
    PATIENT = "patient"
    LEGAL_REPRESENTATIVE = "legal_representative"  # of a minor (at most two)
    PROTECTED_ADULT_REPRESENTATIVE = "protected_adult_representative"
    APP = "app"  # a referenced app acting for one patient, within the paired purposes
    SUPPORT_AGENT = "support_agent"  # MES support desk / local health-insurance fund agent
    SYSTEM = "system"  # background jobs (purge, digest, prevention campaigns)


class AuthenticationMode(StrEnum):
    """VIHF ``Authentification_mode`` plus the CPE case of PDT-INF-526."""

    DIRECT = "DIRECTE"  # CPS/CPF card of the professional
    CPE = "CPE"  # establishment staff card (non-PS, e.g. medical secretary)
    INDIRECT = "INDIRECTE"  # structure (ES) certificate, professional identified by the structure
    INDIRECT_REINFORCED = "INDIRECTE_RENFORCEE"  # AIR mode
    PATIENT_LOGIN = "PATIENT"  # patient-side OAuth2 login (FranceConnect / MES account)
    APP_TOKEN = "APP"  # OAuth2 token issued to a referenced app
    SYSTEM = "SYSTEM"


class AccessMode(StrEnum):
    """TRE_R248 ModeAcces (OID 1.2.250.1.213.1.1.4.248), VIHF ``purposeofuse``."""

    NORMAL = "normal"
    BREAK_GLASS = "bris_de_glace"
    REGULATION = "centre_15"


class Effect(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class Action(StrEnum):
    """Operations the PDP knows. TD codes are those of PDT-INF-526 v1.8."""

    # DMP professional transactions (PDT-INF-526)
    TEST_EXISTENCE = "TD0.2"
    DECLARE_AUTHORIZATION = "TD0.3.declare"
    REMOVE_AUTHORIZATION = "TD0.3.remove"
    REMOVE_MEDECIN_TRAITANT = "TD0.3.remove_mt"
    LIST_AUTHORIZED_SPACES = "TD0.4"
    SEARCH_PATIENT_WITHOUT_INS = "TD0.5"
    READ_ADMINISTRATIVE_DATA = "TD1.3a"
    LIST_AUTHORIZED_PROFESSIONALS = "TD1.6"
    SUBMIT_DOCUMENT = "TD2.1"
    SEARCH_METADATA = "TD3.1.metadata"
    SEARCH_REFERENCE = "TD3.1.reference"
    READ_DOCUMENT = "TD3.2"
    MASK_DOCUMENT = "TD3.3a.mask"
    UNMASK_DOCUMENT = "TD3.3a.unmask"
    MAKE_VISIBLE_TO_PATIENT = "TD3.3b"
    DELETE_DOCUMENT = "TD3.3c"
    ARCHIVE_DOCUMENT = "TD3.3d.archive"
    UNARCHIVE_DOCUMENT = "TD3.3d.unarchive"
    # Patient-side bricks (MES): read/write per brick
    READ_PROFILE = "profile.read"
    WRITE_PROFILE = "profile.write"
    READ_MEASUREMENTS = "measurements.read"
    WRITE_MEASUREMENTS = "measurements.write"
    READ_AGENDA = "agenda.read"
    WRITE_AGENDA = "agenda.write"
    READ_MAILBOX = "mailbox.read"
    WRITE_MAILBOX = "mailbox.write"
    READ_TRACE = "trace.read"
    MANAGE_SETTINGS = "settings.manage"
    MANAGE_CONSENTS = "consents.manage"
    MANAGE_LIFECYCLE = "lifecycle.manage"  # oppose, activate, close, reopen, delete
    EXPORT_SPACE = "space.export"
    # Mail relay: a professional delivering a secure message to the patient's mailbox
    DELIVER_MESSAGE = "mailbox.deliver"
    # System jobs
    SYSTEM_JOB = "system.job"


class Purpose(StrEnum):
    """App pairing purposes: read and/or write on each brick; never the mailbox."""

    DOCUMENTS_READ = "documents.read"
    DOCUMENTS_WRITE = "documents.write"
    MEASUREMENTS_READ = "measurements.read"
    MEASUREMENTS_WRITE = "measurements.write"
    AGENDA_READ = "agenda.read"
    AGENDA_WRITE = "agenda.write"
    PROFILE_READ = "profile.read"
    PROFILE_WRITE = "profile.write"


class Obligation(StrEnum):
    """What the enforcement point must do when it acts on a PERMIT."""

    NOTIFY_PATIENT_NOW = "notify_patient_now"  # emergency access (bris de glace / centre 15)
    TRACE_SECURITY_ALERT = "trace_security_alert"


class SpaceStatus(StrEnum):
    PENDING = "pending"  # enrolment letter sent, six-week opposition window running
    OPPOSED = "opposed"
    ACTIVE = "active"  # created (automatically or voluntarily); activation is a separate flag
    CLOSED = "closed"
    DELETED = "deleted"


class DocumentStatus(StrEnum):
    """XDS availabilityStatus plus the DMP's ITI-57 statuses."""

    APPROVED = "Approved"
    DEPRECATED = "Deprecated"
    ARCHIVED = "Archived"  # urn:asip:ci-sis:2010:StatusType:Archived
    DELETED = "Deleted"  # urn:asip:ci-sis:2010:StatusType:Deleted


# TRE_A07 StatutVisibiliteDocument (OID 1.2.250.1.213.1.1.4.13)
MASKED_TO_PROFESSIONALS = "MASQUE_PS"
INVISIBLE_TO_PATIENT = "INVISIBLE_PATIENT"
INVISIBLE_TO_LEGAL_REPRESENTATIVES = "INVISIBLE_REPRESENTANTS_LEGAUX"

PROFESSION_MEDECIN = "10"
PROFESSION_PHARMACIEN = "21"
PROFESSION_DENTISTE = "40"
PROFESSION_SAGE_FEMME = "50"
PROFESSION_INFIRMIER = "60"
PROFESSION_KINE = "70"
# TRE_R01 "Médecine du travail"
SPECIALTY_MEDECINE_DU_TRAVAIL = frozenset({"SM25", "C41", "CAPA11"})


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller, as authenticated by a face. Identity only; no rights are stored here."""

    kind: ActorKind
    id: str  # PS_IdNat (8+RPPS), patient INS, app id, agent id, job name
    name: str = ""
    profession: str | None = None  # TRE_G15 code (role #1 of the VIHF)
    specialty: str | None = None  # TRE_R01 (médecins) / G05 (pharmaciens)
    structure_id: str | None = None  # Struct_IdNat (Identifiant_Structure)
    activity_sector: str | None = None  # Secteur_Activite, TRE_R02
    authentication_mode: AuthenticationMode | None = None
    access_mode: AccessMode = AccessMode.NORMAL
    # whose space this actor acts on: the represented person's INS for a representative,
    # the patient's INS for an app
    on_behalf_of: str | None = None
    app_id: str | None = None
    software: str | None = None  # "LPS_Nom LPS_Version"
    # VIHF confidentiality-code for a "secret connection" (minor consulting alone)
    secret_connection: bool = False
    declared_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SpaceFacts:
    """The consent state of one patient space, as the PDP needs it (a snapshot from the store)."""

    space_id: str
    ins: str
    status: SpaceStatus
    is_minor: bool = False
    blocked_professionals: frozenset[str] = frozenset()
    authorized_professionals: frozenset[str] = frozenset()  # declared (TD0.3), the care team
    authorized_structures: frozenset[str] = frozenset()  # indirect-mode authorizations
    feeding_opposed_professionals: frozenset[str] = frozenset()
    medecin_traitant: str | None = None
    break_glass_allowed: bool = True
    regulation_allowed: bool = True
    auto_unmask_in_emergency: bool = False
    legal_representatives: frozenset[str] = frozenset()  # INS or account ids, at most two
    protected_adult_representative: str | None = None
    # app id -> purposes the patient consented to (empty or absent: no pairing)
    app_consents: Mapping[str, frozenset[Purpose]] = field(default_factory=dict)
    prevention_opposed: bool = False


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    """What the PDP needs to know about one DMP document entry."""

    entry_id: str
    type_code: str  # JDV_J66 typeCode (LOINC or DMP code)
    confidentiality_codes: frozenset[str] = frozenset()
    author_ids: frozenset[str] = frozenset()  # PS_IdNat of the authors, or the patient's INS
    author_structure_ids: frozenset[str] = frozenset()
    status: DocumentStatus = DocumentStatus.APPROVED
    added_by_patient: bool = False


@dataclass(frozen=True, slots=True)
class AccessRequest:
    actor: Actor
    action: Action
    space: SpaceFacts | None  # None for space-less operations (TD0.4, system jobs)
    document: DocumentFacts | None = None
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """An access decision with the rule that decided it and why (HAPI ``Verdict``)."""

    effect: Effect
    rule_id: str
    reason: str
    obligations: tuple[Obligation, ...] = ()

    @property
    def permitted(self) -> bool:
        return self.effect is Effect.PERMIT

    @classmethod
    def permit(cls, rule_id: str, reason: str, *obligations: Obligation) -> Decision:
        return cls(Effect.PERMIT, rule_id, reason, tuple(obligations))

    @classmethod
    def deny(cls, rule_id: str, reason: str, *obligations: Obligation) -> Decision:
        return cls(Effect.DENY, rule_id, reason, tuple(obligations))


@dataclass(frozen=True, slots=True)
class DocumentVisibility:
    """Which entries of one space an actor may see: a predicate, not a list.

    The store translates it into SQL (``espace.store.visibility_clause``) *before* paging,
    so totals never count hidden entries; :meth:`matches` is the same predicate in Python,
    for single-document checks and for the property test that keeps the two equal.

    An entry is visible when ALL of these hold:
    - ``not nothing``;
    - its status is in ``statuses``;
    - ``allowed_type_codes`` is None or contains its typeCode, and ``denied_type_codes``
      does not contain it — unless one of its authors is in ``type_codes_exempt_authors`` (a
      professional always reads the documents they wrote, whatever the habilitation matrix);
    - it carries none of ``hidden_confidentiality_codes``, unless one of its authors is in
      ``hidden_codes_exempt_authors`` (e.g. the author of a masked document) or one of its
      author structures is in ``hidden_codes_exempt_structures``;
    - ``only_authors`` is None, or one of its authors is in it, or one of its author
      structures is in ``only_author_structures``.
    """

    nothing: bool = False
    statuses: frozenset[DocumentStatus] = frozenset({DocumentStatus.APPROVED})
    allowed_type_codes: frozenset[str] | None = None
    denied_type_codes: frozenset[str] = frozenset()
    type_codes_exempt_authors: frozenset[str] = frozenset()
    hidden_confidentiality_codes: frozenset[str] = frozenset()
    hidden_codes_exempt_authors: frozenset[str] = frozenset()
    hidden_codes_exempt_structures: frozenset[str] = frozenset()
    only_authors: frozenset[str] | None = None
    only_author_structures: frozenset[str] = frozenset()
    rule_id: str = ""
    reason: str = ""

    def matches(self, doc: DocumentFacts) -> bool:
        if self.nothing or doc.status not in self.statuses:
            return False
        if (
            (self.allowed_type_codes is not None and doc.type_code not in self.allowed_type_codes)
            or doc.type_code in self.denied_type_codes
        ) and not doc.author_ids & self.type_codes_exempt_authors:
            return False
        if doc.confidentiality_codes & self.hidden_confidentiality_codes and not (
            doc.author_ids & self.hidden_codes_exempt_authors
            or doc.author_structure_ids & self.hidden_codes_exempt_structures
        ):
            return False
        if self.only_authors is not None and not (
            doc.author_ids & self.only_authors
            or doc.author_structure_ids & self.only_author_structures
        ):
            return False
        return True


NOTHING_VISIBLE = DocumentVisibility(nothing=True, rule_id="default_deny", reason="no rule grants")
