"""lifecycle: throttling counters, the letters' print queue, exports built by a job

- ``attempt_counter``: soft lockouts of one-time code guesses and new-code requests
  (``espace.lifecycle.throttle``);
- ``code_letter``: a new code waiting for the print run (``espace.lifecycle.code_delivery``);
- ``export_archive``: the requester, the X25519 public key, the build's figures and its time
  (``espace.lifecycle.export_jobs``); existing rows are ready exports (legacy format).

Revision ID: 0003_lifecycle_jobs
Revises: 0002_document_entry_ebrim
Create Date: 2026-11-23 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_lifecycle_jobs"
down_revision = "0002_document_entry_ebrim"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempt_counter",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_attempt_counter")),
    )
    with op.batch_alter_table("attempt_counter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attempt_counter_last_at"), ["last_at"], unique=False)

    op.create_table(
        "code_letter",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("space_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("printed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["patient_space.id"],
            name=op.f("fk_code_letter_space_id_patient_space"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_letter")),
    )
    with op.batch_alter_table("code_letter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_code_letter_space_id"), ["space_id"], unique=False)

    with op.batch_alter_table("export_archive", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requester", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("public_key", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("documents", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("resources", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(batch_op.f("ix_export_archive_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("export_archive", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_archive_status"))
        for column in ("resources", "documents", "ready_at", "public_key", "requester"):
            batch_op.drop_column(column)
    with op.batch_alter_table("code_letter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_code_letter_space_id"))
    op.drop_table("code_letter")
    with op.batch_alter_table("attempt_counter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempt_counter_last_at"))
    op.drop_table("attempt_counter")
