"""Shared helpers for benches against central: a real server process, realistic batches.

Use (from a bench in this folder)::

    from _central import CentralServer, RecordMaker

    with CentralServer(database_url, workers=1) as server:     # uvicorn in its own process
        requests.get(server.url + "/healthz")
    maker = RecordMaker(device_id, seed=1)
    records = maker.records(500)                              # ResponseRecord models, 7-8 answers
    body = gzip_batch(batch_of(device_id, records, sent))      # what the terminal POSTs

Run as a script, this module is the server process itself::

    BALIE_DATABASE_URL=postgresql+psycopg://... python bench/_central.py --port P [--workers 2]

It serves ``central.app.create_app`` from the built-in settings (the database
from ``$BALIE_DATABASE_URL``) with uvicorn, like ``balie-central serve`` (which
has no ``--workers``), no access log.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sync.protocol import (  # noqa: E402
    AnswerRecord,
    Batch,
    ClockReading,
    QuestionnaireRef,
    ResponseRecord,
)

GZIP_LEVEL = 5          # as sync/uploader.py sends
APP_VERSION = "1.4.2"


def app():
    """uvicorn factory: central's app on ``$BALIE_DATABASE_URL``."""
    from central.app import create_app, settle_heap
    from central.settings import load_settings

    app = create_app(load_settings(None))
    settle_heap()       # as balie-central serve does
    return app


class CentralServer:
    """``bench/_central.py`` in a child process on a free loopback port; stopped on exit.

    ``env``: extra environment for the server (e.g. to profile it).
    """

    def __init__(self, database_url: str, *, workers: int = 1, env: dict | None = None):
        from tests.postgres import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        environ = {**os.environ, "BALIE_DATABASE_URL": database_url, **(env or {})}
        environ.pop("BALIE_CENTRAL_CONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--port", str(self.port), "--workers", str(workers)],
            cwd=ROOT, env=environ, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 30) -> "CentralServer":
        import requests

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"central exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("central did not answer /healthz in time")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        """The server process and its workers (for CPU accounting and profiling)."""
        import psutil

        try:
            parent = psutil.Process(self.proc.pid)
            return [parent.pid] + [child.pid for child in parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the workers, or the server itself with one worker."""
        pids = self.pids()
        if self.workers <= 1:
            return pids[:1]
        import psutil

        return [p for p in pids[1:]
                if "multiprocessing" not in " ".join(_cmdline(psutil, p))]  # not the resource tracker

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "CentralServer":
        return self.wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()


def _cmdline(psutil, pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


# --------------------------------------------------------------------- records

ASPECTS = ("wachttijd", "vriendelijkheid", "deskundigheid", "duidelijkheid", "privacy", "ruimte")
CHOICES = ("ja", "nee", "weet-niet", "deels")
COMMENTS = (
    "Heel vriendelijk geholpen, maar het duurde lang voordat ik aan de beurt was.",
    "Prima",
    "De wachtruimte was te warm en er was geen water.",
    "Snel geholpen, duidelijke uitleg over mijn paspoortaanvraag. Dank!",
    "Ik begreep niet welk nummer ik moest trekken.",
    "Medewerker nam de tijd om alles uit te leggen, top.",
)
LANGUAGES = ("nl",) * 8 + ("en", "tr", "ar", "pl")


class RecordMaker:
    """Realistic closed responses of one terminal, as its buffer hands them to the uploader.

    Each response: 7 or 8 answers (a 1-10 overall score, five 1-5 aspect scores,
    a yes/no choice as text, and in half of them a scrubbed comment of up to
    ~80 characters), a timestamp per answer a few seconds apart, mostly in the
    current boot (one in 20 from a previous boot, so unverified time).
    """

    def __init__(self, device_id: str, *, seed: int = 0, location: str = "stadhuis"):
        self.device_id = device_id
        self.location = location
        self.rng = random.Random(f"{device_id}-{seed}")
        self.seq = 0
        self.boot = f"boot-{self.rng.getrandbits(64):016x}"
        self.mono = 3_600.0
        self.wall = 1_764_230_400.0

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def record(self) -> ResponseRecord:
        rng = self.rng
        self.seq += 1
        self.mono += rng.uniform(20, 120)
        self.wall += rng.uniform(20, 120)
        boot = self.boot if rng.random() >= 0.05 else f"boot-old-{rng.getrandbits(32):08x}"
        start = ClockReading(wall=round(self.wall, 3), boot_id=boot, mono=round(self.mono, 3))
        values: list[tuple[str, str | None, int | str]] = [("q1", "totaal", rng.randint(1, 10))]
        values += [(f"q{i + 2}", aspect, rng.randint(1, 5)) for i, aspect in enumerate(ASPECTS[:5])]
        values.append(("q7", None, rng.choice(CHOICES)))
        if rng.random() < 0.5:
            values.append(("q8", None, rng.choice(COMMENTS)))
        answers = []
        for ordinal, (question, aspect, value) in enumerate(values, 1):
            step = ordinal * rng.uniform(1.5, 6.0)
            answers.append(AnswerRecord(
                id=self._uuid(), ordinal=ordinal, question_id=question, aspect=aspect, value=value,
                at=ClockReading(wall=round(start.wall + step, 3), boot_id=boot,
                                mono=round(start.mono + step, 3))))
        return ResponseRecord(
            id=self._uuid(), seq=self.seq, questionnaire=QuestionnaireRef(id="standaard", version=3),
            location_id=self.location, language=rng.choice(LANGUAGES), started=start,
            closed_wall=round(start.wall + 60, 3),
            end_reason="completed" if rng.random() < 0.9 else "idle", answers=answers)

    def records(self, count: int) -> list[ResponseRecord]:
        return [self.record() for _ in range(count)]

    def sent(self) -> ClockReading:
        """The terminal's clock as it sends (after everything recorded so far)."""
        return ClockReading(wall=round(self.wall + 300, 3), boot_id=self.boot,
                            mono=round(self.mono + 300, 3))


def batch_of(device_id: str, records: list[ResponseRecord], sent: ClockReading) -> Batch:
    return Batch(device_id=device_id, app_version=APP_VERSION, sent=sent, responses=records)


def gzip_batch(batch: Batch) -> bytes:
    """The request body as the terminal sends it: compact JSON, gzip level 5."""
    return gzip.compress(batch.model_dump_json().encode(), compresslevel=GZIP_LEVEL, mtime=0)


# --------------------------------------------------------------------- server process

def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    uvicorn.run("_central:app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level="warning", access_log=False, server_header=False, proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
