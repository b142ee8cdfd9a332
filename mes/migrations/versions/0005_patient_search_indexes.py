"""lookup indexes: patient search (TD0.5) and MSSanté sender

- ``patient_space``: ``upper(family_name)`` and ``birth_date``;
- ``professional``: ``lower(mssante_address)`` (``mssante.smtp_server.MailIntake.actor_for``
  looks every message's sender up by it: a full scan of the directory otherwise).

``espace.registry.authorizations.search_patients`` compares ``upper(family_name)`` with the
INS form of the name and filters by birth date; without these indexes every search read the
whole ``patient_space`` table (median 500 ms at 100,000 spaces, session 2 note).

Revision ID: 0005_patient_search_indexes
Revises: 0004_document_content_blob_last
Create Date: 2026-11-23 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_patient_search_indexes"
down_revision = "0004_document_content_blob_last"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_patient_space_family_name_upper",
        "patient_space",
        [sa.text("upper(family_name)")],
        unique=False,
    )
    op.create_index("ix_patient_space_birth_date", "patient_space", ["birth_date"], unique=False)
    op.create_index(
        "ix_professional_mssante_address_lower",
        "professional",
        [sa.text("lower(mssante_address)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_professional_mssante_address_lower", table_name="professional")
    op.drop_index("ix_patient_space_birth_date", table_name="patient_space")
    op.drop_index("ix_patient_space_family_name_upper", table_name="patient_space")
