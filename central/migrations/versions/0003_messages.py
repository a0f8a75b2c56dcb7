"""The message to visitors per location (the thermometer issue).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written out in full, like 0001 and 0002: later edits of central/models.py never change it.
    op.create_table(
        "messages",
        sa.Column("location", sa.String(64), primary_key=True),  # '': every location
        sa.Column("text_nl", sa.Text, nullable=False),
        sa.Column("text_en", sa.Text),
        sa.Column("placement", sa.String(16), nullable=False),
        sa.Column("show_grade", sa.Boolean, nullable=False),
        sa.Column("set_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("messages")
