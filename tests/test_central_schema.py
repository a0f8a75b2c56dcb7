"""The Alembic migrations create exactly what central/models.py describes (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert

from central import migrations
from central.db import make_engine, upgrade
from central.devices import device_statuses
from central.models import Base, Device


def test_head_revision_constant_matches_the_scripts():
    assert migrations.HEAD_REVISION == migrations.script_head()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrated_schema_matches_the_models(tmp_path, request, backend):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    try:
        assert upgrade(engine) == (None, migrations.HEAD_REVISION)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_database_of_the_previous_release_is_upgraded_with_its_devices_kept(
        tmp_path, request, backend):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            migrations.upgrade(conn, "0001")
            # only the columns release 0001 has
            conn.execute(insert(Device.__table__).values(
                id="dev-00000001", name="Oud", location="stadhuis", token_hash="0" * 64,
                created_at=1.0, highest_seq=0, seq_count=0))
        assert upgrade(engine) == ("0001", migrations.HEAD_REVISION)
        [status] = device_statuses(engine, now=2.0)
        assert (status.id, status.questionnaire, status.quiet_open_s, status.status) == (
            "dev-00000001", None, None, "ok")
    finally:
        engine.dispose()
