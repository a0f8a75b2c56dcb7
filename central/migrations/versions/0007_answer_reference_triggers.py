"""answers.response_id is checked once per statement by triggers, not per row by a foreign key.

On PostgreSQL a foreign key checks every inserted row through its own query and
locks the referenced row: 3.8 µs of the server's CPU per answer in
``bench/ingest.py``, about a third of the cost of storing an answer. Checking once
per statement over the statement's new rows (a transition table) costs 1.0 µs
(docs/benchmarks.md). The guarantee is the same for every statement:

* an answer cannot be inserted, or moved, to a response id that does not exist;
* a response cannot be deleted, or its id changed, while answers point to it.

Two things a foreign key does that these triggers do not: it locks the response
row against a concurrent delete, and it blocks ``TRUNCATE responses`` alone. Central
never deletes, truncates or re-keys responses, and stores each response with its
answers in one transaction.

SQLite has no statement-level triggers: there the same rules are row triggers,
which cost what its foreign key did. The foreign key is dropped on both, so that
both databases hold the schema central/models.py describes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NO_RESPONSE = "answers.response_id: no response with that id"
HAS_ANSWERS = "responses: answers still point to this response"

# PostgreSQL: one check per statement, over its transition tables. A trigger with
# transition tables fires for one event only, hence a trigger per event.
_POSTGRES = [
    f"""CREATE FUNCTION balie_answers_have_responses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_answers n
               WHERE NOT EXISTS (SELECT 1 FROM responses r WHERE r.id = n.response_id)) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', MESSAGE = '{NO_RESPONSE}';
    END IF;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER answers_have_responses_insert AFTER INSERT ON answers
    REFERENCING NEW TABLE AS new_answers FOR EACH STATEMENT
    EXECUTE FUNCTION balie_answers_have_responses()""",
    """CREATE TRIGGER answers_have_responses_update AFTER UPDATE ON answers
    REFERENCING NEW TABLE AS new_answers FOR EACH STATEMENT
    EXECUTE FUNCTION balie_answers_have_responses()""",
    f"""CREATE FUNCTION balie_responses_keep_answers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM old_responses o JOIN answers a ON a.response_id = o.id) THEN
            RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', MESSAGE = '{HAS_ANSWERS}';
        END IF;
    ELSIF EXISTS (SELECT 1 FROM old_responses o
                  WHERE NOT EXISTS (SELECT 1 FROM new_responses n WHERE n.id = o.id)
                    AND EXISTS (SELECT 1 FROM answers a WHERE a.response_id = o.id)) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', MESSAGE = '{HAS_ANSWERS}';
    END IF;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER responses_keep_answers_delete AFTER DELETE ON responses
    REFERENCING OLD TABLE AS old_responses FOR EACH STATEMENT
    EXECUTE FUNCTION balie_responses_keep_answers()""",
    """CREATE TRIGGER responses_keep_answers_update AFTER UPDATE ON responses
    REFERENCING OLD TABLE AS old_responses NEW TABLE AS new_responses FOR EACH STATEMENT
    EXECUTE FUNCTION balie_responses_keep_answers()""",
]

_POSTGRES_DOWN = [
    "DROP TRIGGER responses_keep_answers_update ON responses",
    "DROP TRIGGER responses_keep_answers_delete ON responses",
    "DROP FUNCTION balie_responses_keep_answers()",
    "DROP TRIGGER answers_have_responses_update ON answers",
    "DROP TRIGGER answers_have_responses_insert ON answers",
    "DROP FUNCTION balie_answers_have_responses()",
]

_SQLITE = [
    f"""CREATE TRIGGER answers_have_responses_insert BEFORE INSERT ON answers
    WHEN NOT EXISTS (SELECT 1 FROM responses WHERE id = NEW.response_id)
    BEGIN SELECT RAISE(ABORT, '{NO_RESPONSE}'); END""",
    f"""CREATE TRIGGER answers_have_responses_update BEFORE UPDATE OF response_id ON answers
    WHEN NOT EXISTS (SELECT 1 FROM responses WHERE id = NEW.response_id)
    BEGIN SELECT RAISE(ABORT, '{NO_RESPONSE}'); END""",
    f"""CREATE TRIGGER responses_keep_answers_delete BEFORE DELETE ON responses
    WHEN EXISTS (SELECT 1 FROM answers WHERE response_id = OLD.id)
    BEGIN SELECT RAISE(ABORT, '{HAS_ANSWERS}'); END""",
    f"""CREATE TRIGGER responses_keep_answers_update BEFORE UPDATE OF id ON responses
    WHEN NEW.id IS NOT OLD.id AND EXISTS (SELECT 1 FROM answers WHERE response_id = OLD.id)
    BEGIN SELECT RAISE(ABORT, '{HAS_ANSWERS}'); END""",
]

_SQLITE_DOWN = [
    "DROP TRIGGER responses_keep_answers_update",
    "DROP TRIGGER responses_keep_answers_delete",
    "DROP TRIGGER answers_have_responses_update",
    "DROP TRIGGER answers_have_responses_insert",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # SQLite cannot drop a constraint in place: batch mode copies the table there.
    with op.batch_alter_table("answers") as batch:
        batch.drop_constraint("fk_answers_response", type_="foreignkey")
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_DOWN if postgres else _SQLITE_DOWN:
        op.execute(statement)
    with op.batch_alter_table("answers") as batch:
        batch.create_foreign_key("fk_answers_response", "responses", ["response_id"], ["id"])
