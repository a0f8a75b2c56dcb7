"""The uploader against a real HTTP server on a loopback port (tests/sync_test_server.py)."""

from __future__ import annotations

import gzip
import random
import threading
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
import requests

from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.settings import SyncSettings
from kiosk.state import DeviceState
from sync.protocol import MAX_BODY_BYTES, Batch
from sync.uploader import Uploader, full_jitter, make_session, retry_after_seconds
from tests.sync_test_server import FakeTime, Reply, ScriptedCentral, Sleep, fill_buffer

TOKEN = "secret-token-1"


@pytest.fixture
def clock():
    return FakeTimeSource(wall=1_700_000_000.0, mono=100.0, boot_id="boot-a")


@pytest.fixture
def buf(tmp_path, clock):
    b = Buffer.open(tmp_path / "buffer.sqlite3", time_source=clock)
    yield b
    b.close()


@pytest.fixture
def central():
    with ScriptedCentral(token=TOKEN) as c:
        yield c


@pytest.fixture
def fake_time():
    return FakeTime()


def settings(**overrides) -> SyncSettings:
    values = dict(batch_records=200, connect_timeout_s=2.0, read_timeout_s=2.0, deadline_s=3600.0)
    values.update(overrides)
    return SyncSettings(**values)


def make_uploader(buf, central, fake_time, clock, *, token=TOKEN, seed=7, synced=True, **opts):
    state = DeviceState(central_url=central.url, device_id="dev-1", token=token)
    return Uploader(settings(**opts), buf, state, clock=clock, sleep=fake_time.sleep,
                    monotonic=fake_time.monotonic, rng=random.Random(seed),
                    clock_synced=lambda: synced)


def copy_response(buf, response_id: str, times: int) -> None:
    """Store ``times`` copies of a response (new ids, next seqs) in one transaction: fast."""
    import sqlite3
    import uuid

    con = sqlite3.connect(buf.path)
    with con:
        row = con.execute("SELECT * FROM responses WHERE id = ?", (response_id,)).fetchone()
        answers = con.execute("SELECT * FROM answers WHERE response_id = ?", (response_id,)).fetchall()
        seq = con.execute("SELECT max(seq) FROM responses").fetchone()[0]
        for n in range(1, times + 1):
            rid = str(uuid.uuid4())
            con.execute(f"INSERT INTO responses VALUES ({','.join('?' * len(row))})",
                        (rid, seq + n) + row[2:])
            con.executemany(f"INSERT INTO answers VALUES ({','.join('?' * len(answers[0]))})",
                            [(str(uuid.uuid4()), rid) + a[2:] for a in answers])
        con.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (str(seq + times),))
    con.close()


def unsent(buf) -> int:
    return buf.backlog().responses


# --------------------------------------------------------------------------- the happy path


def test_a_round_sends_everything_oldest_first_in_bounded_batches(buf, central, fake_time, clock):
    ids = fill_buffer(buf, 25)
    report = make_uploader(buf, central, fake_time, clock, batch_records=10).run_once()
    assert report.ok and report.stopped_reason == "done"
    assert (report.accepted, report.duplicate, report.rejected, report.batches) == (25, 0, 0, 3)
    assert [len(b.responses) for b in central.batches] == [10, 10, 5]
    sent_order = [r.id for b in central.batches for r in b.responses]
    assert sent_order == ids
    assert [r.seq for b in central.batches for r in b.responses] == list(range(1, 26))
    assert unsent(buf) == 0 and report.backlog == 0


def test_batches_are_gzipped_json_that_validates_as_a_protocol_batch(buf, central, fake_time, clock):
    fill_buffer(buf, 3)
    make_uploader(buf, central, fake_time, clock).run_once()
    request = central.batch_requests[0]
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/json"
    assert gzip.decompress(request.raw) == request.body
    assert len(request.raw) < len(request.body)
    batch = Batch.model_validate_json(request.body)
    assert batch.device_id == "dev-1" and batch.app_version
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_batch_never_exceeds_the_byte_limit(buf, central, fake_time, clock):
    # ~140 KB per response: 24 of them are ~3.4 MB, over the 2 MB limit.
    (first,) = fill_buffer(buf, 1, answers=64, text="x" * 2000, text_everywhere=True)
    copy_response(buf, first, times=23)
    report = make_uploader(buf, central, fake_time, clock).run_once()
    assert report.ok and report.accepted == 24
    sizes = [len(r.body) for r in central.batch_requests]
    assert len(sizes) > 1 and max(sizes) <= MAX_BODY_BYTES


def test_a_resent_record_counts_as_sent_when_central_says_duplicate(buf, central, fake_time, clock):
    ids = fill_buffer(buf, 4)
    for record in buf.pending(2):  # central already has the first two (an earlier lost reply)
        central.stored[record.id] = record.model_dump()
    report = make_uploader(buf, central, fake_time, clock).run_once()
    assert (report.accepted, report.duplicate) == (2, 2)
    assert unsent(buf) == 0 and len(ids) == 4


def test_rejected_records_go_to_quarantine_with_centrals_reason(buf, central, fake_time, clock):
    a, b, c = fill_buffer(buf, 3)
    central.reject[b] = "conflict: same id, other content"
    report = make_uploader(buf, central, fake_time, clock).run_once()
    assert (report.accepted, report.rejected) == (2, 1)
    backlog = buf.backlog()
    assert (backlog.responses, backlog.quarantined) == (0, 1)
    import sqlite3
    con = sqlite3.connect(buf.path)
    assert con.execute("SELECT state, state_reason FROM responses WHERE id = ?", (b,)).fetchone() == (
        "quarantined", "conflict: same id, other content")
    con.close()
    # never retried: a second round sends nothing
    before = len(central.batch_requests)
    make_uploader(buf, central, fake_time, clock).run_once()
    assert len(central.batch_requests) == before


def test_records_missing_from_the_reply_stay_unsent_and_go_again(buf, central, fake_time, clock):
    a, b, c = fill_buffer(buf, 3)
    central.omit = {b}
    report = make_uploader(buf, central, fake_time, clock, deadline_s=60).run_once()
    assert report.accepted == 2 and report.missing >= 1
    assert [r.id for r in buf.pending(10)] == [b]
    central.omit = set()
    report = make_uploader(buf, central, fake_time, clock).run_once()
    assert report.accepted == 1 and unsent(buf) == 0


def test_the_sent_clock_reading_is_taken_anew_at_every_attempt(buf, central, fake_time, clock):
    fill_buffer(buf, 2)
    central.script.extend([Reply(500), Reply(500), "ok"])

    class TickingClock(FakeTimeSource):
        def now(self):
            self.advance(10)
            return super().now()

    ticking = TickingClock(wall=1_700_000_000.0, mono=100.0, boot_id="boot-a")
    make_uploader(buf, central, fake_time, ticking).run_once()
    sent = [Batch.model_validate_json(r.body).sent for r in central.batch_requests]
    assert len(sent) == 3 and len({s.mono for s in sent}) == 3
    assert sent[0].mono < sent[1].mono < sent[2].mono


# --------------------------------------------------------------------------- 413


def test_413_halves_the_batch_until_central_takes_it(buf, central, fake_time, clock):
    ids = fill_buffer(buf, 40)
    central.max_records = 10
    report = make_uploader(buf, central, fake_time, clock, batch_records=40).run_once()
    sizes = [len(Batch.model_validate_json(r.body).responses) for r in central.batch_requests]
    assert sizes[:3] == [40, 20, 10]
    assert all(s <= 10 for s in sizes[3:])
    assert report.ok and report.accepted == 40 and unsent(buf) == 0
    assert [r.id for b in central.batches for r in b.responses] == ids  # still oldest first


def test_a_single_record_that_still_gets_413_is_quarantined_as_too_large(buf, central, fake_time, clock):
    a, b = fill_buffer(buf, 2)
    central.script.extend([Reply(413), Reply(413)])
    report = make_uploader(buf, central, fake_time, clock, batch_records=2).run_once()
    assert report.quarantined_locally == 1
    assert report.accepted == 1
    import sqlite3
    con = sqlite3.connect(buf.path)
    assert con.execute("SELECT state, state_reason FROM responses WHERE id = ?", (a,)).fetchone() == (
        "quarantined", "too large")
    con.close()


# --------------------------------------------------------------------------- waiting


def test_retry_after_in_seconds_is_honoured(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    central.script.extend([Reply(429, {"Retry-After": "7"}), Reply(503, {"Retry-After": "3"})])
    report = make_uploader(buf, central, fake_time, clock).run_once()
    assert fake_time.sleeps == [7.0, 3.0]
    assert report.ok and report.accepted == 1


def test_retry_after_as_an_http_date_is_measured_against_the_replys_date(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)  # the device's own clock is irrelevant
    central.script.append(Reply(503, {"Retry-After": format_datetime(now + timedelta(seconds=42),
                                                                     usegmt=True),
                                      "Date": format_datetime(now, usegmt=True)}))
    make_uploader(buf, central, fake_time, clock).run_once()
    assert fake_time.sleeps == [42.0]


def test_retry_after_is_capped(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    central.script.append(Reply(429, {"Retry-After": "86400"}))
    report = make_uploader(buf, central, fake_time, clock, retry_after_cap_s=600).run_once()
    assert fake_time.sleeps == [600.0] and report.ok


def test_retry_after_values_are_parsed_safely():
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds("-5") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 10) == 10.0


def test_5xx_and_network_errors_back_off_with_full_jitter_that_grows(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    central.script.extend([Reply(500), "drop", "truncate", "garbage", Reply(502), "ok"])
    report = make_uploader(buf, central, fake_time, clock, seed=42, backoff_base_s=2,
                           backoff_cap_s=300).run_once()
    rng = random.Random(42)
    expected = [rng.uniform(0, min(300, 2 * 2 ** n)) for n in range(5)]
    assert fake_time.sleeps == pytest.approx(expected)
    assert report.ok and report.accepted == 1 and report.attempts == 6


def test_full_jitter_stays_under_the_growing_ceiling_and_the_cap():
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(300, 2 * 2 ** attempt)
        values = [full_jitter(attempt, 2, 300, rng) for _ in range(200)]
        assert all(0 <= v <= ceiling for v in values)
        assert max(values) > ceiling / 2  # uses the whole range


@pytest.mark.parametrize("fault", ["drop", "truncate", "garbage", Reply(500), Reply(503)])
def test_a_failed_attempt_keeps_the_data_and_the_next_attempt_sends_it(buf, central, fake_time,
                                                                        clock, fault):
    ids = fill_buffer(buf, 3)
    central.script.append(fault)
    report = make_uploader(buf, central, fake_time, clock).run_once()
    assert report.ok and report.accepted == 3 and len(fake_time.sleeps) == 1
    assert set(central.stored) == set(ids)


def test_errors_until_the_deadline_end_the_round_with_the_data_kept(buf, central, fake_time, clock):
    fill_buffer(buf, 3)
    central.script.extend([Reply(500)] * 1000)
    report = make_uploader(buf, central, fake_time, clock, deadline_s=120, backoff_cap_s=30).run_once()
    assert report.stopped_reason == "deadline"
    assert sum(fake_time.sleeps) <= 120
    assert report.attempts > 3 and "HTTP 500" in report.last_error
    assert unsent(buf) == 3 and not report.ok
    assert [e.kind for e in buf.events()].count("sync_failed") == 1


def test_a_server_that_does_not_answer_times_out_within_the_read_timeout(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    central.script.append(Sleep(3))
    up = make_uploader(buf, central, fake_time, clock, read_timeout_s=0.3)
    started = time.monotonic()
    report = up.run_once()
    assert report.ok  # the retry after the timeout went through
    assert "Timeout" in (report.last_error or "")
    assert time.monotonic() - started < 2.5


def test_every_request_carries_a_connect_and_read_timeout(buf, central, fake_time, clock):
    fill_buffer(buf, 3)
    central.script.append(Reply(500))
    calls = []

    class Recording(requests.Session):
        def request(self, method, url, **kwargs):
            calls.append(kwargs.get("timeout"))
            return super().request(method, url, **kwargs)

    session = make_session()
    recording = Recording()
    recording.adapters = session.adapters
    up = make_uploader(buf, central, fake_time, clock, connect_timeout_s=1.5, read_timeout_s=4)
    up.session = recording
    up.run_once()
    assert len(calls) == 3  # failed batch, batch, heartbeat
    assert all(isinstance(t, tuple) and t[0] <= 1.5 and t[1] <= 4 for t in calls)


def test_the_read_timeout_never_reaches_past_the_rounds_deadline(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    central.script.append(Sleep(3))
    up = make_uploader(buf, central, fake_time, clock, read_timeout_s=30, deadline_s=0.5)
    started = time.monotonic()
    report = up.run_once()
    assert time.monotonic() - started < 2.0
    assert report.stopped_reason == "deadline" and unsent(buf) == 1


def test_the_session_does_not_retry_behind_the_uploaders_back():
    adapter = make_session().get_adapter("http://example.invalid")
    assert adapter.max_retries.total == 0


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_stop_the_round_at_once_and_keep_the_data(buf, central, fake_time, clock, status):
    fill_buffer(buf, 30)
    central.script.append(Reply(status, body=b'{"error": "token revoked"}'))
    report = make_uploader(buf, central, fake_time, clock, batch_records=10).run_once()
    assert report.stopped_reason == "auth" and not report.ok
    assert len(central.received) == 1 and fake_time.sleeps == []
    assert unsent(buf) == 30
    assert f"HTTP {status}" in report.last_error and "token revoked" in report.last_error
    events = [e for e in buf.events() if e.kind == "sync_auth_refused"]
    assert len(events) == 1 and f"HTTP {status}" in events[0].detail


def test_a_wrong_token_is_refused_and_never_appears_in_the_report(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    report = make_uploader(buf, central, fake_time, clock, token="wrong-token-123").run_once()
    assert report.stopped_reason == "auth"
    assert "wrong-token-123" not in report.summary()
    assert all("wrong-token-123" not in e.detail for e in buf.events())


# --------------------------------------------------------------------------- one at a time


def test_a_second_trigger_while_a_round_runs_returns_busy_at_once(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    central.script.append(Sleep(1.0))
    up = make_uploader(buf, central, fake_time, clock)
    first: list = []
    t = threading.Thread(target=lambda: first.append(up.run_once()))
    t.start()
    deadline = time.monotonic() + 5
    while not central.received and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    second = up.run_once()
    assert second.stopped_reason == "busy" and time.monotonic() - started < 0.1
    t.join()
    assert first[0].ok and first[0].accepted == 1
    assert len(central.batch_requests) == 1  # the busy trigger sent nothing


def test_an_unenrolled_terminal_sends_nothing(buf, fake_time, clock):
    fill_buffer(buf, 1)
    up = Uploader(settings(), buf, None, sleep=fake_time.sleep, monotonic=fake_time.monotonic)
    assert up.run_once().stopped_reason == "not_enrolled"


# --------------------------------------------------------------------------- heartbeat


def test_a_heartbeat_follows_the_batches_with_backlog_quarantine_disk_and_clock(buf, central,
                                                                                  fake_time, clock):
    a, b, c = fill_buffer(buf, 3)
    fill_buffer(buf, 1, close=False)
    central.reject[a] = "conflict"
    central.omit = {c}
    report = make_uploader(buf, central, fake_time, clock, deadline_s=30, backoff_cap_s=100,
                           synced=False).run_once()
    beat = central.heartbeats[-1]
    assert report.heartbeat_sent or report.stopped_reason == "deadline"
    assert beat.device_id == "dev-1" and beat.app_version
    assert beat.backlog == 1 and beat.quarantined == 1
    assert beat.disk_free_bytes is not None and beat.disk_free_bytes > 0
    assert beat.clock.boot_id == "boot-a" and beat.clock_synced is False
    assert central.received[-1].path == "/api/v1/heartbeat"


def test_the_heartbeat_carries_the_rounds_last_error(buf, central, fake_time, clock):
    fill_buffer(buf, 1)
    central.script.append(Reply(500, body=b'{"error": "database down"}'))
    make_uploader(buf, central, fake_time, clock, synced=None).run_once()
    beat = central.heartbeats[-1]
    assert "database down" in beat.last_error and beat.clock_synced is None


def test_an_empty_buffer_still_sends_a_heartbeat(buf, central, fake_time, clock):
    report = make_uploader(buf, central, fake_time, clock).run_once()
    assert report.ok and report.batches == 0 and len(central.heartbeats) == 1
    assert central.heartbeats[0].backlog == 0


# --------------------------------------------------------------------------- seams


def test_heartbeat_extras_are_merged_and_a_failing_provider_is_left_out(buf, central, fake_time,
                                                                         clock):
    uploader = make_uploader(buf, central, fake_time, clock)

    def broken():
        raise RuntimeError("provider bug")

    uploader.heartbeat_extras += [lambda: {"open_now": True, "quiet_open_s": 90.0}, broken,
                                  lambda: {"questionnaire": {"id": "balie-standaard", "version": 2}}]
    report = uploader.run_once()
    beat = central.heartbeats[-1]
    assert report.ok
    assert beat.open_now is True and beat.quiet_open_s == 90.0
    assert (beat.questionnaire.id, beat.questionnaire.version) == ("balie-standaard", 2)


def test_progress_is_reported_after_every_batch_and_at_the_end(buf, central, fake_time, clock):
    fill_buffer(buf, 5)
    uploader = make_uploader(buf, central, fake_time, clock, batch_records=2)
    seen = []
    uploader.progress.append(lambda report: seen.append((report.sent, report.backlog)))
    report = uploader.run_once()
    assert report.ok and report.sent == 5
    assert [sent for sent, _ in seen] == [2, 4, 5, 5]
    assert seen[-1] == (5, 0)  # the last call carries the final backlog


def test_after_round_steps_run_before_the_heartbeat_and_their_errors_are_reported(
        buf, central, fake_time, clock):
    uploader = make_uploader(buf, central, fake_time, clock)
    order = []
    uploader.after_round.append(lambda report: order.append(len(central.heartbeats)))

    def failing(_report):
        raise OSError("questionnaire download failed")

    uploader.after_round.append(failing)
    report = uploader.run_once()
    assert order == [0]  # ran before the heartbeat went up
    assert "questionnaire download failed" in report.last_error
    assert "questionnaire download failed" in central.heartbeats[-1].last_error
