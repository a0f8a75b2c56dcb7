"""``balie-central``: serve the API, migrate the database, manage devices, export for the study.

Use::

    balie-central [--config FILE] db upgrade
    balie-central [--config FILE] serve [--host H] [--port P]
    balie-central [--config FILE] device add --name N --location L
    balie-central [--config FILE] device list [--json]
    balie-central [--config FILE] device revoke ID
    balie-central [--config FILE] export --format csv --out FILE [--from DATE] [--to DATE] [--exact-time]

The config file comes from ``--config`` (before or after the command), else
``BALIE_CENTRAL_CONFIG``, else the built-in defaults; ``BALIE_DATABASE_URL``
overrides its database. Errors the user can fix are printed without a
traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from kiosk import __version__
from central.errors import CentralError, ConfigError

EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help="central.toml (default: $BALIE_CENTRAL_CONFIG or built-in defaults)")
    parser = argparse.ArgumentParser(prog="balie-central", description=__doc__.splitlines()[0],
                                     parents=[config])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[config], help="run the HTTP API")
    serve.add_argument("--host", help="address to listen on (default: [server] host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: [server] port, 8470)")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", parents=[config], help="create or migrate the schema to this release")

    device = sub.add_parser("device", help="enrol, list and revoke terminals")
    dev_sub = device.add_subparsers(dest="device_command", required=True)
    add = dev_sub.add_parser("add", parents=[config], help="enrol a terminal; prints its token once")
    add.add_argument("--name", required=True, help="a name for people, e.g. 'Balie 3 stadhuis'")
    add.add_argument("--location", required=True, help="where it stands, e.g. 'stadhuis'")
    listing = dev_sub.add_parser("list", parents=[config], help="devices and their state")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    revoke = dev_sub.add_parser("revoke", parents=[config], help="refuse a device's token from now on")
    revoke.add_argument("device_id", metavar="ID")

    export = sub.add_parser("export", parents=[config], help="one CSV row per answer, for the study")
    export.add_argument("--format", choices=["csv"], default="csv", help="file format (csv)")
    export.add_argument("--out", required=True, help="file to write ('-' for standard output)")
    export.add_argument("--from", dest="start", type=_date_arg, metavar="DATE",
                        help="first day (YYYY-MM-DD, UTC) or moment (ISO 8601) to include")
    export.add_argument("--to", dest="end", type=_date_arg, metavar="DATE",
                        help="last day to include (YYYY-MM-DD, whole day, UTC) or moment (exclusive)")
    export.add_argument("--exact-time", action="store_true",
                        help="do not round times down (default: [export] round_time_to, hour)")
    return parser


def _date_arg(text: str) -> tuple[datetime, bool]:
    """``(moment in UTC, is_whole_day)`` from ``YYYY-MM-DD`` or an ISO 8601 date-time."""
    try:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc), True
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or ISO 8601 "
                                         "date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment, False


def _settings(args):
    from central.settings import load_settings, settings_path

    return load_settings(settings_path(getattr(args, "config", None)))


def _engine(settings):
    from central.db import make_engine

    return make_engine(settings.database_url)


def cmd_serve(args) -> int:
    """Check the database is migrated, then run uvicorn on the app until stopped."""
    import uvicorn

    from central.app import create_app

    settings = _settings(args)
    app = create_app(settings)  # raises DatabaseNotMigrated before anything listens
    uvicorn.run(app, host=args.host or settings.server.host, port=args.port or settings.server.port,
                proxy_headers=False, server_header=False, log_level="info")
    return 0


def cmd_db_upgrade(args) -> int:
    from central.db import describe_url, upgrade

    engine = _engine(_settings(args))
    try:
        before, after = upgrade(engine)
        where = describe_url(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"{where}: schema already at revision {after}")
    else:
        print(f"{where}: schema upgraded from {before or 'empty'} to revision {after}")
    return 0


def _migrated_engine(args):
    from central.db import check_migrated

    engine = _engine(_settings(args))
    try:
        check_migrated(engine)
    except Exception:
        engine.dispose()
        raise
    return engine


def cmd_device_add(args) -> int:
    from central.devices import enrol

    name, location = args.name.strip(), args.location.strip()
    if not name or not location:
        raise CentralError("--name and --location must not be empty")
    engine = _migrated_engine(args)
    try:
        device_id, token = enrol(engine, name=name, location=location, now=time.time())
    finally:
        engine.dispose()
    print(f"device id: {device_id}")
    print(f"token:     {token}")
    print("The token is shown only this once (central keeps only its hash); on the terminal: "
          "balie-kiosk enroll <central URL> <token>", file=sys.stderr)
    return 0


def cmd_device_list(args) -> int:
    from central.devices import device_statuses

    engine = _migrated_engine(args)
    try:
        statuses = list(device_statuses(engine))
    finally:
        engine.dispose()
    if args.json:
        json.dump([s.as_dict() for s in statuses], sys.stdout, indent=2)
        print()
        return 0
    if not statuses:
        print("no devices enrolled (balie-central device add --name N --location L)")
        return 0
    header = ("ID", "NAME", "LOCATION", "LAST SEEN (UTC)", "VERSION", "BACKLOG", "QUARANTINE",
              "SEQ GAPS", "CLOCK", "STATE")
    rows = [header] + [(
        s.id, s.name, s.location, _when(s.last_seen_at), s.app_version or "-",
        _num(s.backlog), _num(s.quarantined), str(s.sequence_gaps),
        s.clock + ("" if s.clock_skew_s is None else f" ({s.clock_skew_s:+.1f}s)"),
        "revoked" if s.revoked else "active",
    ) for s in statuses]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def cmd_device_revoke(args) -> int:
    from central.devices import revoke

    engine = _migrated_engine(args)
    try:
        changed = revoke(engine, args.device_id, now=time.time())
    finally:
        engine.dispose()
    print(f"{args.device_id}: revoked" if changed else f"{args.device_id}: was already revoked")
    return 0


def cmd_export(args) -> int:
    from central.export import export_csv

    settings = _settings(args)
    start = args.start[0].timestamp() if args.start else None
    end = None
    if args.end:
        moment, whole_day = args.end
        end = (moment + timedelta(days=1) if whole_day else moment).timestamp()
    round_to = "none" if args.exact_time else settings.export.round_time_to
    engine = _migrated_engine(args)
    try:
        if args.out == "-":
            count = export_csv(engine, sys.stdout, start=start, end=end, round_to=round_to)
        else:
            out = Path(args.out)
            partial = out.with_name(out.name + ".partial")
            try:
                with open(partial, "w", newline="", encoding="utf-8") as fh:
                    count = export_csv(engine, fh, start=start, end=end, round_to=round_to)
                partial.replace(out)
            except OSError as err:
                partial.unlink(missing_ok=True)
                raise CentralError(f"cannot write {out}: {err.strerror or err}") from None
            print(f"wrote {count} answer row(s) to {out}", file=sys.stderr)
    finally:
        engine.dispose()
    return 0


COMMANDS = {
    ("serve",): cmd_serve,
    ("db", "upgrade"): cmd_db_upgrade,
    ("device", "add"): cmd_device_add,
    ("device", "list"): cmd_device_list,
    ("device", "revoke"): cmd_device_revoke,
    ("export",): cmd_export,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``balie-central``; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    key = tuple(k for k in (args.command, getattr(args, "db_command", None),
                            getattr(args, "device_command", None)) if k)
    try:
        return COMMANDS[key](args)
    except ConfigError as err:
        print(f"balie-central: {err}", file=sys.stderr)
    except CentralError as err:
        print(f"balie-central: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
