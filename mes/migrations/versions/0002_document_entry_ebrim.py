"""document_entry.ebrim: the pre-rendered ebRIM ExtrinsicObject of each entry

Filled by the registry on every insert and ORM update (``espace.registry.prerender``); rows
without one (this migration leaves existing rows NULL) are rendered at their first query and
written back, so the upgrade does not rewrite the table.

Revision ID: 0002_document_entry_ebrim
Revises: 0001
Create Date: 2026-11-23 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_document_entry_ebrim"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("document_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ebrim", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("document_entry", schema=None) as batch_op:
        batch_op.drop_column("ebrim")
