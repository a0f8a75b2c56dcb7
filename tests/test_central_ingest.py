"""Central stores batches idempotently and answers per record (SQLite and PostgreSQL, real HTTP)."""

from __future__ import annotations

import threading
import uuid
import time

import pytest
import requests
from sqlalchemy import select

from central.models import Answer, Device, Response
from sync.protocol import BATCHES_PATH, HEARTBEAT_PATH
from tests.central_fixtures import (
    central_on_backend,
    clock,
    enrol_device,
    make_batch,
    make_record,
    run_central,
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def central(request, tmp_path_factory):
    """(settings, base_url, engine) of one real central per backend for this module."""
    with central_on_backend(request, tmp_path_factory) as central:
        yield central


@pytest.fixture
def device(central):
    """A freshly enrolled device: (device_id, session with its token)."""
    settings, base_url, _ = central
    device_id, token = enrol_device(settings)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    yield device_id, session
    session.close()


def post(central, device, records, **batch_options):
    _, base_url, _ = central
    device_id, session = device
    reply = session.post(base_url + BATCHES_PATH, json=make_batch(device_id, records, **batch_options),
                         timeout=(5, 30))
    assert reply.status_code == 200, reply.text
    return reply.json()


def statuses(result):
    return [(r["id"], r["status"]) for r in result["results"]]


def stored_response(engine, rid):
    with engine.connect() as conn:
        return conn.execute(select(Response.__table__).where(Response.id == rid)).first()


def stored_answers(engine, rid):
    with engine.connect() as conn:
        return conn.execute(select(Answer.__table__).where(Answer.response_id == rid)
                            .order_by(Answer.ordinal)).all()


def test_new_records_are_accepted_and_stored_with_their_answers(central, device):
    records = [make_record(1, values=(9, "fijn geholpen")), make_record(2, values=(4,))]
    result = post(central, device, records)
    assert statuses(result) == [(records[0]["id"], "accepted"), (records[1]["id"], "accepted")]
    engine = central[2]
    row = stored_response(engine, records[0]["id"])
    assert (row.device_id, row.seq, row.questionnaire_id, row.questionnaire_version) == (
        device[0], 1, "standaard", 1)
    answers = stored_answers(engine, records[0]["id"])
    assert [(a.question_id, a.value_num, a.value_text) for a in answers] == [
        ("q1", 9, None), ("q2", None, "fijn geholpen")]


def test_every_answer_carries_its_responses_report_keys(central, device):
    record = make_record(1, values=(11, 7, "burgerzaken", 9, "paspoort"), suspect=True,
                         suspect_reason="test", questionnaire=("standaard", 3))
    aspects = ["totaal", "totaal", "dienst", "totaal", "dienst"]    # 11 is no grade: 7 counts
    for answer, aspect in zip(record["answers"], aspects):
        answer["aspect"] = aspect
    record["answers"].reverse()                                       # first by ordinal, not by place
    plain = make_record(2, values=("x",))                             # neither: both None
    plain["answers"][0]["aspect"] = "opmerking"
    post(central, device, [record, plain])
    response = stored_response(central[2], record["id"])
    answers = stored_answers(central[2], record["id"])
    assert len(answers) == 5
    for answer in answers:
        assert (answer.questionnaire_id, answer.questionnaire_version, answer.started_at,
                answer.suspect, answer.service, answer.overall) == (
            "standaard", 3, response.started_at, True, "burgerzaken", 7)
    [other] = stored_answers(central[2], plain["id"])
    assert (other.service, other.overall, other.suspect) == (None, None, False)


def test_a_resent_batch_is_acknowledged_as_duplicate_and_stored_once(central, device):
    records = [make_record(1), make_record(2)]
    post(central, device, records)
    again = post(central, device, records, sent=clock(1_700_200_000.0, 200_000.0))  # new attempt
    assert [s for _, s in statuses(again)] == ["duplicate", "duplicate"]
    with central[2].connect() as conn:
        count = conn.execute(select(Response.id).where(Response.device_id == device[0])).all()
    assert len(count) == 2


def test_same_id_with_other_content_is_rejected_as_conflict_and_stored_data_untouched(central, device):
    original = make_record(1, values=(8,))
    post(central, device, [original])
    before = stored_response(central[2], original["id"]), stored_answers(central[2], original["id"])
    changed = {**original, "answers": [{**original["answers"][0], "value": 2}]}
    result = post(central, device, [changed])
    assert result["results"][0]["status"] == "rejected"
    assert result["results"][0]["reason"].startswith("conflict:")
    after = stored_response(central[2], original["id"]), stored_answers(central[2], original["id"])
    assert after == before


def test_a_sequence_number_reused_with_another_id_is_rejected(central, device):
    post(central, device, [make_record(1)])
    result = post(central, device, [make_record(1)])
    assert result["results"][0]["status"] == "rejected"
    assert "sequence number already used" in result["results"][0]["reason"]


def test_results_come_in_the_order_sent_with_mixed_outcomes(central, device):
    old = make_record(3)
    post(central, device, [old])
    new_a, new_b = make_record(5), make_record(4)
    conflict = {**old, "language": "en"}
    reused = make_record(3)
    batch = [new_a, old, conflict, reused, new_b, new_a]
    result = post(central, device, batch)
    assert [r["id"] for r in result["results"]] == [r["id"] for r in batch]
    assert [r["status"] for r in result["results"]] == [
        "accepted", "duplicate", "rejected", "rejected", "accepted", "duplicate"]


def test_unknown_location_and_questionnaire_are_still_accepted(central, device):
    record = make_record(1, location_id="nergens", questionnaire=("nooit-gepubliceerd", 99))
    assert post(central, device, [record])["results"][0]["status"] == "accepted"


def test_same_boot_times_are_corrected_exactly_from_the_monotonic_clock(central, device):
    # The device's wall clock says 1970 (no RTC, no NTP yet); boot and mono are right.
    sent = clock(10.0, 5_000.0, "boot-x")
    record = make_record(1, at=clock(3.0, 4_000.0, "boot-x"))
    before = time.time()
    result = post(central, device, [record], sent=sent)
    after = time.time()
    received = result["received_at"]
    assert before - 0.001 <= received <= after + 0.001
    row = stored_response(central[2], record["id"])
    assert row.time_verified is True
    assert row.started_at == pytest.approx(received - 1_000.0, abs=0.001)
    assert (row.started_wall, row.started_boot, row.started_mono) == (3.0, "boot-x", 4_000.0)
    assert (row.sent_wall, row.sent_boot, row.sent_mono) == (10.0, "boot-x", 5_000.0)
    answers = stored_answers(central[2], record["id"])
    assert [a.answered_at for a in answers] == pytest.approx(
        [received - 1_000.0, received - 999.0], abs=0.001)
    assert all(a.time_verified for a in answers)


def test_records_from_another_boot_keep_their_wall_time_marked_unverified(central, device):
    record = make_record(1, at=clock(1_690_000_000.0, 50.0, "boot-old"))
    post(central, device, [record], sent=clock(1_700_000_000.0, 60.0, "boot-new"))
    row = stored_response(central[2], record["id"])
    assert (row.started_at, row.time_verified) == (1_690_000_000.0, False)
    assert [(a.answered_at, a.time_verified) for a in stored_answers(central[2], record["id"])] == [
        (1_690_000_000.0, False), (1_690_000_001.0, False)]


def test_batches_update_last_seen_and_app_version(central, device):
    before = time.time()
    post(central, device, [make_record(1)], app_version="1.2.3")
    with central[2].connect() as conn:
        row = conn.execute(select(Device.__table__).where(Device.id == device[0])).first()
    assert row.app_version == "1.2.3" and row.last_seen_at >= before - 0.001
    assert (row.highest_seq, row.seq_count) == (1, 1)


def test_heartbeat_is_stored_on_the_device_row(central, device):
    _, base_url, engine = central
    device_id, session = device
    beat = {"device_id": device_id, "app_version": "0.9.0", "backlog": 12, "quarantined": 1,
            "last_error": "timeout", "disk_free_bytes": 123456789,
            "clock": clock(1_700_000_500.0, 77.0, "boot-h"), "clock_synced": False}
    reply = session.post(base_url + HEARTBEAT_PATH, json=beat, timeout=(5, 30))
    assert reply.status_code == 200, reply.text
    with engine.connect() as conn:
        row = conn.execute(select(Device.__table__).where(Device.id == device_id)).first()
    assert (row.backlog, row.quarantined, row.last_error, row.disk_free_bytes) == (
        12, 1, "timeout", 123456789)
    assert (row.clock_wall, row.clock_boot, row.clock_mono, row.clock_synced) == (
        1_700_000_500.0, "boot-h", 77.0, False)
    assert row.heartbeat_at == row.last_seen_at == reply.json()["received_at"]


@pytest.mark.parametrize("bad_value", [2 ** 70, "a\x00b"], ids=["huge", "nul"])
def test_values_the_database_cannot_hold_are_refused_by_the_protocol(central, device, bad_value):
    # The wire protocol bounds numbers and refuses NUL, so such a batch is a 422
    # (a device never builds one: it quarantines the record locally instead).
    _, base_url, engine = central
    device_id, session = device
    body = make_batch(device_id, [make_record(1, values=(bad_value,)), make_record(2)])

    def stored():
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM responses").scalar()

    before = stored()
    reply = session.post(base_url + BATCHES_PATH, json=body, timeout=(5, 30))
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"] == "invalid"
    assert stored() == before


def test_a_500_record_batch_is_stored_in_one_request(central, device):
    records = [make_record(seq, values=(8, 7, 6, 5, 4, 3, 2)) for seq in range(1, 501)]
    started = time.perf_counter()
    result = post(central, device, records)
    elapsed = time.perf_counter() - started
    assert [r["status"] for r in result["results"]] == ["accepted"] * 500
    print(f"\n500 responses / 3500 answers in {elapsed:.3f}s: {3500 / elapsed:.0f} answers/s")


def test_two_central_processes_storing_the_same_batch_at_once_give_no_5xx(central, device):
    settings, base_url, engine = central
    device_id, session = device
    headers = dict(session.headers)
    records = [make_record(seq) for seq in range(1, 41)]
    body = make_batch(device_id, records)
    replies = []
    with run_central(settings, migrate_first=False) as second_url:
        barrier = threading.Barrier(6)

        def send(url):
            barrier.wait()
            replies.append(requests.post(url + BATCHES_PATH, json=body, headers=headers, timeout=30))

        threads = [threading.Thread(target=send, args=(url,)) for url in [base_url, second_url] * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [r.status_code for r in replies] == [200] * 6, [r.text for r in replies]
    per_record = list(zip(*[[x["status"] for x in r.json()["results"]] for r in replies]))
    assert all(sorted(s) == ["accepted"] + ["duplicate"] * 5 for s in per_record), [
        [x for x in r.json()["results"] if x["status"] == "rejected"][:2] for r in replies]
    with engine.connect() as conn:
        stored = conn.execute(select(Response.id).where(Response.device_id == device_id)).all()
    assert len(stored) == 40


def test_two_devices_sending_the_same_id_at_once_get_one_acceptance_and_no_5xx(central):
    settings, base_url, engine = central
    shared = make_record(1)
    devices = [enrol_device(settings, name=f"Balie {n}") for n in (1, 2, 3, 4)]
    replies = []
    barrier = threading.Barrier(len(devices))

    def send(device_id, token):
        record = {**shared, "answers": [{**a, "id": a["id"]} for a in shared["answers"]]}
        barrier.wait()
        replies.append(requests.post(base_url + BATCHES_PATH, json=make_batch(device_id, [record]),
                                     headers={"Authorization": f"Bearer {token}"}, timeout=30))

    threads = [threading.Thread(target=send, args=pair) for pair in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in replies] == [200] * 4, [r.text for r in replies]
    outcomes = sorted(r.json()["results"][0]["status"] for r in replies)
    assert outcomes == ["accepted", "rejected", "rejected", "rejected"]


# ---------------------------------------------------------------- the fast ingest path
# (central/ingest.py: hand-written canonical JSON, one pass building row tuples with the
# time correction inlined, PostgreSQL COPY with the answer-id look-up left to the key)

GOLDEN_RECORD = {
    "id": "0b0f7c1e-5d2a-4c3b-9e8f-1a2b3c4d5e6f", "seq": 42,
    "questionnaire": {"id": "standaard", "version": 3}, "location_id": "stadhuis.balie-2",
    "language": "nl", "started": {"wall": 1764230400.125, "boot_id": "boot-ä\"\\\n", "mono": 3600.5},
    "closed_wall": 1764230460, "end_reason": "completed", "suspect": True,
    "suspect_reason": "te snel: <1 s per vraag — \u2603 \U0001F600 \t",
    "answers": [
        {"id": "1c9e6679-7425-40de-944b-e07fc1f90ae7", "ordinal": 1, "question_id": "q1",
         "aspect": "totaal", "value": -7, "at": {"wall": 1e11, "boot_id": "b", "mono": 0.1}},
        {"id": "2c9e6679-7425-40de-944b-e07fc1f90ae7", "ordinal": 2, "question_id": "q-2_x",
         "value": "Prima geholpen, \"echt\" waar\\ \u00e9\u00e8 \u0001",
         "at": {"wall": 0, "boot_id": "b", "mono": 1e-7}},
    ],
}


def _reference_canonical_json(record) -> str:
    """The definition central.ingest.canonical_json writes out by hand."""
    import json

    return json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


def test_the_content_hash_is_pinned():
    # Stored hashes must keep matching re-sent records across releases.
    from central.ingest import content_hash
    from sync.protocol import ResponseRecord

    record = ResponseRecord.model_validate(GOLDEN_RECORD)
    assert content_hash(record) == "e92a98eee534053871bf929c9c95b5f12e616342b1cc3f2ccd29a3fd247b46db"


def test_the_hand_written_canonical_json_equals_the_json_module_definition():
    import random

    from central.ingest import canonical_json
    from sync.protocol import ResponseRecord

    rng = random.Random(7)
    texts = ["", "a", "ü€😀", "\"quoted\" \\ back", "tab\there\nnewline\r", "\u0001\u001f\u007f",
             "\u2028\u2029", "x" * 300, "Prima", "ja"]
    floats = [0.0, 0.1, 1e-7, 1.5, 123456789.123, 1_764_230_400.125, 9_999_999_999.99, 1e10, 3.0]
    for n in range(300):
        answers = []
        for ordinal in range(1, rng.randint(1, 9)):
            value = rng.choice([rng.randint(-10 ** 9, 10 ** 9), rng.randint(0, 10), rng.choice(texts)])
            answers.append({
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "ordinal": ordinal,
                "question_id": f"q{ordinal}", "aspect": rng.choice([None, "totaal", "wacht-tijd_2"]),
                "value": value,
                "at": {"wall": rng.choice(floats), "boot_id": (rng.choice(texts) or "b")[:64],
                       "mono": rng.choice(floats)}})
        if not answers:
            continue
        data = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "seq": rng.randint(1, 2 ** 31 - 1),
                "questionnaire": {"id": "standaard", "version": rng.randint(1, 5)},
                "location_id": "balie-1", "language": rng.choice(["nl", "en"]),
                "started": {"wall": rng.choice(floats), "boot_id": (rng.choice(texts) or "b")[:64],
                            "mono": rng.choice([*floats, 7])},
                "closed_wall": rng.choice([*floats, 1_764_230_460]),
                "end_reason": rng.choice(["completed", "idle", "abandoned", "interrupted"]),
                "answers": answers}
        if rng.random() < 0.5:
            data["suspect"] = rng.random() < 0.5
            data["suspect_reason"] = rng.choice([None, *texts])
        record = ResponseRecord.model_validate(data)
        assert canonical_json(record) == _reference_canonical_json(record), data
    golden = ResponseRecord.model_validate(GOLDEN_RECORD)
    assert canonical_json(golden) == _reference_canonical_json(golden)


def test_the_postgresql_ingest_goes_through_copy_and_sqlite_through_executemany(central):
    from central.ingest import _GenericStore, _PostgresStore, _store_for

    engine = central[2]
    with engine.begin() as conn:
        store = _store_for(conn)
    expected = _PostgresStore if engine.dialect.name == "postgresql" else _GenericStore
    assert type(store) is expected


def test_an_answer_id_already_stored_rejects_only_that_record_and_keeps_the_stored_one(central, device):
    # On PostgreSQL the first try leaves answer ids to the unique key: the COPY fails,
    # and the batch is evaluated again with the look-up. On SQLite the look-up is always made.
    first = make_record(1, values=(8, 7))
    post(central, device, [first])
    before = stored_answers(central[2], first["id"])
    thief = make_record(2, values=(1,))
    thief["answers"][0]["id"] = first["answers"][1]["id"]
    fine = make_record(3)
    result = post(central, device, [thief, fine])
    assert [r["status"] for r in result["results"]] == ["rejected", "accepted"]
    assert result["results"][0]["reason"] == "answer id already used by another response"
    assert stored_response(central[2], thief["id"]) is None
    assert stored_answers(central[2], first["id"]) == before
    assert len(stored_answers(central[2], fine["id"])) == 2
    with central[2].connect() as conn:
        row = conn.execute(select(Device.__table__).where(Device.id == device[0])).first()
    assert (row.highest_seq, row.seq_count) == (3, 2)


def test_an_answer_id_repeated_within_one_batch_rejects_the_later_record(central, device):
    a, b = make_record(1), make_record(2)
    b["answers"][0]["id"] = a["answers"][0]["id"]
    result = post(central, device, [a, b])
    assert [r["status"] for r in result["results"]] == ["accepted", "rejected"]
    assert "answer id already used" in result["results"][1]["reason"]


def test_stored_times_are_those_of_central_timecorrect(central, device):
    from central.timecorrect import corrected_time
    from sync.protocol import ClockReading

    sent = clock(1_700_000_000.0, 5_000.0, "boot-now")
    records = [
        make_record(1, at=clock(1_699_999_000.0, 4_000.0, "boot-now")),   # same boot: verified
        make_record(2, at=clock(1_690_000_000.0, 4_000.0, "boot-old")),   # other boot
        make_record(3, at=clock(1_699_999_999.0, 4_999.5, "boot-now")),   # 2nd answer after sent
        make_record(4, at=clock(1_699_999_999.0, 6_000.0, "boot-now")),   # after sent: impossible
    ]
    result = post(central, device, records, sent=sent)
    received = result["received_at"]
    reading = ClockReading.model_validate(sent)
    for record in records:
        row = stored_response(central[2], record["id"])
        assert (row.started_at, row.time_verified) == corrected_time(
            ClockReading.model_validate(record["started"]), sent=reading, received_at=received)
        for stored, answer in zip(stored_answers(central[2], record["id"]), record["answers"]):
            assert (stored.answered_at, stored.time_verified) == corrected_time(
                ClockReading.model_validate(answer["at"]), sent=reading, received_at=received)
    verified = [stored_response(central[2], r["id"]).time_verified for r in records]
    assert verified == [True, False, True, False]
    assert [a.time_verified for a in stored_answers(central[2], records[2]["id"])] == [True, False]


def test_a_large_batch_sent_again_with_new_records_answers_duplicate_then_accepted(central, device):
    records = [make_record(seq, values=(8, 7, 6, 5, 4, 3, 2, "ok")) for seq in range(1, 301)]
    assert {r["status"] for r in post(central, device, records)["results"]} == {"accepted"}
    more = [make_record(seq) for seq in (301, 302)]
    result = post(central, device, records + more, sent=clock(1_700_300_000.0, 300_000.0))
    assert [r["status"] for r in result["results"]] == ["duplicate"] * 300 + ["accepted"] * 2
    answers = stored_answers(central[2], records[-1]["id"])
    assert [(a.value_num, a.value_text) for a in answers][-2:] == [(2, None), (None, "ok")]


def test_ids_with_a_comma_are_refused_by_the_key_list():
    from central.ingest import _joined

    assert _joined(["a", "b"]) == "a,b"
    with pytest.raises(ValueError):
        _joined(["a,b"])
