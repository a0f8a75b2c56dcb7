"""Central stores batches idempotently and answers per record (SQLite and PostgreSQL, real HTTP)."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import select

from central.db import make_engine
from central.models import Answer, Device, Response
from sync.protocol import BATCHES_PATH, HEARTBEAT_PATH
from tests.central_fixtures import (
    central_settings,
    clock,
    enrol_device,
    make_batch,
    make_record,
    run_central,
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def central(request, tmp_path_factory):
    """(settings, base_url, engine) of one real central per backend for this module."""
    if request.param == "sqlite":
        database = tmp_path_factory.mktemp("central") / "central.sqlite3"
    else:
        database = request.getfixturevalue("pg_cluster").create_database()
    settings = central_settings(database)
    with run_central(settings) as base_url:
        engine = make_engine(settings.database_url)
        yield settings, base_url, engine
        engine.dispose()


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


def test_values_the_database_cannot_hold_reject_only_that_record(central, device):
    huge = make_record(1, values=(2 ** 70,))
    nul = make_record(2, values=("a\x00b",))
    fine = make_record(3)
    result = post(central, device, [huge, nul, fine])
    assert [r["status"] for r in result["results"]] == ["rejected", "rejected", "accepted"]
    assert "out of range" in result["results"][0]["reason"]
    assert "NUL" in result["results"][1]["reason"]


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
