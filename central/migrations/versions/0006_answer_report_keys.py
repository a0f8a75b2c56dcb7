"""Answers carry their response's questionnaire, start, suspect flag, service and overall grade.

The report counts answers by these (central.report_query); with them on the
answer it reads one table instead of joining millions of answers to their
responses. Existing answers are filled in from their responses here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (name, type, filled for every answer): written out in full, like the earlier revisions.
_COLUMNS = [
    ("questionnaire_id", sa.String(64), True),
    ("questionnaire_version", sa.BigInteger, True),
    ("started_at", sa.Float, True),
    ("suspect", sa.Boolean, True),
    ("service", sa.Text, False),
    ("overall", sa.BigInteger, False),
]

# Correlated subqueries: the same statement on SQLite and PostgreSQL. "First" is by ordinal,
# as central.ingest takes it from a new response.
_FILL = """
UPDATE answers SET
    questionnaire_id = (SELECT r.questionnaire_id FROM responses r WHERE r.id = answers.response_id),
    questionnaire_version = (SELECT r.questionnaire_version FROM responses r
                             WHERE r.id = answers.response_id),
    started_at = (SELECT r.started_at FROM responses r WHERE r.id = answers.response_id),
    suspect = (SELECT r.suspect FROM responses r WHERE r.id = answers.response_id),
    service = (SELECT s.value_text FROM answers s
               WHERE s.response_id = answers.response_id AND s.aspect = 'dienst'
                     AND s.value_text IS NOT NULL
               ORDER BY s.ordinal LIMIT 1),
    overall = (SELECT o.value_num FROM answers o
               WHERE o.response_id = answers.response_id AND o.aspect = 'totaal'
                     AND o.value_num BETWEEN 1 AND 10
               ORDER BY o.ordinal LIMIT 1)
"""


def upgrade() -> None:
    for name, type_, _ in _COLUMNS:
        op.add_column("answers", sa.Column(name, type_))
    op.execute(_FILL)
    # SQLite cannot add NOT NULL to a column in place: batch mode copies the table there.
    with op.batch_alter_table("answers") as batch:
        for name, type_, filled in _COLUMNS:
            if filled:
                batch.alter_column(name, existing_type=type_, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        for name, _, _ in reversed(_COLUMNS):
            batch.drop_column(name)
