"""Initial buffer schema: meta, responses, answers, events.

Revision ID: 0001
Revises:
Create Date: 2024-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written out in full (not metadata.create_all) so later edits of
    # kiosk/buffer_schema.py never change what this revision creates.
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "responses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("questionnaire_id", sa.Text, nullable=False),
        sa.Column("questionnaire_version", sa.Integer, nullable=False),
        sa.Column("location_id", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("started_wall", sa.Float, nullable=False),
        sa.Column("started_boot_id", sa.Text, nullable=False),
        sa.Column("started_mono", sa.Float, nullable=False),
        sa.Column("closed_at", sa.Float, nullable=True),
        sa.Column("end_reason", sa.Text, nullable=True),
        sa.Column("suspect", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("suspect_reason", sa.Text, nullable=True),
        sa.Column("state", sa.Text, nullable=False, server_default="unsent"),
        sa.Column("state_reason", sa.Text, nullable=True),
        sa.Column("state_changed_at", sa.Float, nullable=True),
        sa.UniqueConstraint("seq", name="uq_responses_seq"),
        sa.CheckConstraint(
            "state IN ('unsent', 'sent', 'quarantined')", name="ck_responses_state"
        ),
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN "
            "('completed', 'idle', 'abandoned', 'interrupted')",
            name="ck_responses_end_reason",
        ),
        sa.CheckConstraint(
            "(closed_at IS NULL) = (end_reason IS NULL)", name="ck_responses_closed"
        ),
    )
    op.create_index("ix_responses_state_seq", "responses", ["state", "seq"])
    op.create_index(
        "ix_responses_open",
        "responses",
        ["seq"],
        sqlite_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "answers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "response_id",
            sa.String(36),
            sa.ForeignKey("responses.id", ondelete="CASCADE", name="fk_answers_response"),
            nullable=False,
        ),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("question_id", sa.Text, nullable=False),
        sa.Column("aspect", sa.Text, nullable=True),
        sa.Column("value_num", sa.Integer, nullable=True),
        sa.Column("value_text", sa.Text, nullable=True),
        sa.Column("wall", sa.Float, nullable=False),
        sa.Column("boot_id", sa.Text, nullable=False),
        sa.Column("mono", sa.Float, nullable=False),
        sa.UniqueConstraint("response_id", "ordinal", name="uq_answers_response_ordinal"),
        sa.CheckConstraint(
            "(value_num IS NULL) <> (value_text IS NULL)", name="ck_answers_one_value"
        ),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("wall", sa.Float, nullable=False),
        sa.Column("boot_id", sa.Text, nullable=False),
        sa.Column("mono", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("answers")
    op.drop_index("ix_responses_open", table_name="responses")
    op.drop_index("ix_responses_state_seq", table_name="responses")
    op.drop_table("responses")
    op.drop_table("meta")
