"""Initial analysis schema: devices, responses, answers.

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
    # central/models.py never change what this revision creates.
    op.create_table(
        "devices",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("last_seen_at", sa.Float),
        sa.Column("app_version", sa.String(32)),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("backlog", sa.BigInteger),
        sa.Column("quarantined", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.Column("disk_free_bytes", sa.BigInteger),
        sa.Column("clock_wall", sa.Float),
        sa.Column("clock_boot", sa.String(64)),
        sa.Column("clock_mono", sa.Float),
        sa.Column("clock_synced", sa.Boolean),
        sa.Column("highest_seq", sa.BigInteger, nullable=False),
        sa.Column("seq_count", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_devices_token_hash"),
    )
    op.create_table(
        "responses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id", name="fk_responses_device"),
                  nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("questionnaire_id", sa.String(64), nullable=False),
        sa.Column("questionnaire_version", sa.BigInteger, nullable=False),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("started_wall", sa.Float, nullable=False),
        sa.Column("started_boot", sa.String(64), nullable=False),
        sa.Column("started_mono", sa.Float, nullable=False),
        sa.Column("closed_wall", sa.Float, nullable=False),
        sa.Column("end_reason", sa.String(16), nullable=False),
        sa.Column("suspect", sa.Boolean, nullable=False),
        sa.Column("suspect_reason", sa.Text),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("sent_wall", sa.Float, nullable=False),
        sa.Column("sent_boot", sa.String(64), nullable=False),
        sa.Column("sent_mono", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("time_verified", sa.Boolean, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("device_id", "seq", name="uq_responses_device_seq"),
    )
    op.create_table(
        "answers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("response_id", sa.String(36),
                  sa.ForeignKey("responses.id", name="fk_answers_response"), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("question_id", sa.String(64), nullable=False),
        sa.Column("aspect", sa.String(64)),
        sa.Column("value_num", sa.BigInteger),
        sa.Column("value_text", sa.Text),
        sa.Column("at_wall", sa.Float, nullable=False),
        sa.Column("at_boot", sa.String(64), nullable=False),
        sa.Column("at_mono", sa.Float, nullable=False),
        sa.Column("answered_at", sa.Float, nullable=False),
        sa.Column("time_verified", sa.Boolean, nullable=False),
    )
    op.create_index("ix_answers_response_id", "answers", ["response_id"])


def downgrade() -> None:
    op.drop_index("ix_answers_response_id", table_name="answers")
    op.drop_table("answers")
    op.drop_table("responses")
    op.drop_table("devices")
