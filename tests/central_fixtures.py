"""A real central on a real loopback port, plus builders for records, for any test that needs one.

Use::

    settings = central_settings(tmp_path / "central.sqlite3")      # or a postgresql+psycopg URL
    device_id, token = enrol_device(settings)
    with run_central(settings) as base_url:                         # uvicorn in a thread
        requests.post(base_url + BATCHES_PATH, json=make_batch(device_id, [make_record(1)]),
                      headers={"Authorization": f"Bearer {token}"})

``run_central`` migrates the database first (``migrate_first=False`` to skip), binds
a free port on 127.0.0.1 itself (no race), and stops the server on exit. Also:
``fresh_database`` (one per test, SQLite or PostgreSQL), ``FakeClock`` for
``create_app(clock=...)``, ``make_heartbeat``, ``questionnaire_file`` (the shipped
questionnaire with another version/title/id).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import uvicorn

from central.app import create_app
from central.db import make_engine, upgrade
from central.devices import enrol
from central.settings import CentralSettings

START_TIMEOUT_S = 15
STANDAARD = Path(__file__).resolve().parent.parent / "config" / "questionnaires" / "standaard.toml"


def central_settings(database: str | Path, **sections) -> CentralSettings:
    """Settings for a test: ``database`` is a SQLite file path or a database URL.

    ``sections``: e.g. ``limits={"max_records": 10}``.
    """
    url = str(database)
    if "://" not in url:
        url = f"sqlite:///{Path(database).resolve()}"
    return CentralSettings.model_validate({"database_url": url, **sections})


def migrate(settings: CentralSettings) -> None:
    """``balie-central db upgrade`` on the settings' database."""
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def enrol_device(settings: CentralSettings, name: str = "Balie 1",
                 location: str = "stadhuis") -> tuple[str, str]:
    """Enrol a device on a migrated database; returns ``(device_id, token)``."""
    engine = make_engine(settings.database_url)
    try:
        return enrol(engine, name=name, location=location, now=time.time())
    finally:
        engine.dispose()


@contextlib.contextmanager
def run_central(settings: CentralSettings, *, migrate_first: bool = True,
                **app_options) -> Iterator[str]:
    """Serve ``create_app(settings, **app_options)`` on a free loopback port; yields the base URL."""
    if migrate_first:
        migrate(settings)
    app = create_app(settings, **app_options)
    # IPPROTO_TCP, not 0: asyncio only switches on TCP_NODELAY for sockets that
    # say they are TCP, and without it every keep-alive request waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                           access_log=False))
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the test below
            failure.append(exc)

    thread = threading.Thread(target=serve, name=f"central-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"central did not start: {failure[0] if failure else 'timeout'}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        sock.close()


@contextlib.contextmanager
def enrolled_central(database: Path) -> Iterator[tuple[str, object, str, str]]:
    """A real central on a SQLite file with one enrolled device, served on loopback (fleet
    checks off); yields ``(base_url, engine, device_id, token)``."""
    settings = central_settings(database)
    migrate(settings)
    device_id, token = enrol_device(settings)
    engine = make_engine(settings.database_url)
    try:
        with run_central(settings, migrate_first=False, watch_fleet=False) as base_url:
            yield base_url, engine, device_id, token
    finally:
        engine.dispose()


@contextlib.contextmanager
def central_on_backend(request, tmp_path_factory) -> Iterator[tuple]:
    """A real central on the backend ``request.param`` ("sqlite" or "postgres").

    For module-scoped fixtures parametrized over both backends; yields
    ``(settings, base_url, engine)`` and disposes the engine afterwards.
    """
    if request.param == "sqlite":
        database = tmp_path_factory.mktemp("central") / "central.sqlite3"
    else:
        database = request.getfixturevalue("pg_cluster").create_database()
    settings = central_settings(database)
    with run_central(settings) as base_url:
        engine = make_engine(settings.database_url)
        try:
            yield settings, base_url, engine
        finally:
            engine.dispose()


def fresh_database(request, tmp_path: Path) -> str:
    """A new, empty database for one test on the backend ``request.param`` ("sqlite" or
    "postgres"): a SQLite file under ``tmp_path`` or a database on the session cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'central.sqlite3').resolve()}"
    return request.getfixturevalue("pg_url")


class FakeClock:
    """Central's wall clock under the test's control: ``create_app(settings, clock=fake)``."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move on ``seconds``; returns the new time."""
        self.now += seconds
        return self.now


def make_heartbeat(device_id: str, **fields) -> dict:
    """A wire ``Heartbeat`` (the fields added for the admin issue only when given)."""
    return {"device_id": device_id, "app_version": "0.2.0", "backlog": 0, "quarantined": 0,
            "clock": clock(1_700_000_000.0, 50.0), "clock_synced": True, **fields}


def questionnaire_file(folder: Path, version: int, *, title: str = "Hoe was uw bezoek?",
                       qid: str = "balie-standaard", name: str | None = None) -> Path:
    """The shipped questionnaire file with another version (and title, and id), in ``folder``."""
    text = STANDAARD.read_text(encoding="utf-8")
    assert 'version = 1\n' in text and 'nl = "Hoe was uw bezoek?"' in text
    text = text.replace("version = 1\n", f"version = {version}\n", 1)
    text = text.replace('nl = "Hoe was uw bezoek?"', f'nl = "{title}"', 1)
    text = text.replace('id = "balie-standaard"', f'id = "{qid}"', 1)
    path = folder / (name or f"{qid}-v{version}-{hashlib.sha1(title.encode()).hexdigest()[:6]}.toml")
    path.write_text(text, encoding="utf-8")
    return path


def clock(wall: float, mono: float, boot_id: str = "boot-a") -> dict:
    """A wire ``ClockReading``."""
    return {"wall": wall, "boot_id": boot_id, "mono": mono}


def make_record(seq: int, *, id: str | None = None, values=(8, 7), at: dict | None = None,
                location_id: str = "balie-1", questionnaire=("standaard", 1), **fields) -> dict:
    """A wire ``ResponseRecord`` with one answer per value (question ids q1, q2, ...)."""
    at = at or clock(1_700_000_000.0 + seq, 1000.0 + seq)
    record = {
        "id": id or str(uuid.uuid4()),
        "seq": seq,
        "questionnaire": {"id": questionnaire[0], "version": questionnaire[1]},
        "location_id": location_id,
        "language": "nl",
        "started": at,
        "closed_wall": at["wall"] + 5,
        "end_reason": "completed",
        "answers": [
            {"id": str(uuid.uuid4()), "ordinal": i + 1, "question_id": f"q{i + 1}",
             "aspect": "totaal" if i == 0 else "wachttijd", "value": value,
             "at": {**at, "wall": at["wall"] + i, "mono": at["mono"] + i}}
            for i, value in enumerate(values)
        ],
    }
    record.update(fields)
    return record


def make_batch(device_id: str, records: list[dict], *, sent: dict | None = None,
               app_version: str = "0.1.0") -> dict:
    """A wire ``Batch``; ``sent`` defaults to a reading of boot-a after all records."""
    return {"device_id": device_id, "app_version": app_version,
            "sent": sent or clock(1_700_100_000.0, 100_000.0), "responses": records}


def cli(capsys, *argv) -> tuple[int, str, str]:
    """``balie-central`` with ``argv`` (paths and numbers become text): (status, stdout, stderr)."""
    from central.cli import main

    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err
