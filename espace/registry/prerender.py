"""Pre-rendered wire form of each DocumentEntry, kept with its row, refreshed when it changes.

ITI-18 (IHE ITI TF-2a 3.18) answers with the full metadata of up to hundreds of entries; building
that XML at every query was most of the request. The registry therefore keeps, in
``document_entry.ebrim``, the entry's ebRIM ExtrinsicObject as the XDS face renders it, and a
query becomes SQL plus concatenation. The domain treats the fragment as opaque text: the face
installs the renderer (:func:`install_entry_renderer`, a port, as ``DocumentStore``), so no
wire format is known here.

Freshness, three guards:

1. SQLAlchemy mapper events render the fragment on insert and again on every ORM update of the
   row (status change by ITI-57/RPLC deprecation, masking, new codes), in the same flush;
2. each stored value starts with a *key* made of the renderer's tag and every row column the
   rendering reads besides the submitted metadata (status, version, ids, hash, size,
   confidentiality codes): a row changed behind the ORM's back (raw SQL) no longer matches and
   is rendered again at query time;
3. rows without a fragment (bulk loads, rows written before this column, a renderer change)
   are rendered at query time and written back (:func:`fill_missing`), never waiting on a row
   another transaction holds (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).

``metadata_json`` itself is never rewritten in place by the registry (new versions are new
rows); an ORM assignment to it re-renders through guard 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, event, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from espace.models import DocumentEntryRow, unflat
from espace.registry.model import DocumentEntry, current_confidentiality, document_from_json

EntryRenderer = Callable[[DocumentEntry], str]


@dataclass(frozen=True)
class _Renderer:
    render: EntryRenderer
    tag: str


_installed: list[_Renderer] = []


def install_entry_renderer(render: EntryRenderer, tag: str) -> None:
    """Use ``render`` for the stored fragments; ``tag`` names its output format (bump it when
    the output changes: every stored fragment then reads as stale and is rendered again)."""
    _installed[:] = [_Renderer(render, tag)]


def installed_tag() -> str | None:
    return _installed[0].tag if _installed else None


class RowColumns(Protocol):
    """The row columns a rendering depends on besides ``metadata_json`` (ORM row or Row)."""

    @property
    def entry_uuid(self) -> str: ...
    @property
    def logical_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def hash(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def repository_unique_id(self) -> str: ...
    @property
    def unique_id(self) -> str: ...
    @property
    def confidentiality_codes(self) -> str: ...


KEY_COLUMNS = (
    DocumentEntryRow.entry_uuid,
    DocumentEntryRow.logical_id,
    DocumentEntryRow.version,
    DocumentEntryRow.status,
    DocumentEntryRow.hash,
    DocumentEntryRow.size,
    DocumentEntryRow.repository_unique_id,
    DocumentEntryRow.unique_id,
    DocumentEntryRow.confidentiality_codes,
)


KeyValues = Sequence[object]  # the values of KEY_COLUMNS, in that order


def key_values(row: RowColumns) -> tuple[object, ...]:
    """The values of ``KEY_COLUMNS`` of ``row`` (an ORM row; query rows are sliced instead:
    positional access costs a fraction of attribute access on a result ``Row``)."""
    return (
        row.entry_uuid,
        row.logical_id,
        row.version,
        row.status,
        row.hash,
        row.size,
        row.repository_unique_id,
        row.unique_id,
        row.confidentiality_codes,
    )


def row_key(tag: str, values: KeyValues) -> str:
    """The key a fragment is stored under (guard 2): one line, ended by a newline."""
    return "\x1f".join([tag, *map(str, values)]).replace("\n", " ") + "\n"


def fresh_fragment(values: KeyValues, stored: str | None) -> str | None:
    """The fragment in ``stored`` if it was rendered from a row with these key ``values``."""
    if not stored or not _installed:
        return None
    key = row_key(_installed[0].tag, values)
    if not stored.startswith(key):
        return None
    return stored[len(key) :]


def entry_for(row: RowColumns, metadata: dict[str, Any] | None) -> DocumentEntry:
    """The entry as the registry holds it: submitted metadata, registry-owned columns.

    Same as ``espace.registry.store.entry_from_row``, plus the confidentialityCodes of the
    row's column (:func:`espace.registry.model.current_confidentiality`).
    """
    entry = document_from_json(dict(metadata or {}))
    entry.id = row.entry_uuid
    entry.logical_id = row.logical_id
    entry.version = str(row.version)
    entry.status = row.status
    entry.hash = row.hash
    entry.size = row.size
    entry.repository_unique_id = row.repository_unique_id
    entry.unique_id = row.unique_id
    entry.confidentiality_codes = current_confidentiality(
        entry.confidentiality_codes, unflat(row.confidentiality_codes)
    )
    return entry


def render_entry(values: KeyValues, entry: DocumentEntry) -> tuple[str, str] | None:
    """(value to store, fragment) for ``entry`` of a row with key ``values``; None when no
    renderer is installed."""
    if not _installed:
        return None
    renderer = _installed[0]
    fragment = renderer.render(entry)
    return row_key(renderer.tag, values) + fragment, fragment


# ----------------------------------------------------------------------------- guard 1
def _refresh(target: DocumentEntryRow) -> None:
    # the column defaults the INSERT would apply, applied now: the key must be the row's
    for column in KEY_COLUMNS:
        default = column.property.columns[0].default
        if getattr(target, column.key) is None and isinstance(default, ScalarElementColumnDefault):
            setattr(target, column.key, default.arg)
    rendered = render_entry(key_values(target), entry_for(target, target.metadata_json))
    target.ebrim = rendered[0] if rendered is not None else None


@event.listens_for(DocumentEntryRow, "before_insert")
def _before_insert(_mapper: Any, _connection: Any, target: DocumentEntryRow) -> None:
    _refresh(target)


@event.listens_for(DocumentEntryRow, "before_update")
def _before_update(_mapper: Any, _connection: Any, target: DocumentEntryRow) -> None:
    # any change, an assignment to ``ebrim`` itself included: the fragment is derived data
    if any(attr.history.has_changes() for attr in inspect(target).attrs):
        _refresh(target)


# ----------------------------------------------------------------------------- guard 3
def fill_missing(session: Session, rendered: Sequence[tuple[KeyValues, str]]) -> int:
    """Store fragments rendered at query time (``(key values, value to store)``) on the rows
    still as they were rendered from, skipping rows another transaction holds (no wait, so
    no deadlock with a concurrent update). Returns the rows written."""
    if not rendered or not _installed:
        return 0
    tag = _installed[0].tag
    wanted = {str(values[0]): (row_key(tag, values), stored) for values, stored in rendered}
    locked = session.execute(
        select(*KEY_COLUMNS)
        .where(DocumentEntryRow.entry_uuid.in_(sorted(wanted)))
        .order_by(DocumentEntryRow.entry_uuid)
        .with_for_update(skip_locked=True)
    ).all()
    params = [
        {"u": current[0], "v": wanted[current[0]][1]}
        for current in locked
        if row_key(tag, tuple(current)) == wanted[current[0]][0]
    ]
    if not params:
        return 0
    table = DocumentEntryRow.__table__
    assert isinstance(table, Table)
    session.execute(
        update(table).where(table.c.entry_uuid == bindparam("u")).values(ebrim=bindparam("v")),
        params,
    )
    return len(params)
