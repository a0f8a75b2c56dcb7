"""The terminal fetches the message to visitors from a real central on a loopback port: after each
sync round, conditionally (ETag / 304), kept atomically on disk, removed when central clears it,
and the last good one kept when central cannot be reached or sends something unfit to show."""

from __future__ import annotations

import json
import random
import time

import pytest
import requests

from central.messages import VisitorMessage, clear_message, set_message
from kiosk.buffer import Buffer
from kiosk.clock import FakeTimeSource
from kiosk.message_store import FILE, MessageStore
from kiosk.settings import SyncSettings
from kiosk.state import DeviceState
from sync.message_fetch import MessageFetcher, attach_message_fetcher
from sync.protocol import MessageDocument
from sync.uploader import Uploader, make_session
from tests.central_fixtures import enrolled_central
from tests.sync_test_server import FakeTime, fill_buffer

NL = "Wij bellen u binnen 2 werkdagen terug."
EN = "We call you back within 2 working days."


@pytest.fixture
def central(tmp_path):
    """A real central (SQLite) with one enrolled device; yields (base_url, engine, state)."""
    with enrolled_central(tmp_path / "central.sqlite3") as (base_url, engine, device_id, token):
        yield base_url, engine, DeviceState(central_url=base_url, device_id=device_id, token=token)


@pytest.fixture
def store(tmp_path):
    return MessageStore(tmp_path / "data")


def make_fetcher(state, store, handed):
    return MessageFetcher(make_session(), SyncSettings(connect_timeout_s=2.0, read_timeout_s=5.0),
                          state, store, on_change=handed.append, wall=lambda: 1_700_000_000.0)


def test_a_message_is_kept_with_its_etag_then_304_and_removed_when_cleared(central, store):
    _, engine, state = central
    handed = []
    fetcher = make_fetcher(state, store, handed)
    assert fetcher.fetch().status == "none" and handed == [] and not store.path.exists()

    set_message(engine, VisitorMessage.build(nl=NL, en=EN, where="thanks"), location=None,
                now=time.time())
    outcome = fetcher.fetch()
    assert outcome.status == "stored"
    assert handed == [MessageDocument(nl=NL, en=EN, where="thanks")]
    kept = json.loads(store.path.read_text(encoding="utf-8"))
    assert kept["document"] == {"nl": NL, "en": EN, "where": "thanks"}
    assert kept["etag"].startswith('"') and kept["fetched_at"] == 1_700_000_000.0

    assert fetcher.fetch().status == "not_modified" and len(handed) == 1
    # After a restart the kept ETag is sent again: still 304.
    again = make_fetcher(state, store, handed)
    assert again.kept.document == handed[0]
    assert again.fetch().status == "not_modified" and len(handed) == 1

    clear_message(engine, location=None)
    assert again.fetch().status == "cleared"
    assert handed[-1] is None and not store.path.exists() and store.load() is None
    assert again.fetch().status == "none" and len(handed) == 2


def test_every_sync_round_fetches_the_message(central, tmp_path, store):
    _, engine, state = central
    buf = Buffer.open(tmp_path / "buffer.sqlite3",
                      time_source=FakeTimeSource(wall=1_700_000_000.0, mono=100.0, boot_id="b"))
    try:
        fill_buffer(buf, 2)
        fake = FakeTime()
        uploader = Uploader(SyncSettings(connect_timeout_s=2.0, read_timeout_s=5.0,
                                         deadline_s=60.0), buf, state,
                            sleep=fake.sleep, monotonic=fake.monotonic, rng=random.Random(1),
                            clock_synced=lambda: True)
        handed = []
        fetcher = attach_message_fetcher(uploader, store, on_change=handed.append)
        set_message(engine, VisitorMessage.build(nl=NL), location=None, now=time.time())
        report = uploader.run_once()
        assert report.ok and report.accepted == 2
        assert fetcher.last_outcome.status == "stored" and handed == [MessageDocument(nl=NL)]
        set_message(engine, VisitorMessage.build(nl="Anders"), location="stadhuis",
                    now=time.time())
        uploader.run_once()
        assert [d.nl for d in handed] == [NL, "Anders"]
    finally:
        buf.close()


def test_when_central_cannot_be_reached_the_last_message_stays(central, store):
    _, engine, state = central
    handed = []
    set_message(engine, VisitorMessage.build(nl=NL), location=None, now=time.time())
    assert make_fetcher(state, store, handed).fetch().status == "stored"
    offline = DeviceState(central_url="http://127.0.0.1:9", device_id=state.device_id,
                          token=state.token)
    fetcher = make_fetcher(offline, store, handed)
    outcome = fetcher.fetch()
    assert outcome.status == "failed" and "download failed" in fetcher.last_error
    assert store.load().document.nl == NL and len(handed) == 1


def test_a_revoked_or_unknown_token_keeps_the_last_message(central, store):
    _, engine, state = central
    handed = []
    set_message(engine, VisitorMessage.build(nl=NL), location=None, now=time.time())
    make_fetcher(state, store, handed).fetch()
    wrong = DeviceState(central_url=state.central_url, device_id=state.device_id, token="nope")
    outcome = make_fetcher(wrong, store, handed).fetch()
    assert outcome.status == "failed" and "401" in outcome.error
    assert store.load().document.nl == NL


def test_a_message_with_markup_from_a_misbehaving_central_is_not_shown(store, monkeypatch):
    handed = []
    fetcher = MessageFetcher(requests.Session(), SyncSettings(), DeviceState(
        central_url="http://127.0.0.1:9", device_id="dev-1", token="t"), store,
        on_change=handed.append)
    body = json.dumps({"nl": "Zie [b]hier[/b]"}).encode()
    monkeypatch.setattr(fetcher, "_get", lambda etag: (200, {"ETag": '"x"'}, body))
    outcome = fetcher.fetch()
    assert outcome.status == "failed" and "the nl text: character 5 is '['" in outcome.error
    assert handed == [] and not store.path.exists()


def test_a_damaged_kept_file_is_ignored(store):
    store.folder.mkdir(parents=True)
    store.path.write_text('{"format": 1, "document": {"nl": "a\\nb"}}', encoding="utf-8")
    assert store.load() is None
    store.path.write_text("not json", encoding="utf-8")
    assert store.load() is None
    assert (store.folder / FILE) == store.path
