"""The admin PIN: rules, the slow hash, where it is kept, ``balie-kiosk set-pin``, and the lockout."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk import cli
from kiosk.clock import FakeTimeSource
from kiosk.errors import ConfigError
from kiosk.pin import (ARGON2_PARAMETERS, PinFileError, PinRefused, PinStore, check_pin_rules,
                       find_pin, hash_pin, is_encoded_hash, verify_pin)
from kiosk.pin_lockout import (FIRST_DELAY_S, FREE_TRIES, MAX_DELAY_S, PadLocked, PinLockout,
                               delay_after)
from kiosk.settings import AdminSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
CHEAP = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("BALIE_DATA_DIR", "BALIE_KIOSK_CONFIG", "BALIE_RESOURCE_DIR"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- rules and hash


@pytest.mark.parametrize("pin", ["4821", "90210", "1357", "739204", "20481957", "0109"])
def test_pins_of_4_to_8_digits_that_are_not_trivial_are_accepted(pin):
    assert check_pin_rules(pin) == pin


@pytest.mark.parametrize("pin, why", [
    ("", "digits only"), ("12a4", "digits only"), ("12 34", "digits only"), ("١٢٣٤٥", "digits only"),
    ("482", "4 to 8 digits"), ("482193751", "4 to 8 digits"),
    ("0000", "one digit repeated"), ("77777777", "one digit repeated"),
    ("1234", "straight run"), ("4321", "straight run"), ("0123", "straight run"),
    ("56789", "straight run"), ("98765432", "straight run"),
    ("1212", "repeat a pattern"), ("123123", "repeat a pattern"), ("48214821", "repeat a pattern"),
])
def test_trivial_or_malformed_pins_are_refused_with_the_reason(pin, why):
    with pytest.raises(PinRefused, match=why):
        check_pin_rules(pin)


def test_the_hash_is_argon2id_with_the_chosen_parameters_and_a_fresh_salt():
    first, second = hash_pin("4821"), hash_pin("4821")
    assert first.startswith("$argon2id$v=19$m=32768,t=3,p=2$")
    assert first != second  # salted
    assert is_encoded_hash(first)
    assert ARGON2_PARAMETERS["memory_cost"] == 32 * 1024
    assert verify_pin(first, "4821") and verify_pin(second, "4821")


def test_verify_accepts_the_right_pin_only():
    encoded = hash_pin("4821", **CHEAP)
    assert verify_pin(encoded, "4821") is True
    for wrong in ("4822", "482", "48210", "", "4821 ", "abcd"):
        assert verify_pin(encoded, wrong) is False


def test_a_hash_made_with_other_parameters_still_verifies():
    older = hash_pin("739204", time_cost=2, memory_cost=8192, parallelism=1)
    assert verify_pin(older, "739204")


def test_hash_pin_checks_the_rules_first():
    with pytest.raises(PinRefused):
        hash_pin("1111")


def test_a_malformed_hash_is_a_clear_error_not_a_wrong_pin():
    with pytest.raises(PinFileError, match="not an Argon2 hash"):
        verify_pin("$2b$12$notargon", "4821")


def test_verifying_a_wrong_pin_takes_as_long_as_a_right_one():
    """No timing oracle: the full Argon2 run happens either way (medians of 7, real parameters)."""
    encoded = hash_pin("4821")

    def median(pin):
        times = []
        for _ in range(7):
            start = time.perf_counter()
            verify_pin(encoded, pin)
            times.append(time.perf_counter() - start)
        return sorted(times)[3]

    right, near, far = median("4821"), median("4820"), median("9")
    assert right > 0.02, "the hash must be slow"
    for other in (near, far):
        assert abs(other - right) / right < 0.35, (right, near, far)


# --------------------------------------------------------------------------- where it is kept


def test_the_store_writes_mode_0600_atomically_and_reads_it_back(tmp_path):
    store = PinStore(tmp_path / "data")
    assert store.load() is None
    encoded = hash_pin("4821", **CHEAP)
    store.save(encoded)
    assert store.load() == encoded
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["admin-pin"]  # no temporary left


def test_a_leftover_wide_file_becomes_0600_on_the_next_save(tmp_path):
    store = PinStore(tmp_path)
    store.path.write_text("x")
    os.chmod(store.path, 0o644)
    store.save(hash_pin("4821", **CHEAP))
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_a_damaged_pin_file_is_an_error_naming_the_file(tmp_path):
    store = PinStore(tmp_path)
    store.path.write_text("4821\n")  # someone wrote the PIN itself
    with pytest.raises(PinFileError, match="admin-pin holds no Argon2 hash"):
        store.load()


def test_the_terminals_own_pin_wins_over_the_fleet_hash_from_the_config(tmp_path):
    fleet = hash_pin("739204", **CHEAP)
    own = hash_pin("4821", **CHEAP)
    store = PinStore(tmp_path)
    assert find_pin(AdminSettings(), store) is None
    assert find_pin(AdminSettings(pin_hash=fleet), store).origin == "config"
    store.save(own)
    source = find_pin(AdminSettings(pin_hash=fleet), store)
    assert (source.origin, source.encoded) == ("terminal", own)
    assert fleet not in repr(source) and own not in repr(source)
    assert store.clear() is True
    assert find_pin(AdminSettings(pin_hash=fleet), store).origin == "config"


def test_a_damaged_own_file_does_not_fall_back_to_the_fleet_pin(tmp_path):
    store = PinStore(tmp_path)
    store.path.write_text("garbage")
    with pytest.raises(PinFileError):
        find_pin(AdminSettings(pin_hash=hash_pin("739204", **CHEAP)), store)


def test_the_config_refuses_a_pin_instead_of_a_hash(tmp_path):
    config = tmp_path / "kiosk.toml"
    questionnaire = f'questionnaire = "{ROOT / "config" / "questionnaires" / "standaard.toml"}"\n'
    config.write_text(questionnaire + '[admin]\npin_hash = "4821"\n')
    with pytest.raises(ConfigError, match=r"admin.pin_hash.*Argon2 hash") as refused:
        load_settings(config)
    assert "'4821'" not in str(refused.value) and '"4821"' not in str(refused.value)  # not echoed
    config.write_text(questionnaire + f'[admin]\npin_hash = "{hash_pin("4821", **CHEAP)}"\n'
                      'timeout_s = 60\n')
    settings = load_settings(config)
    assert settings.admin.timeout_s == 60 and settings.admin.pin_pad_timeout_s == 30


# --------------------------------------------------------------------------- balie-kiosk set-pin


def run_cli(*args, stdin: str = ""):
    return subprocess.run([sys.executable, "-m", "kiosk", *args], input=stdin, cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("BALIE_")})


def test_set_pin_from_stdin_stores_a_0600_hash_that_verifies(tmp_path):
    done = run_cli("set-pin", "--pin-stdin", "--data-dir", str(tmp_path), stdin="4821\n")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "admin-pin"
    assert f"Admin PIN set: {path} (mode 0600" in done.stdout
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    encoded = path.read_text().strip()
    assert encoded.startswith("$argon2id$") and "4821" not in encoded
    assert verify_pin(encoded, "4821")
    assert "4821" not in done.stdout + done.stderr


def test_set_pin_refuses_a_trivial_pin_with_exit_2_and_stores_nothing(tmp_path):
    done = run_cli("set-pin", "--pin-stdin", "--data-dir", str(tmp_path), stdin="1234\n")
    assert done.returncode == 2
    assert "straight run" in done.stderr
    assert not (tmp_path / "admin-pin").exists()


def test_set_pin_without_a_terminal_asks_for_pin_stdin(tmp_path):
    done = run_cli("set-pin", "--data-dir", str(tmp_path), stdin="4821\n4821\n")
    assert done.returncode == 2
    assert "--pin-stdin" in done.stderr


def test_set_pin_asks_twice_without_echo_and_retries_on_a_mismatch(tmp_path, monkeypatch, capsys):
    answers = iter(["4821", "4812", "1111", "739204", "739204"])
    prompts = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or next(answers))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert cli.main(["set-pin", "--data-dir", str(tmp_path)]) == 0
    assert verify_pin((tmp_path / "admin-pin").read_text().strip(), "739204")
    err = capsys.readouterr().err
    assert "the two PINs differ" in err and "one digit repeated" in err
    assert prompts[0].startswith("New admin PIN")


def test_set_pin_print_hash_prints_a_fleet_hash_and_stores_nothing(tmp_path):
    done = run_cli("set-pin", "--pin-stdin", "--print-hash", "--data-dir", str(tmp_path),
                   stdin="739204\n")
    assert done.returncode == 0, done.stderr
    encoded = done.stdout.strip()
    assert is_encoded_hash(encoded) and verify_pin(encoded, "739204")
    assert not (tmp_path / "admin-pin").exists()
    AdminSettings(pin_hash=encoded)  # valid for kiosk.toml


def test_set_pin_resets_the_lockout_and_clear_removes_the_pin(tmp_path):
    lockout = PinLockout(tmp_path, FakeTimeSource())
    for _ in range(FREE_TRIES):
        lockout.begin_attempt()
    assert lockout.remaining() > 0
    assert run_cli("set-pin", "--pin-stdin", "--data-dir", str(tmp_path), stdin="4821\n").returncode == 0
    assert lockout.remaining() == 0 and lockout.failures() == 0
    done = run_cli("set-pin", "--clear", "--data-dir", str(tmp_path))
    assert done.returncode == 0
    assert "Removed" in done.stdout and "cannot be opened" in done.stdout
    assert not (tmp_path / "admin-pin").exists()


def test_status_says_whether_a_pin_is_set_and_whether_the_pad_is_locked(tmp_path, capsys):
    assert cli.main(["status", "--data-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["admin"]["pin"] == "none"
    assert "cannot be opened" in report["admin"]["detail"]
    assert cli.main(["status", "--data-dir", str(tmp_path)]) == 0
    assert "Admin PIN:     not set: the admin screen cannot be opened" in capsys.readouterr().out

    PinStore(tmp_path).save(hash_pin("4821", **CHEAP))
    lockout = PinLockout(tmp_path)  # the real boot clock, as status uses
    for _ in range(FREE_TRIES):
        lockout.begin_attempt()
    assert cli.main(["status", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"Admin PIN:     set on this terminal ({tmp_path / 'admin-pin'}); PIN pad locked for" in out
    assert not (tmp_path / "buffer.sqlite3").exists()  # status creates nothing


# --------------------------------------------------------------------------- lockout


def test_the_delay_grows_30_60_120_and_stops_at_15_minutes():
    assert [delay_after(n) for n in range(1, 11)] == [
        0, 0, 30, 60, 120, 240, 480, 900, 900, 900]
    assert FIRST_DELAY_S == 30 and MAX_DELAY_S == 900 and FREE_TRIES == 3
    assert delay_after(10_000) == MAX_DELAY_S


def test_three_free_tries_then_the_pad_locks_and_the_lock_grows(tmp_path):
    clock = FakeTimeSource(mono=500.0)
    lockout = PinLockout(tmp_path, clock)
    assert [lockout.begin_attempt().tries_left for _ in range(2)] == [2, 1]
    third = lockout.begin_attempt()
    assert (third.failures, third.delay, third.tries_left) == (3, 30, 0)
    with pytest.raises(PadLocked) as locked:
        lockout.begin_attempt()
    assert locked.value.seconds == 30
    clock.advance(29.5)
    assert lockout.remaining() == pytest.approx(0.5)
    clock.advance(0.5)
    assert lockout.begin_attempt().delay == 60
    clock.advance(60)
    assert lockout.begin_attempt().delay == 120
    assert lockout.failures() == 5


def test_a_try_is_counted_before_the_check_and_only_a_right_pin_takes_it_back(tmp_path):
    clock = FakeTimeSource()
    lockout = PinLockout(tmp_path, clock)
    lockout.begin_attempt()
    # the power fails during the check: the try stays counted
    assert PinLockout(tmp_path, clock).failures() == 1
    lockout.succeeded()
    assert PinLockout(tmp_path, clock).failures() == 0


def test_the_lock_is_kept_on_disk_across_a_restart_in_the_same_boot(tmp_path):
    clock = FakeTimeSource(mono=1000.0)
    first = PinLockout(tmp_path, clock)
    for _ in range(FREE_TRIES):
        first.begin_attempt()
    path = tmp_path / "admin-pin-lockout.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    clock.advance(12)
    again = PinLockout(tmp_path, clock)  # a new process, the same boot
    assert again.remaining() == pytest.approx(18)
    assert again.failures() == 3


def test_the_wall_clock_jumping_changes_nothing(tmp_path):
    clock = FakeTimeSource(wall=1_700_000_000.0, mono=1000.0)
    lockout = PinLockout(tmp_path, clock)
    for _ in range(FREE_TRIES):
        lockout.begin_attempt()
    clock.wall += 365 * 86400  # NTP, or someone setting the date
    assert lockout.remaining() == pytest.approx(30)
    clock.wall = 0.0
    assert lockout.remaining() == pytest.approx(30)


def test_after_a_reboot_the_lock_runs_again_in_full_from_boot(tmp_path):
    clock = FakeTimeSource(mono=5000.0)
    lockout = PinLockout(tmp_path, clock)
    for _ in range(FREE_TRIES + 2):  # the fifth wrong try: 120 s
        clock.advance(900)
        lockout.begin_attempt()
    clock.reboot(mono=40.0)  # 40 s after the new boot: the old lock's end cannot be measured
    assert PinLockout(tmp_path, clock).remaining() == pytest.approx(80)
    clock.advance(80)
    assert PinLockout(tmp_path, clock).remaining() == 0
    assert PinLockout(tmp_path, clock).failures() == 5  # the count survives; the next try locks 240 s
    assert PinLockout(tmp_path, clock).begin_attempt().delay == 240


def test_a_reboot_long_after_an_expired_lock_does_not_lock_again(tmp_path):
    clock = FakeTimeSource(mono=100.0)
    lockout = PinLockout(tmp_path, clock)
    for _ in range(FREE_TRIES):
        lockout.begin_attempt()
    clock.reboot(mono=3600.0)  # the terminal started an hour after boot
    assert PinLockout(tmp_path, clock).remaining() == 0


def test_a_damaged_lockout_file_counts_as_the_free_tries_used(tmp_path, caplog):
    clock = FakeTimeSource()
    (tmp_path / "admin-pin-lockout.json").write_text("{not json")
    lockout = PinLockout(tmp_path, clock)
    assert lockout.remaining() == 0
    assert lockout.begin_attempt().delay == 60  # the next wrong try locks at once
    assert "damaged" in caplog.text


def test_when_the_lockout_file_cannot_be_written_the_count_is_kept_in_memory(tmp_path, caplog):
    (tmp_path / "admin-pin-lockout.json").mkdir()  # neither readable nor replaceable as a file
    lockout = PinLockout(tmp_path, FakeTimeSource())
    assert lockout.begin_attempt().delay == 60  # unreadable: the free tries count as used
    assert lockout.remaining() == 60
    assert lockout.failures() == 4
    assert "cannot read it" in caplog.text and "keeping the count in memory" in caplog.text
