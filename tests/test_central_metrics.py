"""/metrics: Prometheus text with this app's counters and per-device gauges read at scrape time
(SQLite and PostgreSQL, real HTTP, a controlled clock), parsed with prometheus_client's parser."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from central.app import create_app
from central.db import make_engine
from central.devices import enrol, revoke
from central.questionnaires import publish, read_questionnaire_file
from sync.protocol import BATCHES_PATH, HEARTBEAT_PATH, QUESTIONNAIRE_PATH
from tests.central_fixtures import (
    FakeClock,
    central_settings,
    fresh_database,
    make_batch,
    make_heartbeat,
    make_record,
    migrate,
    questionnaire_file,
    run_central,
)

T0 = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def central(request, tmp_path):
    """(base_url, engine, fake clock) of a fresh central with its own counters."""
    url = fresh_database(request, tmp_path)
    settings = central_settings(url)
    migrate(settings)
    fake = FakeClock(T0)
    engine = make_engine(url)
    try:
        with run_central(settings, migrate_first=False, clock=fake, watch_fleet=False) as base_url:
            yield base_url, engine, fake
    finally:
        engine.dispose()


def scrape(base_url) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    reply = requests.get(base_url + "/metrics", timeout=(5, 30))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def device_labels(device_id, location="stadhuis"):
    return (("device", device_id), ("location", location))


def test_counters_count_batches_responses_answers_heartbeats_fetches_and_errors(central, tmp_path):
    base_url, engine, _ = central
    device_id, token = enrol(engine, name="Balie 1", location="stadhuis", now=T0)
    auth = {"Authorization": f"Bearer {token}"}
    before = scrape(base_url)
    assert before[("balie_batches_total", ())] == 0
    assert before[("balie_responses_total", (("result", "accepted"),))] == 0

    first, second = make_record(1, values=(8, 7, "prima")), make_record(2, values=(5,))
    conflict = {**first, "language": "en"}
    for records in ([first, second], [first, conflict, make_record(3, values=(9, 9))]):
        reply = requests.post(base_url + BATCHES_PATH, json=make_batch(device_id, records),
                              headers=auth, timeout=(5, 30))
        assert reply.status_code == 200
    requests.post(base_url + HEARTBEAT_PATH, json=make_heartbeat(device_id), headers=auth,
                  timeout=(5, 30))
    requests.get(base_url + QUESTIONNAIRE_PATH, headers=auth, timeout=(5, 30))        # 404
    publish(engine, *read_questionnaire_file(questionnaire_file(tmp_path, 1)), location=None,
            now=T0)
    etag = requests.get(base_url + QUESTIONNAIRE_PATH, headers=auth,
                        timeout=(5, 30)).headers["etag"]
    requests.get(base_url + QUESTIONNAIRE_PATH, headers={**auth, "If-None-Match": etag},
                 timeout=(5, 30))
    for _ in range(2):
        requests.post(base_url + BATCHES_PATH, json={}, timeout=(5, 30))              # 401
    requests.post(base_url + BATCHES_PATH, data=b"{", headers=auth, timeout=(5, 30))  # 400

    samples = scrape(base_url)
    assert samples[("balie_batches_total", ())] == 2
    assert {result: samples[("balie_responses_total", (("result", result),))]
            for result in ("accepted", "duplicate", "rejected")} == {
        "accepted": 3, "duplicate": 1, "rejected": 1}
    assert samples[("balie_answers_stored_total", ())] == 3 + 1 + 2
    assert samples[("balie_heartbeats_total", ())] == 1
    assert {result: samples[("balie_questionnaire_fetches_total", (("result", result),))]
            for result in ("sent", "not_modified", "none")} == {
        "sent": 1, "not_modified": 1, "none": 1}
    errors = {labels: value for (name, labels), value in samples.items()
              if name == "balie_http_errors_total"}
    assert errors == {(("error", "unauthorized"), ("status", "401")): 2,
                      (("error", "malformed_json"), ("status", "400")): 1,
                      (("error", "no_questionnaire"), ("status", "404")): 1}


def test_device_gauges_come_from_the_database_at_scrape_time(central):
    base_url, engine, fake = central
    device_id, token = enrol(engine, name="Balie 1", location="stadhuis", now=T0)
    never, _ = enrol(engine, name="Nieuw", location="bibliotheek", now=T0)
    gone, _ = enrol(engine, name="Weg", location="stadhuis", now=T0)
    revoke(engine, gone, now=T0)
    auth = {"Authorization": f"Bearer {token}"}
    fake.advance(60)
    requests.post(base_url + HEARTBEAT_PATH, headers=auth, timeout=(5, 30),
                  json=make_heartbeat(device_id, backlog=42, quarantined=3, open_now=True,
                                      quiet_open_s=8000.0,
                                      out_of_order="the buffer cannot take answers: disk full"))
    samples = scrape(base_url)
    mine = device_labels(device_id)
    assert samples[("balie_device_last_seen_timestamp_seconds", mine)] == T0 + 60
    assert samples[("balie_device_backlog", mine)] == 42
    assert samples[("balie_device_quarantined", mine)] == 3
    assert samples[("balie_device_silent", mine)] == 0
    assert samples[("balie_device_no_ratings", mine)] == 1
    assert samples[("balie_device_out_of_order", mine)] == 1
    new = device_labels(never, "bibliotheek")
    assert ("balie_device_last_seen_timestamp_seconds", new) not in samples    # never seen
    assert ("balie_device_backlog", new) not in samples
    assert samples[("balie_device_silent", new)] == 0
    assert not any(dict(labels).get("device") == gone for _, labels in samples)  # revoked: left out
    assert {state: samples[("balie_devices", (("state", state),))]
            for state in ("active", "revoked", "silent", "no_ratings", "out_of_order")} == {
        "active": 2, "revoked": 1, "silent": 0, "no_ratings": 1, "out_of_order": 1}
    assert samples[("balie_device_out_of_order", device_labels(never, "bibliotheek"))] == 0

    fake.advance(1800)                                       # the next scrape sees the silence
    samples = scrape(base_url)
    assert samples[("balie_device_silent", mine)] == 1
    assert samples[("balie_device_silent", new)] == 1
    assert samples[("balie_devices", (("state", "silent"),))] == 2


def test_metrics_need_no_token_and_stay_out_of_the_openapi_description(central):
    base_url, _, _ = central
    reply = requests.get(base_url + "/metrics", timeout=(5, 30))
    assert reply.status_code == 200 and "balie_batches_total" in reply.text
    spec = requests.get(base_url + "/openapi.json", timeout=(5, 30)).json()
    assert "/metrics" not in spec["paths"]
    assert "/metrics" in spec["info"]["description"]


def test_every_app_has_its_own_registry(tmp_path):
    settings = central_settings(tmp_path / "central.sqlite3")
    migrate(settings)
    first, second = create_app(settings, watch_fleet=False), create_app(settings, watch_fleet=False)
    first.state.metrics.batches.inc(5)
    assert first.state.metrics.registry is not second.state.metrics.registry
    assert second.state.metrics.registry.get_sample_value("balie_batches_total") == 0
    assert first.state.metrics.registry.get_sample_value("balie_batches_total") == 5
    first.state.engine.dispose()
    second.state.engine.dispose()


def test_a_scrape_with_the_database_down_is_a_503_not_a_crash(tmp_path):
    settings = central_settings(tmp_path / "central.sqlite3")
    migrate(settings)
    engine = make_engine(settings.database_url)
    try:
        with run_central(settings, migrate_first=False, engine=engine,
                         watch_fleet=False) as base_url:
            assert requests.get(base_url + "/metrics", timeout=(5, 30)).status_code == 200
            engine.dispose()                                  # no pooled connection survives
            for path in tmp_path.glob("central.sqlite3*"):
                path.unlink()
            (tmp_path / "central.sqlite3").mkdir()            # a folder where the file was
            reply = requests.get(base_url + "/metrics", timeout=(5, 60))
            assert reply.status_code == 503, reply.text[:300]
            assert reply.json()["error"] == "unavailable"
            assert reply.headers["retry-after"] == "30"
    finally:
        engine.dispose()
