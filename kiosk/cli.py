"""``balie-kiosk``: run the terminal, or report on its buffer.

Use::

    balie-kiosk run [--config FILE] [--data-dir DIR] [--windowed]
    balie-kiosk status [--config FILE] [--data-dir DIR] [--json]
    balie-kiosk enroll URL TOKEN --device-id ID [--data-dir DIR]   (or URL ID:TOKEN)
    balie-kiosk sync [--config FILE] [--data-dir DIR] [--deadline SECONDS]

The config file comes from ``--config``, else ``BALIE_KIOSK_CONFIG``, else the
built-in defaults. Errors the user can fix are printed without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from kiosk import __version__
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
    """Open the buffer, configure Kivy and run the app until it is stopped."""
    from kiosk.buffer import Buffer
    from kiosk.kivy_setup import configure, prepare_environment, quiet_known_noise
    from kiosk.questionnaire import load_questionnaire

    settings = _settings(args)
    questionnaire = load_questionnaire(settings.questionnaire_path)
    folder = _data_dir(args, settings)
    buffer = Buffer.open(folder / BUFFER_FILE)
    device_state = _device_state_or_none(folder)
    prepare_environment(folder / "kivy")
    quiet_known_noise()
    display = settings.display
    configure(windowed=args.windowed, width=display.width, height=display.height,
              touch_provider=display.touch_provider)
    from kiosk.app import BalieApp

    BalieApp(settings=settings, questionnaire=questionnaire, buffer=buffer,
             lockdown=not args.windowed, device_state=device_state).run()
    return 0


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
    from sync.uploader import Uploader

    with Buffer.open(folder / BUFFER_FILE) as buffer:
        report = Uploader(settings, buffer, state).run_once(args.deadline)
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
    print(f"Stopped:       {report.stopped_reason}")
    print(f"Last error:    {report.last_error or 'none'}")
    if report.ok or (report.stopped_reason == "deadline" and report.last_error is None):
        return 0
    return 1


def status_report(settings, questionnaire, stats, note: str | None = None) -> dict:
    """The status as a plain dict (the ``--json`` output)."""
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
        "questionnaire": {"id": questionnaire.id, "version": questionnaire.version},
        "location": {"id": settings.location.id, "name": settings.location.name},
        "buffer": {"path": str(stats.path)},
        "note": note,
    }


def _no_buffer_stats(path: Path):
    """Zero counts for a data folder where the terminal has not stored anything yet."""
    from kiosk.buffer import BufferStats

    return BufferStats(responses_total=0, responses_unsent=0, responses_sent=0,
                       responses_quarantined=0, responses_open=0, answers_total=0,
                       last_response_at=None, path=path)


def cmd_status(args) -> int:
    """Print counts from the buffer without disturbing a running terminal."""
    from kiosk.buffer import Buffer
    from kiosk.questionnaire import load_questionnaire

    settings = _settings(args)
    questionnaire = load_questionnaire(settings.questionnaire_path)
    path = (_data_dir(args, settings) / BUFFER_FILE).expanduser().absolute()
    note = None
    if path.exists():
        stats = Buffer.inspect(path)
    else:  # nothing stored yet is a normal state, not an error; and status creates nothing
        stats = _no_buffer_stats(path)
        note = ("no buffer yet: the terminal has not run with this data folder "
                "(check --data-dir or BALIE_DATA_DIR if you expected one)")
    report = status_report(settings, questionnaire, stats, note)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    r = report["responses"]
    print(f"Buffer:        {report['buffer']['path']}")
    print(f"Location:      {report['location']['name']} ({report['location']['id']})")
    print(f"Questionnaire: {report['questionnaire']['id']} version {report['questionnaire']['version']}")
    print(f"Responses:     {r['total']} total, {r['unsent']} unsent, {r['sent']} sent, "
          f"{r['quarantined']} quarantined, {r['open']} in progress")
    print(f"Answers:       {report['answers']['total']}")
    print(f"Last response: {report['last_response_at'] or 'none yet'}")
    if note:
        print(f"Note:          {note}")
    return 0


COMMANDS = {"run": cmd_run, "status": cmd_status, "enroll": cmd_enroll, "sync": cmd_sync}


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
