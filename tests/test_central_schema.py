"""The Alembic migrations create exactly what central/models.py describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from central import migrations
from central.db import make_engine, upgrade
from central.models import Base


def test_head_revision_constant_matches_the_scripts():
    assert migrations.HEAD_REVISION == migrations.script_head()


def test_migrated_schema_matches_the_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        assert upgrade(engine) == (None, migrations.HEAD_REVISION)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
