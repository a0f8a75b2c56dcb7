"""The Alembic migrations create exactly what central/models.py describes (SQLite and PostgreSQL)."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from central import migrations
from central.db import make_engine, upgrade
from central.devices import device_statuses
from central.ingest import ANSWER_COLUMNS
from central.models import Answer, Base, Device
from tests.central_fixtures import fresh_database

# The messages the triggers of migration 0007 raise (its module name starts with a digit).
_0007 = importlib.import_module("central.migrations.versions.0007_answer_reference_triggers")
NO_RESPONSE, HAS_ANSWERS = _0007.NO_RESPONSE, _0007.HAS_ANSWERS


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


def _response(conn, rid: str, seq: int, *, suspect: bool = False, started_at: float = 1.0) -> None:
    """One response of the old device (:func:`add_old_device`); its columns are those of 0001."""
    clocks = "1.0, 'boot', 1.0"
    conn.execute(text(
        "INSERT INTO responses (id, device_id, seq, questionnaire_id, questionnaire_version, "
        "location_id, language, started_wall, started_boot, started_mono, closed_wall, end_reason, "
        "suspect, suspect_reason, received_at, sent_wall, sent_boot, sent_mono, started_at, "
        f"time_verified, content_hash) VALUES (:id, 'dev-00000001', :seq, 'standaard', 2, "
        f"'stadhuis', 'nl', {clocks}, 2.0, 'completed', :suspect, NULL, 3.0, {clocks}, :start, "
        "TRUE, 'h')"), {"id": rid, "seq": seq, "suspect": suspect, "start": started_at})


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
                _response(conn, rid, seq, suspect=suspect, started_at=100.0 * seq)
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


def _answers(conn, *pairs: tuple[str, str]) -> None:
    """One INSERT statement of answers (id, response id)."""
    values = ", ".join(
        f"(:id{n}, :rid{n}, {n + 1}, 'q', 'totaal', 8, NULL, 1.0, 'boot', 1.0, 1.0, TRUE, "
        "'standaard', 2, 1.0, FALSE, NULL, 8)" for n in range(len(pairs)))
    params = {}
    for n, (aid, rid) in enumerate(pairs):
        params.update({f"id{n}": aid, f"rid{n}": rid})
    conn.execute(text(
        "INSERT INTO answers (id, response_id, ordinal, question_id, aspect, value_num, value_text, "
        "at_wall, at_boot, at_mono, answered_at, time_verified, questionnaire_id, "
        f"questionnaire_version, started_at, suspect, service, overall) VALUES {values}"), params)


def _refused(engine, statement, message: str) -> None:
    with pytest.raises(IntegrityError) as refused:
        with engine.begin() as conn:
            statement(conn)
    assert message in str(refused.value)


def test_answers_need_their_response_and_a_response_with_answers_stays(empty_database):
    # Migration 0007: triggers instead of the foreign key, with the same guarantees.
    engine = make_engine(empty_database)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            add_old_device(conn)
            _response(conn, "r1", 1)
            _response(conn, "r2", 2)
            _answers(conn, ("a1", "r1"), ("a2", "r1"))
        _refused(engine, lambda c: _answers(c, ("a3", "nope")), NO_RESPONSE)
        # one bad row refuses the whole statement
        _refused(engine, lambda c: _answers(c, ("a4", "r2"), ("a5", "nope")), NO_RESPONSE)
        _refused(engine, lambda c: c.execute(text("UPDATE answers SET response_id = 'nope' "
                                                  "WHERE id = 'a1'")), NO_RESPONSE)
        _refused(engine, lambda c: c.execute(text("DELETE FROM responses WHERE id = 'r1'")),
                 HAS_ANSWERS)
        _refused(engine, lambda c: c.execute(text("UPDATE responses SET id = 'r9' WHERE id = 'r1'")),
                 HAS_ANSWERS)
        with engine.begin() as conn:     # what stays allowed
            conn.execute(text("UPDATE answers SET response_id = 'r2' WHERE id = 'a2'"))
            conn.execute(text("UPDATE responses SET suspect = TRUE"))
            _response(conn, "r3", 3)
            conn.execute(text("DELETE FROM responses WHERE id = 'r3'"))
        with engine.connect() as conn:
            assert dict(conn.execute(text("SELECT id, response_id FROM answers")).all()) == {
                "a1": "r1", "a2": "r2"}
            assert conn.execute(text("SELECT count(*) FROM responses")).scalar() == 2
    finally:
        engine.dispose()


def test_a_copy_of_answers_without_their_response_is_refused(pg_url):
    # Ingest's path on PostgreSQL: COPY fires the statement trigger too.
    engine = make_engine(pg_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            add_old_device(conn)
            _response(conn, "r1", 1)
        row = ("a9", "nope", 1, "q", "totaal", 8, None, 1.0, "boot", 1.0, 1.0, True,
               "standaard", 2, 1.0, False, None, 8)
        with pytest.raises(Exception) as refused:
            with engine.begin() as conn:
                raw = conn.connection.driver_connection
                with raw.cursor() as cur, cur.copy(f"COPY answers ({', '.join(ANSWER_COLUMNS)}) "
                                                   "FROM STDIN") as copy:
                    copy.write_row(row)
        assert NO_RESPONSE in str(refused.value)
        assert type(refused.value).__name__ == "ForeignKeyViolation"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM answers")).scalar() == 0
    finally:
        engine.dispose()


def test_0007_downgrades_to_the_foreign_key(empty_database):
    from alembic import command

    engine = make_engine(empty_database)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            command.downgrade(migrations.alembic_config(conn), "0006")
        with engine.connect() as conn:
            [fk] = inspect(conn).get_foreign_keys("answers")
            assert (fk["referred_table"], fk["constrained_columns"]) == ("responses", ["response_id"])
        with engine.begin() as conn:
            migrations.upgrade(conn)
        with engine.connect() as conn:
            assert inspect(conn).get_foreign_keys("answers") == []
    finally:
        engine.dispose()
