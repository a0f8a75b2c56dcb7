"""Imported study results (other channels, earlier studies) for the report.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written out in full, like the others: later edits of central/models.py never change it.
    op.create_table(
        "study_results",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("study", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("aspect", sa.String(64), nullable=False),
        sa.Column("mean", sa.Float, nullable=False),
        sa.Column("sd", sa.Float, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("low_share", sa.Float),
        sa.Column("high_share", sa.Float),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("imported_at", sa.Float, nullable=False),
        sa.UniqueConstraint("study", "period", "channel", "aspect", name="uq_study_results_key"),
    )


def downgrade() -> None:
    op.drop_table("study_results")
