"""The Alembic migrations create exactly what central/models.py describes (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, text

from central import migrations
from central.db import make_engine, upgrade
from central.devices import device_statuses
from central.models import Answer, Base, Device
from tests.central_fixtures import fresh_database


def test_head_revision_constant_matches_the_scripts():
    assert migrations.HEAD_REVISION == migrations.script_head()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path) -> str:
    """The URL of a new database without any schema (SQLite, then PostgreSQL)."""
    return fresh_database(request, tmp_path)


def test_migrated_schema_matches_the_models(empty_database):
    engine = make_engine(empty_database)
    try:
        assert upgrade(engine) == (None, migrations.HEAD_REVISION)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def add_old_device(conn) -> None:
    """A device row with only the columns release 0001 has."""
    conn.execute(insert(Device.__table__).values(
        id="dev-00000001", name="Oud", location="stadhuis", token_hash="0" * 64,
        created_at=1.0, highest_seq=0, seq_count=0))


def test_a_database_of_the_previous_release_is_upgraded_with_its_devices_kept(empty_database):
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            migrations.upgrade(conn, "0001")
            add_old_device(conn)
        assert upgrade(engine) == ("0001", migrations.HEAD_REVISION)
        [status] = device_statuses(engine, now=2.0)
        assert (status.id, status.questionnaire, status.quiet_open_s, status.status) == (
            "dev-00000001", None, None, "ok")
    finally:
        engine.dispose()


def test_answers_stored_before_0006_get_their_responses_report_keys(empty_database):
    engine = make_engine(empty_database)
    clocks = "1.0, 'boot', 1.0"
    try:
        with engine.begin() as conn:
            migrations.upgrade(conn, "0005")
            add_old_device(conn)
            for rid, seq, suspect in (("r1", 1, False), ("r2", 2, True)):
                conn.execute(text(
                    "INSERT INTO responses (id, device_id, seq, questionnaire_id, "
                    "questionnaire_version, location_id, language, started_wall, started_boot, "
                    "started_mono, closed_wall, end_reason, suspect, suspect_reason, received_at, "
                    "sent_wall, sent_boot, sent_mono, started_at, time_verified, content_hash) "
                    f"VALUES (:id, 'dev-00000001', :seq, 'standaard', 2, 'stadhuis', 'nl', "
                    f"{clocks}, 2.0, 'completed', :suspect, NULL, 3.0, {clocks}, :start, "
                    "TRUE, 'h')"), {"id": rid, "seq": seq, "suspect": suspect, "start": 100.0 * seq})
            answers = [("a1", "r1", 1, "totaal", 12, None), ("a2", "r1", 2, "totaal", 8, None),
                       ("a3", "r1", 3, "dienst", None, "paspoort"), ("a4", "r1", 4, "totaal", 3, None),
                       ("a5", "r2", 1, "wachttijd", 5, None)]
            for aid, rid, ordinal, aspect, num, txt in answers:
                conn.execute(text(
                    "INSERT INTO answers (id, response_id, ordinal, question_id, aspect, value_num, "
                    f"value_text, at_wall, at_boot, at_mono, answered_at, time_verified) VALUES "
                    f"(:id, :rid, :ordinal, :aspect, :aspect, :num, :txt, {clocks}, 1.0, TRUE)"),
                    {"id": aid, "rid": rid, "ordinal": ordinal, "aspect": aspect, "num": num,
                     "txt": txt})
        assert upgrade(engine) == ("0005", migrations.HEAD_REVISION)
        a = Answer.__table__
        with engine.connect() as conn:
            rows = {row.id: tuple(row)[1:] for row in conn.execute(
                select(a.c.id, a.c.value_num, a.c.questionnaire_id, a.c.questionnaire_version,
                       a.c.started_at, a.c.suspect, a.c.service, a.c.overall))}
    finally:
        engine.dispose()
    keys_1 = ("standaard", 2, 100.0, False, "paspoort", 8)     # 12 is no grade: 8 is the first
    assert rows == {"a1": (12, *keys_1), "a2": (8, *keys_1), "a3": (None, *keys_1),
                    "a4": (3, *keys_1), "a5": (5, "standaard", 2, 200.0, True, None, None)}
