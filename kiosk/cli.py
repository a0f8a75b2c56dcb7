"""``balie-kiosk``: run the terminal, or report on its buffer.

Use::

    balie-kiosk run [--config FILE] [--data-dir DIR] [--windowed]
    balie-kiosk status [--config FILE] [--data-dir DIR] [--json]
    balie-kiosk enroll URL TOKEN --device-id ID [--data-dir DIR]   (or URL ID:TOKEN)
    balie-kiosk sync [--config FILE] [--data-dir DIR] [--deadline SECONDS]
    balie-kiosk set-pin [--pin-stdin] [--print-hash | --clear] [--data-dir DIR]

The config file comes from ``--config``, else ``BALIE_KIOSK_CONFIG``, else the
built-in defaults. Errors the user can fix are printed without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from kiosk import __version__, gc_pause
from kiosk.errors import BalieError
from kiosk.paths import data_dir as resolve_data_dir

BUFFER_FILE = "buffer.sqlite3"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="balie-kiosk", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--config", type=Path, help="kiosk.toml (default: $BALIE_KIOSK_CONFIG or built-in)")
        p.add_argument("--data-dir", type=Path, help="where the buffer lives (default: $BALIE_DATA_DIR or the platform's data folder)")

    run = sub.add_parser("run", help="start the terminal (kiosk mode unless --windowed)")
    common(run)
    run.add_argument("--windowed", action="store_true",
                     help="a normal window with a cursor, for the demo and development")
    status = sub.add_parser("status", help="show what the buffer holds")
    common(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    enroll = sub.add_parser(
        "enroll", help="store central's address and this terminal's device id and token",
        description="Store the central URL, device id and token that `balie-central device add` "
                    "printed (in <data dir>/device-state.json, mode 0600). Give the token as "
                    "TOKEN with --device-id ID, or as ID:TOKEN; '-' reads it from standard input "
                    "(keeps it out of the shell history).")
    common(enroll)
    enroll.add_argument("url", help="central's address, e.g. https://balie.example.nl")
    enroll.add_argument("token", help="the token, ID:TOKEN, or - to read it from standard input")
    enroll.add_argument("--device-id", help="the device id (not needed when TOKEN is ID:TOKEN)")
    sync = sub.add_parser("sync", help="send unsent answers to central now and say what happened")
    common(sync)
    sync.add_argument("--deadline", type=float, metavar="SECONDS",
                      help="stop the round after this many seconds (default: [sync] deadline_s)")
    backup = sub.add_parser(
        "backup", help="copy the buffer to the backup folder now (what the nightly job does)",
        description="Write a consistent copy of the buffer (VACUUM INTO) to [maintenance] "
                    "backup_dir (default: <data dir>/backups), keep the newest backup_keep "
                    "copies, and delete responses central has had for more than retention_days. "
                    "Safe while the terminal runs.")
    common(backup)
    backup.add_argument("--no-prune", action="store_true", help="only the copy, no pruning")
    set_pin = sub.add_parser(
        "set-pin", help="set the admin screen's PIN on this terminal (asked twice, not shown)",
        description="Ask for a new admin PIN twice without echo (4-8 digits, not trivial) and "
                    "store its Argon2 hash in <data dir>/admin-pin (mode 0600); this terminal's "
                    "PIN wins over [admin] pin_hash in kiosk.toml. Also clears the lockout "
                    "after wrong tries.")
    common(set_pin)
    set_pin.add_argument("--pin-stdin", action="store_true",
                         help="read the PIN from the first line of standard input (for scripts)")
    pin_mode = set_pin.add_mutually_exclusive_group()
    pin_mode.add_argument("--print-hash", action="store_true",
                          help="print the hash for [admin] pin_hash (a fleet PIN); store nothing")
    pin_mode.add_argument("--clear", action="store_true",
                          help="remove this terminal's PIN (kiosk.toml's pin_hash applies again)")
    return parser


def _settings(args):
    from kiosk.settings import load_settings

    path = args.config or os.environ.get("BALIE_KIOSK_CONFIG")
    return load_settings(Path(path) if path else None)


def _data_dir(args, settings) -> Path:
    if args.data_dir or os.environ.get("BALIE_DATA_DIR") or settings.data_dir is None:
        return resolve_data_dir(args.data_dir)
    return Path(settings.data_dir)


def cmd_run(args) -> int:
    """Open the buffer, configure Kivy and run the app until it is stopped.

    The cycle collector pauses until the first frame is drawn (:mod:`kiosk.gc_pause`).
    """
    gc_pause.pause()
    try:
        return _run(args)
    finally:
        gc_pause.resume()  # also when start-up fails or the app stops before its first frame


def _run(args) -> int:
    from kiosk.buffer import Buffer
    from kiosk.kivy_setup import configure, prepare_environment, quiet_known_noise

    settings = _settings(args)
    folder = _data_dir(args, settings)
    in_use = _questionnaire_in_use(settings, folder)
    questionnaire = in_use.questionnaire
    logging.getLogger("balie.kiosk").info("questionnaire %s version %d (from %s)",
                                          questionnaire.id, questionnaire.version, in_use.source)
    # Storage that refuses writes (read-only, full, I/O errors) opens the buffer for reading
    # only: the terminal starts out of order and says why on the admin screen, instead of
    # exiting into a restart loop that cannot mend it (kiosk/health.py, docs/INSTALL.md).
    buffer = Buffer.open(folder / BUFFER_FILE, read_only_fallback=True)
    if not buffer.writable:
        logging.getLogger("balie.kiosk").error(
            "the buffer cannot take writes; starting out of order (checked again every 30 s): %s",
            buffer.open_error)
    device_state = _device_state_or_none(folder)
    prepare_environment(folder / "kivy")
    quiet_known_noise()
    display = settings.display
    configure(windowed=args.windowed, width=display.width, height=display.height,
              touch_provider=display.touch_provider)
    gc_pause.keep_made()  # Kivy's full collection when it makes the window need not look at these
    from kivy.clock import Clock

    from kiosk.app import BalieApp

    app = BalieApp(settings=settings, questionnaire=questionnaire, buffer=buffer,
                   lockdown=not args.windowed, device_state=device_state)
    Clock.schedule_once(lambda _dt: _stop_on_signals(app), 0)  # once SDL's window exists
    app.run()
    return 0


def _stop_on_signals(app) -> None:
    """SIGTERM (``systemctl stop``) and SIGINT stop the app cleanly: sync stopped, buffer closed.

    SDL turns these signals into a window-close request, which kiosk mode
    refuses, so the terminal would ignore ``systemctl stop`` until SIGKILL.
    Python's own handlers, installed after SDL has set up its window, take the
    signals back; they run on the main thread between two bytecodes, and only
    ask the Kivy clock to stop the app.
    """
    import signal

    from kivy.clock import Clock

    def stop(signum, _frame):
        logging.getLogger("balie.kiosk").info("%s: stopping", signal.Signals(signum).name)
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)


def _questionnaire_in_use(settings, folder: Path):
    """The questionnaire to ask: a valid copy stored from central, else the config file's.

    The config file's is always loaded (a broken one is an error even when a
    copy from central would do); a damaged copy from central is logged and skipped.
    """
    from kiosk.questionnaire import load_questionnaire
    from kiosk.questionnaire_store import CentralCopy, choose_questionnaire

    return choose_questionnaire(load_questionnaire(settings.questionnaire_path),
                                CentralCopy(folder))


def _device_state_or_none(folder: Path):
    """The enrolment for ``run``: a damaged state file turns sync off, not the terminal."""
    from kiosk.state import DeviceStateError, DeviceStateStore

    try:
        return DeviceStateStore(folder).load()
    except DeviceStateError as error:
        logging.getLogger("balie.kiosk").error("sync is off: %s", error)
        return None


def split_token(token: str, device_id: str | None) -> tuple[str, str]:
    """``(device_id, token)`` from ``TOKEN`` + ``--device-id``, or from ``ID:TOKEN``.

    Tokens never contain ':' (central makes them URL-safe), so ``ID:TOKEN``
    splits at the last ':'.
    """
    from kiosk.state import DeviceStateError

    if device_id:
        return device_id, token
    if ":" not in token:
        raise DeviceStateError("no device id: give --device-id ID, or the token as ID:TOKEN "
                               "(both are printed by `balie-central device add`)")
    device_id, _, token = token.rpartition(":")
    return device_id, token


def cmd_enroll(args) -> int:
    """Store central's URL, the device id and the token (file mode 0600)."""
    from kiosk.state import DeviceStateStore

    settings = _settings(args)
    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    device_id, token = split_token(token, args.device_id)
    store = DeviceStateStore(_data_dir(args, settings))
    state = store.enroll(args.url, device_id, token)
    print(f"Enrolled as device {state.device_id} for {state.central_url}")
    print(f"State file:  {store.path} (mode 0600)")
    print("Test it with: balie-kiosk sync")
    return 0


def cmd_sync(args) -> int:
    """One sync round now; 0: done, 1: network or central refused, 2: configuration."""
    from kiosk.buffer import Buffer
    from kiosk.state import DeviceStateStore

    settings = _settings(args)
    folder = _data_dir(args, settings)
    state = DeviceStateStore(folder).load()
    if state is None:
        print(f"balie-kiosk: this terminal is not enrolled (no {DeviceStateStore(folder).path}); "
              "run `balie-kiosk enroll URL TOKEN --device-id ID` first", file=sys.stderr)
        return 2
    from kiosk.questionnaire_store import CentralCopy
    from sync.questionnaire_fetch import attach_fetcher
    from sync.uploader import Uploader

    in_use = _questionnaire_in_use(settings, folder)
    with Buffer.open(folder / BUFFER_FILE) as buffer:
        uploader = Uploader(settings, buffer, state)
        fetcher = attach_fetcher(uploader, CentralCopy(folder),
                                 in_use=lambda: in_use.questionnaire)
        report = uploader.run_once(args.deadline)
    print(f"Central:       {state.central_url} (device {state.device_id})")
    print(f"Accepted:      {report.accepted}")
    print(f"Duplicate:     {report.duplicate}")
    print(f"Rejected:      {report.rejected} (kept in quarantine)")
    if report.quarantined_locally:
        print(f"Unsendable:    {report.quarantined_locally} (kept in quarantine)")
    if report.missing:
        print(f"Unanswered:    {report.missing} (stay unsent, sent again next round)")
    print(f"Batches:       {report.batches}")
    print(f"Still to send: {report.backlog if report.backlog is not None else 'unknown'}")
    print(f"Heartbeat:     {'sent' if report.heartbeat_sent else 'not sent'}")
    print(f"Questionnaire: {fetcher.describe_last()}")
    print(f"Stopped:       {report.stopped_reason}")
    print(f"Last error:    {report.last_error or 'none'}")
    if report.ok or (report.stopped_reason == "deadline" and report.last_error is None):
        return 0
    return 1


def status_report(settings, questionnaire, stats, note: str | None = None,
                  questionnaire_source: str = "config") -> dict:
    """The status as a plain dict (the ``--json`` output).

    ``questionnaire_source``: ``config`` (the config file's) or ``central`` (a copy fetched from central).
    """
    last = stats.last_response_at
    return {
        "responses": {
            "total": stats.responses_total,
            "unsent": stats.responses_unsent,
            "sent": stats.responses_sent,
            "quarantined": stats.responses_quarantined,
            "open": stats.responses_open,
        },
        "answers": {"total": stats.answers_total},
        "last_response_at": (datetime.fromtimestamp(last, timezone.utc).isoformat(timespec="seconds")
                             if last is not None else None),
        "questionnaire": {"id": questionnaire.id, "version": questionnaire.version,
                          "source": questionnaire_source},
        "location": {"id": settings.location.id, "name": settings.location.name},
        "buffer": {"path": str(stats.path)},
        "note": note,
    }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def opening_status(opening, now: datetime) -> dict:
    """``[opening_hours]`` at ``now``: open or closed, and the next change (town hall time)."""
    from kiosk.opening_hours import OpeningHours

    hours = OpeningHours.from_settings(opening)
    if hours is None:
        return {"configured": False, "open_now": None, "next_change": None, "timezone": None}
    change = hours.next_change(now)
    return {"configured": True, "open_now": hours.is_open(now),
            "next_change": change.isoformat(timespec="minutes") if change else None,
            "timezone": opening.timezone}


def _opening_line(status: dict) -> str:
    if not status["configured"]:
        return "not set (always open)"
    state = "open now" if status["open_now"] else "closed now"
    if status["next_change"] is None:
        return f"{state}, no change ahead ({status['timezone']})"
    change = datetime.fromisoformat(status["next_change"])
    verb = "closes" if status["open_now"] else "opens"
    return f"{state}; {verb} {change:%a %Y-%m-%d %H:%M} ({status['timezone']})"


def _no_buffer_stats(path: Path):
    """Zero counts for a data folder where the terminal has not stored anything yet."""
    from kiosk.buffer import BufferStats

    return BufferStats(responses_total=0, responses_unsent=0, responses_sent=0,
                       responses_quarantined=0, responses_open=0, answers_total=0,
                       last_response_at=None, path=path)


def cmd_status(args) -> int:
    """Print counts from the buffer without disturbing a running terminal."""
    from kiosk.buffer import Buffer

    settings = _settings(args)
    folder = _data_dir(args, settings)
    in_use = _questionnaire_in_use(settings, folder)  # reads only: status creates nothing
    path = (folder / BUFFER_FILE).expanduser().absolute()
    note = None
    if path.exists():
        stats = Buffer.inspect(path)
    else:  # nothing stored yet is a normal state, not an error; and status creates nothing
        stats = _no_buffer_stats(path)
        note = ("no buffer yet: the terminal has not run with this data folder "
                "(check --data-dir or BALIE_DATA_DIR if you expected one)")
    report = status_report(settings, in_use.questionnaire, stats, note, in_use.source)
    report["opening_hours"] = opening_status(settings.opening_hours, _now())
    report["admin"] = admin_pin_status(settings, folder)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    r = report["responses"]
    print(f"Buffer:        {report['buffer']['path']}")
    print(f"Location:      {report['location']['name']} ({report['location']['id']})")
    q = report["questionnaire"]
    print(f"Questionnaire: {q['id']} version {q['version']} (from {q['source']})")
    print(f"Responses:     {r['total']} total, {r['unsent']} unsent, {r['sent']} sent, "
          f"{r['quarantined']} quarantined, {r['open']} in progress")
    print(f"Answers:       {report['answers']['total']}")
    print(f"Last response: {report['last_response_at'] or 'none yet'}")
    print(f"Opening hours: {_opening_line(report['opening_hours'])}")
    admin = report["admin"]
    locked = f"; PIN pad locked for {admin['locked_s']} s" if admin["locked_s"] else ""
    print(f"Admin PIN:     {admin['detail']}{locked}")
    if note:
        print(f"Note:          {note}")
    return 0


def cmd_backup(args) -> int:
    """One upkeep run now: a backup copy, old copies dropped, long-sent responses pruned."""
    from kiosk.buffer import Buffer
    from kiosk.upkeep import Upkeep, UpkeepReport

    settings = _settings(args)
    with Buffer.open(_data_dir(args, settings) / BUFFER_FILE) as buffer:
        upkeep = Upkeep(buffer, settings.maintenance)
        report = upkeep.backup(UpkeepReport())
        if not args.no_prune:
            upkeep.prune(report)
    if report.backup:
        print(f"backup: {report.backup}")
    for old in report.removed:
        print(f"removed old copy: {old}")
    if not args.no_prune:
        print(f"pruned: {report.pruned} response(s) sent more than "
              f"{settings.maintenance.retention_days} days ago")
    for error in report.errors:
        print(f"balie-kiosk: {error}", file=sys.stderr)
    return 0 if report.ok else 1


def admin_pin_status(settings, folder: Path) -> dict:
    """Is an admin PIN set (``pin``: terminal / config / none / error), and is the pad locked?"""
    from kiosk.pin import PinStore, describe_pin
    from kiosk.pin_lockout import PinLockout

    state, detail = describe_pin(settings.admin, PinStore(folder))
    lockout = PinLockout(folder)  # reads only
    return {"pin": state, "detail": detail, "wrong_tries": lockout.failures(),
            "locked_s": math.ceil(lockout.remaining())}


def _read_new_pin(from_stdin: bool) -> str:
    """The new PIN: the first line of stdin, or asked twice on the terminal without echo."""
    import getpass

    from kiosk.pin import PinRefused, check_pin_rules

    if from_stdin:
        return check_pin_rules(sys.stdin.readline().strip())
    if not sys.stdin.isatty():
        raise BalieError("no terminal to ask the PIN on: give it on standard input with --pin-stdin")
    for _ in range(3):
        first = getpass.getpass("New admin PIN (4-8 digits): ")
        try:
            check_pin_rules(first)
        except PinRefused as err:
            print(f"balie-kiosk: {err}; try again", file=sys.stderr)
            continue
        if getpass.getpass("The same PIN again: ") == first:
            return first
        print("balie-kiosk: the two PINs differ; try again", file=sys.stderr)
    raise PinRefused("no PIN set after three tries")


def cmd_set_pin(args) -> int:
    """Store the hash of a new admin PIN in the data folder (mode 0600), or print it, or clear it."""
    from kiosk.pin import PinStore, hash_pin
    from kiosk.pin_lockout import PinLockout

    settings = _settings(args)
    folder = _data_dir(args, settings)
    store = PinStore(folder)
    if args.clear:
        removed = store.clear()
        PinLockout(folder).reset()
        fleet = "kiosk.toml's [admin] pin_hash applies" if settings.admin.pin_hash else \
            "no PIN is set now: the admin screen cannot be opened"
        print(f"{'Removed' if removed else 'There was no'} admin PIN in {store.path}; {fleet}")
        return 0
    encoded = hash_pin(_read_new_pin(args.pin_stdin))
    if args.print_hash:
        print(encoded)
        return 0
    store.save(encoded)
    PinLockout(folder).reset()
    print(f"Admin PIN set: {store.path} (mode 0600; it wins over kiosk.toml's pin_hash)")
    print("Staff open the admin screen with five quick taps in the top-left corner of the "
          "welcome screen, then the PIN.")
    return 0


COMMANDS = {"run": cmd_run, "status": cmd_status, "enroll": cmd_enroll, "sync": cmd_sync,
            "backup": cmd_backup, "set-pin": cmd_set_pin}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``balie-kiosk`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except BalieError as error:
        print(f"balie-kiosk: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
