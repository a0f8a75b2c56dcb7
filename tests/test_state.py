"""The device state file: enrolment, mode 0600 from creation, atomic replace, damage reported."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from kiosk.state import STATE_FILE, DeviceState, DeviceStateError, DeviceStateStore

TOKEN = "tok-3fA9_xQ7-secret"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_terminal_never_enrolled_has_no_state(tmp_path):
    assert DeviceStateStore(tmp_path).load() is None


def test_enroll_stores_url_device_id_and_token_in_a_0600_file(tmp_path):
    store = DeviceStateStore(tmp_path / "data")
    state = store.enroll("https://balie.example.nl/", "dev-1", TOKEN, now=123.0)
    assert state == DeviceState("https://balie.example.nl", "dev-1", TOKEN, 123.0)
    assert store.path == tmp_path / "data" / STATE_FILE
    assert mode(store.path) == 0o600
    assert store.load() == state


def test_the_file_is_0600_even_under_a_permissive_umask_and_over_a_leftover_temp_file(tmp_path):
    old = os.umask(0)
    try:
        store = DeviceStateStore(tmp_path)
        leftover = tmp_path / f".{STATE_FILE}.{os.getpid()}.tmp"
        leftover.write_text("old")
        os.chmod(leftover, 0o666)
        store.enroll("http://127.0.0.1:8000", "dev-1", TOKEN)
    finally:
        os.umask(old)
    assert mode(store.path) == 0o600
    assert not leftover.exists()


def test_enrolling_again_replaces_the_state_atomically(tmp_path):
    store = DeviceStateStore(tmp_path)
    store.enroll("https://a.example", "dev-1", TOKEN)
    store.enroll("https://b.example", "dev-2", TOKEN + "2")
    assert store.load().central_url == "https://b.example"
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]


@pytest.mark.parametrize("content, says", [
    ("{not json", "damaged"),
    ("[]", "not a JSON object"),
    (json.dumps({"format": 1, "central_url": "https://x.example", "device_id": "d"}), "token"),
    (json.dumps({"format": 9}), "unknown format"),
    (json.dumps({"format": 1, "central_url": "ftp://x", "device_id": "d", "token": TOKEN}),
     "https://"),
])
def test_a_damaged_state_file_is_a_clear_error_naming_the_file(tmp_path, content, says):
    store = DeviceStateStore(tmp_path)
    store.path.write_text(content)
    with pytest.raises(DeviceStateError) as caught:
        store.load()
    assert str(store.path) in str(caught.value) and says in str(caught.value)
    assert "enroll" in str(caught.value)


@pytest.mark.parametrize("url, device_id, token", [
    ("balie.example.nl", "dev-1", TOKEN),
    ("https://", "dev-1", TOKEN),
    ("https://x.example", "dev 1", TOKEN),
    ("https://x.example", "dev-1", "short"),
    ("https://x.example", "dev-1", "has space inside token"),
])
def test_invalid_enrolment_values_are_refused_and_nothing_is_written(tmp_path, url, device_id, token):
    store = DeviceStateStore(tmp_path)
    with pytest.raises(DeviceStateError) as caught:
        store.enroll(url, device_id, token)
    assert not store.path.exists()
    assert token not in str(caught.value) or token == TOKEN


def test_the_token_never_shows_in_repr_logs_or_errors(tmp_path, caplog):
    store = DeviceStateStore(tmp_path)
    with caplog.at_level(logging.DEBUG):
        state = store.enroll("https://x.example", "dev-1", TOKEN)
    assert TOKEN not in repr(state) and TOKEN not in caplog.text
    store.path.write_text(store.path.read_text().replace('"format": 1', '"format": 1,,'))
    with pytest.raises(DeviceStateError) as caught:
        store.load()
    assert TOKEN not in str(caught.value)


def test_an_unreadable_state_file_is_an_error_not_not_enrolled(tmp_path):
    store = DeviceStateStore(tmp_path)
    store.path.mkdir()  # unreadable as a file, for root too
    with pytest.raises(DeviceStateError, match="cannot read"):
        store.load()
