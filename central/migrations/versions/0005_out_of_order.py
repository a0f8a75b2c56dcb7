"""The heartbeat's "out of order" (why a terminal cannot take answers) and when central noticed it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_DEVICE_COLUMNS = [
    ("out_of_order", sa.Text),
    ("out_of_order_since", sa.Float),
]


def upgrade() -> None:
    # Nullable columns: ADD COLUMN works on SQLite and PostgreSQL without copying the table.
    for name, type_ in _DEVICE_COLUMNS:
        op.add_column("devices", sa.Column(name, type_))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for name, _ in reversed(_DEVICE_COLUMNS):
            batch.drop_column(name)
