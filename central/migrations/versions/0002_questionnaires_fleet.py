"""Published questionnaires; the heartbeat's questionnaire and opening-time fields; fleet health.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_DEVICE_COLUMNS = [
    ("questionnaire_id", sa.String(64)),
    ("questionnaire_version", sa.BigInteger),
    ("questionnaire_error", sa.Text),
    ("open_now", sa.Boolean),
    ("quiet_open_s", sa.Float),
    ("silent_since", sa.Float),
    ("no_ratings_since", sa.Float),
]


def upgrade() -> None:
    # Written out in full, like 0001: later edits of central/models.py never change it.
    # Nullable columns: ADD COLUMN works on SQLite and PostgreSQL without copying the table.
    for name, type_ in _DEVICE_COLUMNS:
        op.add_column("devices", sa.Column(name, type_))
    op.create_table(
        "questionnaires",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("questionnaire_id", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("location", sa.String(64)),
        sa.Column("toml", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("published_at", sa.Float, nullable=False),
        sa.Column("retired_at", sa.Float),
        sa.UniqueConstraint("questionnaire_id", "version", "location",
                            name="uq_questionnaires_id_version_location"),
    )
    # NULLs are distinct in a unique constraint: one all-locations row per id and version.
    op.create_index("uq_questionnaires_id_version_all", "questionnaires",
                    ["questionnaire_id", "version"], unique=True,
                    sqlite_where=sa.text("location IS NULL"),
                    postgresql_where=sa.text("location IS NULL"))


def downgrade() -> None:
    op.drop_index("uq_questionnaires_id_version_all", table_name="questionnaires")
    op.drop_table("questionnaires")
    with op.batch_alter_table("devices") as batch:
        for name, _ in reversed(_DEVICE_COLUMNS):
            batch.drop_column(name)
