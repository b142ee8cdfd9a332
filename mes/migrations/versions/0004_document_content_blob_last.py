"""document_content: on SQLite, ``encrypted`` becomes the last column (issue #8)

The repository writes a document's ciphertext in place, piece by piece: an ``INSERT`` of
``zeroblob(n)`` then incremental blob I/O (``espace.registry.content_store``). SQLite keeps a
zeroblob unexpanded only when it is the last column of the record (``OP_MakeRecord``); before
this change ``stored_at`` followed ``encrypted``, so a 50 MB insert expanded 50 MB of zeros and
built a second 50 MB record in memory. On SQLite the table is rebuilt with the same columns,
constraints and index, ``encrypted`` last (the rows are copied one by one). PostgreSQL is left
as it is: its rows are written with ``COPY ... (FORMAT BINARY)``, whatever the column order.

Revision ID: 0004_document_content_blob_last
Revises: 0003_lifecycle_jobs
Create Date: 2026-11-24 05:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0004_document_content_blob_last"
down_revision = "0003_lifecycle_jobs"
branch_labels = None
depends_on = None

_ORDER = (
    "id",
    "space_id",
    "repository_unique_id",
    "unique_id",
    "mime_type",
    "hash",
    "size",
    "stored_at",
    "encrypted",
)


def _reorder(order: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "document_content", schema=None, recreate="always", partial_reordering=[order]
    ):
        pass


def upgrade() -> None:
    _reorder(_ORDER)


def downgrade() -> None:
    _reorder((*_ORDER[:-2], "encrypted", "stored_at"))
