"""``balie-central``: serve the API, migrate the database, manage devices, questionnaires and the message, export.

Use::

    balie-central [--config FILE] db upgrade
    balie-central [--config FILE] serve [--host H] [--port P]
    balie-central [--config FILE] device add --name N --location L
    balie-central [--config FILE] device list [--json]
    balie-central [--config FILE] device revoke ID
    balie-central [--config FILE] questionnaire publish FILE [--location L]
    balie-central [--config FILE] questionnaire list [--json]
    balie-central [--config FILE] questionnaire retire ID VERSION [--location L]
    balie-central [--config FILE] message set --nl TEXT [--en TEXT] [--location L]
                  [--where welcome|thanks] [--show-grade]
    balie-central [--config FILE] message clear [--location L]
    balie-central [--config FILE] message show [--json]
    balie-central [--config FILE] import-results FILE | --list [--json]
    balie-central [--config FILE] export --out FILE [--format csv|sav|xlsx] [--layout long|wide]
                  [--from DATE] [--to DATE] [--exact-time] [--include-comments] [--timezone TZ]
    balie-central [--config FILE] report --from DATE --to DATE [--compare-from DATE --compare-to DATE]
                  [--format html|pdf] [--target 7.5] --out FILE

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
from kiosk.errors import QuestionnaireError
from central.errors import CentralError, ConfigError

# The export's choices, without importing the export itself (SQLAlchemy) at start-up.
FORMATS = ("csv", "sav", "xlsx")
DEFAULT_TIMEZONE = "Europe/Amsterdam"

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

    questionnaire = sub.add_parser("questionnaire", help="publish, list and retire questionnaires")
    q_sub = questionnaire.add_subparsers(dest="questionnaire_command", required=True)
    publish = q_sub.add_parser("publish", parents=[config],
                               help="validate a questionnaire file and publish it (immutable)")
    publish.add_argument("file", metavar="FILE", type=Path, help="the questionnaire TOML file")
    publish.add_argument("--location", help="only for terminals at this location (default: every "
                         "location without its own)")
    q_list = q_sub.add_parser("list", parents=[config], help="published questionnaires")
    q_list.add_argument("--json", action="store_true", help="machine-readable output")
    q_retire = q_sub.add_parser("retire", parents=[config], help="stop serving a published version")
    q_retire.add_argument("questionnaire_id", metavar="ID")
    q_retire.add_argument("version", metavar="VERSION", type=_version_arg)
    q_retire.add_argument("--location", help="the location it was published for (default: the "
                          "publication for every location)")

    message = sub.add_parser("message", help="the message terminals show visitors")
    m_sub = message.add_subparsers(dest="message_command", required=True)
    m_set = m_sub.add_parser(
        "set", parents=[config], help="set (or replace) the message for visitors",
        description="Set the message terminals show visitors, e.g. what they can expect from "
                    "you or what you changed after their answers. One line of plain text, at "
                    "most 200 characters per language. Terminals show it after their next sync.")
    m_set.add_argument("--nl", required=True, help="the Dutch text (required)")
    m_set.add_argument("--en", help="the English text (default: visitors in other languages "
                       "read the Dutch one)")
    m_set.add_argument("--location", help="only for terminals at this location (default: every "
                       "location without its own)")
    m_set.add_argument("--where", choices=["welcome", "thanks"], default="welcome",
                       help="on the welcome screen (default) or the thank-you screen")
    m_set.add_argument("--show-grade", action="store_true",
                       help="add the current overall grade, when enough answers back it "
                            "([message] grade_min_n, default 100)")
    m_clear = m_sub.add_parser("clear", parents=[config], help="remove the message; terminals "
                               "stop showing it at their next sync")
    m_clear.add_argument("--location", help="the location it was set for (default: the message "
                         "for every location)")
    m_show = m_sub.add_parser("show", parents=[config], help="the messages set, and the grade "
                              "each location would show now")
    m_show.add_argument("--json", action="store_true", help="machine-readable output")

    results = sub.add_parser(
        "import-results", parents=[config],
        help="import the bureau's study results (other channels, earlier studies) for the report",
        description="Import a CSV of study results: columns study, period (or year), channel, "
                    "aspect, mean, sd, n, optionally share_low and share_high (docs/CENTRAL.md). "
                    "Nothing is stored unless the whole file is right. Importing a study again "
                    "replaces all its rows.")
    results.add_argument("file", metavar="FILE", type=Path, nargs="?", help="the CSV file")
    results.add_argument("--list", action="store_true", help="list what is imported, import nothing")
    results.add_argument("--json", action="store_true", help="with --list: machine-readable output")

    export = sub.add_parser(
        "export", parents=[config], help="the data for the study: CSV, SPSS .sav or XLSX",
        description="Write the answers for the study. --format csv without --layout: the long "
                    "CSV, one row per answer, as in earlier releases. --layout wide, --format "
                    "sav and --format xlsx: one row per response (a visitor), one variable per "
                    "question, with a codebook (FILE's stem + .codebook.csv next to csv and sav; "
                    "a sheet in xlsx).")
    export.add_argument("--format", choices=FORMATS, default="csv",
                        help="csv (default), sav (SPSS) or xlsx (Excel)")
    export.add_argument("--layout", choices=["long", "wide"],
                        help="csv only: long (default: one row per answer, unchanged) or wide "
                             "(one row per response, with a codebook); sav and xlsx are wide")
    export.add_argument("--out", required=True,
                        help="file to write ('-': standard output, long CSV only)")
    export.add_argument("--from", dest="start", type=_date_arg, metavar="DATE",
                        help="first day (YYYY-MM-DD, UTC) or moment (ISO 8601) to include")
    export.add_argument("--to", dest="end", type=_date_arg, metavar="DATE",
                        help="last day to include (YYYY-MM-DD, whole day, UTC) or moment (exclusive)")
    export.add_argument("--exact-time", action="store_true",
                        help="do not round times down (default: [export] round_time_to, hour)")
    export.add_argument("--include-comments", action="store_true",
                        help="wide exports: add the free-text comments (default: left out; they "
                             "are scrubbed on the terminal but may still hold something personal)")
    export.add_argument("--timezone", metavar="TZ",
                        help="wide exports: local time for weekday and part of day (default "
                             f"{DEFAULT_TIMEZONE})")

    report = sub.add_parser(
        "report", parents=[config], help="the thermometer: a report for the municipality (HTML/PDF)",
        description="The thermometer: per aspect the mean grade and its 95%% interval against the "
                    "target, distributions, monthly trends, services, weekday x part of day, key "
                    "drivers and a method note, in Dutch. Dates are whole days in local time "
                    f"({DEFAULT_TIMEZONE}), both ends included.")
    report.add_argument("--from", dest="start", required=True, type=_day_arg, metavar="DATE",
                        help="first day of the period (YYYY-MM-DD)")
    report.add_argument("--to", dest="end", required=True, type=_day_arg, metavar="DATE",
                        help="last day of the period (YYYY-MM-DD, included)")
    report.add_argument("--compare-from", type=_day_arg, metavar="DATE",
                        help="first day of the period to compare with (e.g. the last study)")
    report.add_argument("--compare-to", type=_day_arg, metavar="DATE",
                        help="last day of the period to compare with (included)")
    report.add_argument("--format", choices=("html", "pdf"),
                        help="html (one self-contained file) or pdf (A4); default: from --out's "
                             "suffix, else html")
    report.add_argument("--target", type=float, default=7.5,
                        help="the target grade per aspect (default 7.5)")
    report.add_argument("--visitors", type=Path, metavar="FILE",
                        help="CSV of visitor counts per weekday and part of day (weekdag;dagdeel;"
                             "bezoekers): weight the scorecard to the visitors' mix "
                             "(post-stratification, docs/STATISTICS.md)")
    report.add_argument("--out", required=True, type=Path, help="file to write")
    return parser


def _day_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _version_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 2 ** 31 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number (a whole number >= 1)")
    return value


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

    from central.app import create_app, settle_heap

    settings = _settings(args)
    app = create_app(settings)  # raises DatabaseNotMigrated before anything listens
    settle_heap()
    # Fleet changes: WARNING when a terminal goes silent, INFO when it recovers.
    logging.getLogger("balie.central").setLevel(logging.INFO)
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
    from central.fleet import duration

    settings = _settings(args)
    engine = _migrated_engine(args)
    try:
        statuses = list(device_statuses(engine, settings.fleet, now=time.time()))
    finally:
        engine.dispose()
    if args.json:
        json.dump([s.as_dict() for s in statuses], sys.stdout, indent=2)
        print()
        return 0
    if not statuses:
        print("no devices enrolled (balie-central device add --name N --location L)")
        return 0
    header = ("ID", "NAME", "LOCATION", "LAST SEEN (UTC)", "VERSION", "QUESTIONNAIRE", "BACKLOG",
              "QUARANTINE", "SEQ GAPS", "CLOCK", "STATE")
    rows = [header] + [(
        s.id, s.name, s.location, _when(s.last_seen_at), s.app_version or "-",
        (s.questionnaire or "-") + (" (!)" if s.questionnaire_error else ""),
        _num(s.backlog), _num(s.quarantined), str(s.sequence_gaps),
        s.clock + ("" if s.clock_skew_s is None else f" ({s.clock_skew_s:+.1f}s)"),
        "active" if s.status == "ok" else s.status,
    ) for s in statuses]
    _table(rows)
    notes = []
    for s in statuses:
        if s.silent:
            notes.append(f"{s.id}: silent: nothing received for {duration(s.unheard_s)} "
                         f"(after {duration(settings.fleet.silent_after_s)})")
        if s.no_ratings:
            notes.append(f"{s.id}: no ratings: {duration(s.quiet_open_s)} of opening time "
                         "without a response, by its last heartbeat")
        if s.out_of_order and not s.revoked:
            notes.append(f"{s.id}: out of order: {s.out_of_order}, by its last heartbeat")
        if s.questionnaire_error and not s.revoked:
            notes.append(f"{s.id}: questionnaire: {s.questionnaire_error}")
    if notes:
        print()
        print("\n".join(notes))
    return 0


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


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


def _location_arg(text: str | None) -> str | None:
    if text is None:
        return None
    location = text.strip()
    if not location or len(location) > 64:
        raise CentralError("--location must be 1 to 64 characters, the location a terminal was "
                           "enrolled with (balie-central device list)")
    return location


def cmd_questionnaire_publish(args) -> int:
    from central.devices import known_locations
    from central.questionnaires import publish, read_questionnaire_file

    location = _location_arg(args.location)
    toml_text, questionnaire = read_questionnaire_file(args.file)  # QuestionnaireError: exit 2
    engine = _migrated_engine(args)
    try:
        result = publish(engine, toml_text, questionnaire, location=location, now=time.time())
        unknown = location is not None and location not in known_locations(engine)
    finally:
        engine.dispose()
    done = result.published
    if result.created:
        print(f"published {done.label} for {done.where} (sha256 {done.sha256[:12]})")
    else:
        print(f"{done.label} for {done.where} was already published with this content "
              f"({_when(done.published_at)} UTC): nothing changed")
    current = result.current
    if current is not None and (current.questionnaire_id, current.version) != (
            done.questionnaire_id, done.version):
        print(f"note: terminals there get {current.label} ({current.where}), published later",
              file=sys.stderr)
    elif result.created:
        where = (f"at {location}" if location is not None
                 else "at locations without a questionnaire of their own")
        print(f"terminals {where} get it at their next sync")
    if unknown:
        print(f"note: no terminal is enrolled at location {location!r} (yet); see "
              "balie-central device list", file=sys.stderr)
    return 0


def cmd_questionnaire_list(args) -> int:
    from central.questionnaires import list_published

    engine = _migrated_engine(args)
    try:
        rows = list_published(engine)
    finally:
        engine.dispose()
    if args.json:
        json.dump([row.as_dict() for row in rows], sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print("nothing published (balie-central questionnaire publish FILE [--location L])")
        return 0
    header = ("ID", "VERSION", "LOCATION", "PUBLISHED (UTC)", "STATE", "SHA256")
    _table([header] + [(
        row.questionnaire_id, str(row.version), row.location or "(every)",
        _when(row.published_at),
        f"retired {_when(row.retired_at)}" if row.retired_at is not None else row.state,
        row.sha256[:12],
    ) for row in rows])
    return 0


def cmd_questionnaire_retire(args) -> int:
    from central.questionnaires import retire

    location = _location_arg(args.location)
    engine = _migrated_engine(args)
    try:
        result = retire(engine, args.questionnaire_id, args.version, location=location,
                        now=time.time())
    finally:
        engine.dispose()
    done = result.retired
    if result.changed:
        print(f"{done.label} for {done.where}: retired")
    else:
        print(f"{done.label} for {done.where}: was already retired ({_when(done.retired_at)} UTC)")
    where = (f"at {location}" if location is not None
             else "at locations without a questionnaire of their own")
    if result.current is not None:
        print(f"terminals {where} now get {result.current.label} ({result.current.where})")
    else:
        print(f"nothing else is published for them: terminals {where} keep the questionnaire "
              "they have")
    return 0


def cmd_message_set(args) -> int:
    from central.devices import known_locations
    from central.messages import VisitorMessage, set_message

    location = _location_arg(args.location)
    message = VisitorMessage.build(nl=args.nl, en=args.en, where=args.where,
                                   show_grade=args.show_grade)  # MessageInvalid: exit 2
    engine = _migrated_engine(args)
    try:
        old = set_message(engine, message, location=location, now=time.time())
        unknown = location is not None and location not in known_locations(engine)
    finally:
        engine.dispose()
    where = "every location" if location is None else f"location {location}"
    print(f"message for {where} {'replaced' if old else 'set'} ({message.where} screen"
          f"{', with the overall grade' if message.show_grade else ''}); terminals show it after "
          "their next sync")
    if message.show_grade and message.where == "welcome":
        print("note: on the welcome screen the grade stands right above where visitors give "
              "theirs and may sway it; --where thanks shows it after they have answered",
              file=sys.stderr)
    if unknown:
        print(f"note: no terminal is enrolled at location {location!r} (yet); see "
              "balie-central device list", file=sys.stderr)
    return 0


def cmd_message_clear(args) -> int:
    from central.messages import clear_message

    location = _location_arg(args.location)
    engine = _migrated_engine(args)
    try:
        cleared = clear_message(engine, location=location)
    finally:
        engine.dispose()
    where = "every location" if location is None else f"location {location}"
    if cleared:
        print(f"message for {where} cleared; terminals stop showing it after their next sync")
    else:
        print(f"there was no message for {where}: nothing changed")
    return 0


def cmd_message_show(args) -> int:
    from central.messages import list_messages, overall_grade

    settings = _settings(args)
    engine = _migrated_engine(args)
    try:
        rows = list_messages(engine)
        grades = {row.location: overall_grade(
            engine, row.location, now=time.time(), days=settings.message.grade_days,
            min_n=settings.message.grade_min_n) if row.message.show_grade else None
            for row in rows}
    finally:
        engine.dispose()
    if args.json:
        json.dump([{**row.as_dict(), "grade": (grades[row.location].model_dump()
                                               if grades[row.location] else None)}
                   for row in rows], sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print("no message set (balie-central message set --nl TEXT [--location L])")
        return 0
    m = settings.message
    for row in rows:
        message = row.message
        print(f"{row.where_label}: on the {message.where} screen, set {_when(row.set_at)} UTC")
        print(f"  nl: {message.nl}")
        print(f"  en: {message.en if message.en is not None else '(none: the Dutch text)'}")
        if message.show_grade:
            grade = grades[row.location]
            print("  grade: " + (f"{grade.mean:.1f} from {grade.n} answers (last {grade.days} "
                                 "days)" if grade else
                                 f"not shown now: fewer than {m.grade_min_n} answers in the last "
                                 f"{m.grade_days} days"))
    return 0


def cmd_export(args) -> int:
    """The long CSV (``--format csv``, the default) or a wide export with its codebook."""
    layout = _export_layout(args)
    settings = _settings(args)
    start = args.start[0].timestamp() if args.start else None
    end = None
    if args.end:
        moment, whole_day = args.end
        end = (moment + timedelta(days=1) if whole_day else moment).timestamp()
    if start is not None and end is not None and start >= end:
        raise CentralError(f"--from ({_iso(start)}) is not before --to ({_iso(end)}, exclusive): "
                           "the period is empty")
    round_to = "none" if args.exact_time else settings.export.round_time_to
    if layout == "wide":
        return _export_wide(args, start, end, round_to)
    from central.export import export_csv

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


def _export_layout(args) -> str:
    """``long`` or ``wide``; raises ``CentralError`` for options that do not go together."""
    if args.format != "csv" and args.layout == "long":
        raise CentralError(f"--layout long is only for --format csv; --format {args.format} is "
                           "always wide (one row per response)")
    layout = args.layout or ("long" if args.format == "csv" else "wide")
    if layout == "long":
        for option, given in (("--include-comments", args.include_comments),
                              ("--timezone", args.timezone is not None)):
            if given:
                raise CentralError(f"{option} is for the wide exports (--layout wide, --format "
                                   "sav or xlsx); the long CSV has every answer as stored, in UTC")
        return layout
    if args.out == "-":
        raise CentralError(f"--out -: standard output is only for the long CSV; --format "
                           f"{args.format} --layout wide writes a file (and its codebook)")
    suffix = Path(args.out).suffix.lower()
    if args.format in ("sav", "xlsx") and suffix != f".{args.format}":
        raise CentralError(f"--out {args.out}: a --format {args.format} file must end in "
                           f".{args.format}, or SPSS/Excel will not open it")
    if args.timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(args.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CentralError(f"--timezone {args.timezone!r} is not a known time zone; use a "
                               f"name like {DEFAULT_TIMEZONE}") from None
    return layout


def _export_wide(args, start, end, round_to) -> int:
    from central.export import export_wide

    out = Path(args.out)
    engine = _migrated_engine(args)
    try:
        done = export_wide(engine, out, args.format, start=start, end=end, round_to=round_to,
                           timezone_name=args.timezone or DEFAULT_TIMEZONE,
                           include_comments=args.include_comments)
    except OSError as err:
        raise CentralError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        engine.dispose()
    book = done.codebook
    questions = sum(1 for v in book.variables if v.question_id is not None)
    extra = f" (codebook: {done.files[1]})" if len(done.files) > 1 else ""
    print(f"wrote {done.responses} response row(s), {len(book.variables)} variable(s) "
          f"({questions} question(s)) to {out}{extra}", file=sys.stderr)
    if book.left_out:
        print("left out: " + ", ".join(item.question_id for item in book.left_out)
              + " (free text; --include-comments adds it)", file=sys.stderr)
    for version in book.unknown_versions:
        print(f"note: {version.label} ({version.responses} response(s)): wording not known to "
              f"central ({version.unknown_because}); publish the file the terminals use to get "
              "its wording into the codebook", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    """Build the report of a period (and a comparison period) as HTML or an A4 PDF."""
    fmt = args.format or ("pdf" if args.out.suffix.lower() == ".pdf" else "html")
    if (args.compare_from is None) != (args.compare_to is None):
        raise CentralError("--compare-from and --compare-to go together: give both or neither")
    if not 1 <= args.target <= 10:
        raise CentralError(f"--target {args.target}: a target is a grade from 1 to 10")
    from central.report import Period, build_report

    period = Period.from_dates(args.start, args.end)  # CentralError when --to is before --from
    previous = (Period.from_dates(args.compare_from, args.compare_to)
                if args.compare_from is not None else None)
    visitors = None
    if args.visitors is not None:
        from central.visitors import read_visitor_counts

        visitors = read_visitor_counts(args.visitors)     # before the database: fail fast
    engine = _migrated_engine(args)
    try:
        report = build_report(engine, period, compare_with=previous, target=args.target,
                              visitors=visitors,
                              visitors_source=args.visitors.name if args.visitors else "")
    finally:
        engine.dispose()
    from central.report_render import render_html, render_pdf

    try:
        if fmt == "pdf":
            count = render_pdf(report, args.out)
            what = f"{count} A4 page(s)"
        else:
            partial = args.out.with_name(args.out.name + ".partial")
            try:
                partial.write_text(render_html(report), encoding="utf-8")
                partial.replace(args.out)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            what = "HTML"
    except OSError as err:
        raise CentralError(f"cannot write {args.out}: {err.strerror or err}") from None
    print(f"wrote the report of {period.label} ({report.method.responses} responses) to "
          f"{args.out} ({what})", file=sys.stderr)
    return 0


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def cmd_import_results(args) -> int:
    """Import a results file, or (``--list``) show what is imported."""
    if args.list == (args.file is not None):
        raise CentralError("give a results FILE to import, or --list to see what is imported")
    if args.json and not args.list:
        raise CentralError("--json is for --list")
    from central.study_results import import_results, list_results, read_results_file

    if args.list:
        engine = _migrated_engine(args)
        try:
            rows = list_results(engine)
        finally:
            engine.dispose()
        if args.json:
            json.dump([{**row.key._asdict(), "mean": row.mean, "sd": row.sd, "n": row.n,
                        "share_low": row.low_share, "share_high": row.high_share,
                        "source": row.source, "imported_at": row.imported_at} for row in rows],
                      sys.stdout, indent=2)
            print()
            return 0
        if not rows:
            print("no study results imported (balie-central import-results FILE)")
            return 0
        share = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
        _table([("STUDY", "PERIOD", "CHANNEL", "ASPECT", "MEAN", "SD", "N", "LOW", "HIGH",
                 "IMPORTED (UTC)")] + [(
                    *row.key, f"{row.mean:.2f}", f"{row.sd:.2f}", str(row.n), share(row.low_share),
                    share(row.high_share), _when(row.imported_at)) for row in rows])
        return 0
    rows = read_results_file(args.file)  # ResultsFileError (a CentralError): exit 2
    engine = _migrated_engine(args)
    try:
        done = import_results(engine, rows, source=args.file.name, now=time.time())
    finally:
        engine.dispose()
    for study, count in done.stored.items():
        if study in done.replaced:
            print(f"{study}: replaced its {done.replaced[study]} stored row(s) with {count} "
                  f"row(s) from {args.file.name}")
        else:
            print(f"{study}: imported {count} row(s) from {args.file.name}")
    return 0


COMMANDS = {
    ("serve",): cmd_serve,
    ("db", "upgrade"): cmd_db_upgrade,
    ("device", "add"): cmd_device_add,
    ("device", "list"): cmd_device_list,
    ("device", "revoke"): cmd_device_revoke,
    ("questionnaire", "publish"): cmd_questionnaire_publish,
    ("questionnaire", "list"): cmd_questionnaire_list,
    ("questionnaire", "retire"): cmd_questionnaire_retire,
    ("message", "set"): cmd_message_set,
    ("message", "clear"): cmd_message_clear,
    ("message", "show"): cmd_message_show,
    ("export",): cmd_export,
    ("import-results",): cmd_import_results,
    ("report",): cmd_report,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``balie-central``; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    key = tuple(k for k in (args.command, getattr(args, "db_command", None),
                            getattr(args, "device_command", None),
                            getattr(args, "questionnaire_command", None),
                            getattr(args, "message_command", None)) if k)
    try:
        return COMMANDS[key](args)
    except ConfigError as err:
        print(f"balie-central: {err}", file=sys.stderr)
    except QuestionnaireError as err:  # the terminal's own wording: file, question, field
        print(str(err), file=sys.stderr)
    except CentralError as err:
        print(f"balie-central: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
