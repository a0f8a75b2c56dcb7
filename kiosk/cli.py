"""``balie-kiosk``: run the terminal, or report on its buffer.

Use::

    balie-kiosk run [--config FILE] [--data-dir DIR] [--windowed]
    balie-kiosk status [--config FILE] [--data-dir DIR] [--json]

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
    prepare_environment(folder / "kivy")
    quiet_known_noise()
    display = settings.display
    configure(windowed=args.windowed, width=display.width, height=display.height,
              touch_provider=display.touch_provider)
    from kiosk.app import BalieApp

    BalieApp(settings=settings, questionnaire=questionnaire, buffer=buffer,
             lockdown=not args.windowed).run()
    return 0


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


COMMANDS = {"run": cmd_run, "status": cmd_status}


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
