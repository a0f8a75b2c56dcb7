"""A real, throwaway PostgreSQL cluster for tests and benchmarks.

``start_cluster()`` runs ``initdb`` into a fresh temporary folder, starts the
server on a private port on 127.0.0.1 (and a private socket folder), and hands
back a :class:`Cluster`; ``Cluster.stop()`` stops the server and deletes the
folder. Clusters still running when the interpreter exits are stopped by an
``atexit`` hook (so Ctrl+C does not leave servers behind).

PostgreSQL refuses to run as root. When the euid is 0 (CI), ``initdb`` and
``pg_ctl`` run as the ``postgres`` system user through ``runuser``, in a folder
owned by that user; otherwise they run as the current user. The database
superuser is always ``postgres``, with ``trust`` authentication (loopback only).

Where the server binaries are searched, first hit wins:
``$BALIE_PG_BINDIR``, ``/usr/lib/postgresql/<highest version>/bin`` (Debian's
``postgresql`` package), ``pg_config --bindir``, ``initdb`` on ``PATH``.
A missing server is an error (:class:`PostgresNotInstalled`), never a skip:
``scripts/test`` installs it.

Usable without pytest, e.g. from ``bench/``::

    from tests.postgres import start_cluster
    with start_cluster() as cluster:          # fsync on: realistic numbers
        url = cluster.create_database("bench")  # postgresql+psycopg://...
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

SERVER_USER = "postgres"   # the system user the server runs as under root
SUPERUSER = "postgres"     # the database superuser initdb creates
HOST = "127.0.0.1"

INSTALL_HINT = ("run scripts/test (it installs the Debian package 'postgresql'), "
                "or apt-get install postgresql, or set BALIE_PG_BINDIR to the folder "
                "holding initdb and pg_ctl")

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresNotInstalled(RuntimeError):
    """The PostgreSQL server binaries (initdb, pg_ctl, postgres) are not there."""


class PostgresStartError(RuntimeError):
    """initdb or the server failed; the message holds the tail of its log."""


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres"))


def _version_key(path: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else -1 for part in path.name.split("."))


def find_bindir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Raises :class:`PostgresNotInstalled` with what was tried and how to fix it.
    """
    tried: list[str] = []
    env = os.environ.get("BALIE_PG_BINDIR")
    if env:
        if _has_server(Path(env)):
            return Path(env)
        raise PostgresNotInstalled(
            f"BALIE_PG_BINDIR={env} does not hold initdb, pg_ctl and postgres; {INSTALL_HINT}")
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        for version in sorted(debian.iterdir(), key=_version_key, reverse=True):
            if _has_server(version / "bin"):
                return version / "bin"
            tried.append(str(version / "bin"))
    else:
        tried.append("/usr/lib/postgresql/*/bin")
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server(Path(out)):
            return Path(out)
        tried.append(f"pg_config --bindir ({out or 'failed'})")
    initdb = shutil.which("initdb")
    if initdb:
        bindir = Path(os.path.realpath(initdb)).parent
        if _has_server(bindir):
            return bindir
        tried.append(str(bindir))
    else:
        tried.append("initdb on PATH")
    raise PostgresNotInstalled(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found (looked in: "
        + ", ".join(tried) + f"); {INSTALL_HINT}")


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _traversable_by_others(path: Path) -> bool:
    for part in [path, *path.parents]:
        if not os.stat(part).st_mode & 0o001:
            return False
    return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_LIVE: list["Cluster"] = []
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        clusters = list(_LIVE)
    for cluster in clusters:
        try:
            cluster.stop()
        except Exception:   # best effort at exit
            pass


class Cluster:
    """A running throwaway cluster. Build it with :func:`start_cluster`."""

    def __init__(self, *, bindir: Path, base: Path, port: int, run_as: str | None, fast: bool):
        self.bindir = bindir
        self.base = base                    # the temp folder; deleted by stop()
        self.datadir = base / "data"
        self.socketdir = base / "sock"
        self.logfile = base / "server.log"
        self.host = HOST
        self.port = port
        self.user = SUPERUSER
        self.run_as = run_as                # "postgres" when started as root, else None
        self.fast = fast
        self.started_at = 0.0
        self.startup_seconds = 0.0          # initdb + start, for the curious
        self._counter = 0
        self._stopped = False
        self._lock = threading.Lock()

    # -- running commands as the server user ---------------------------------
    def _cmd(self, *args: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self._cmd(*args), cwd=self.base, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    # -- addresses ------------------------------------------------------------
    def url(self, dbname: str = "postgres", driver: str = "psycopg") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+psycopg://postgres@127.0.0.1:PORT/db``."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq conninfo for ``psycopg.connect``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def connect(self, dbname: str = "postgres", **kwargs):
        import psycopg

        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(self.dsn(dbname), **kwargs)

    @property
    def server_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        return not self._stopped

    # -- databases ------------------------------------------------------------
    def unique_name(self, hint: str = "db") -> str:
        """A database name not handed out before on this cluster: ``t0007_<hint>``."""
        with self._lock:
            self._counter += 1
            counter = self._counter
        slug = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_")[:40]
        return f"t{counter:04d}_{slug}" if slug else f"t{counter:04d}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (from template0) and return its SQLAlchemy URL.

        Without a name, one is made by :meth:`unique_name`.
        """
        if name is None:
            name = self.unique_name()
        if not _NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use [a-z_][a-z0-9_]*, at most 63 chars")
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connections still open to it."""
        if not _NAME_RE.match(name):
            raise ValueError(f"database name {name!r}")
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- life cycle ----------------------------------------------------------
    def _start(self, settings: dict[str, str]) -> None:
        t0 = time.monotonic()
        initdb = self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                           "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
                           "--no-instructions")
        if initdb.returncode != 0:
            raise PostgresStartError(f"initdb failed ({initdb.returncode}):\n"
                                     f"{initdb.stdout}\n{initdb.stderr}")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socketdir}'",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "logging_collector": "off",
        }
        if self.fast:
            conf.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        conf.update(settings)
        with open(self.datadir / "postgresql.conf", "a") as fh:   # keeps the owner
            fh.write("\n# balie tests/postgres.py\n")
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")
        for attempt in range(3):
            conf_port = f"-p {self.port}"
            started = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir),
                                "-l", str(self.logfile), "-o", conf_port, "-w", "-t", "60",
                                "start", timeout=90)
            if started.returncode == 0:
                break
            # Someone took the port between free_port() and the bind: try another one.
            if "already in use" in _tail(self.logfile) and attempt < 2:
                self.port = free_port()
                continue
            raise PostgresStartError(f"pg_ctl start failed ({started.returncode}): "
                                     f"{started.stderr.strip()}\n--- {self.logfile}:\n"
                                     f"{_tail(self.logfile)}")
        self.started_at = time.monotonic()
        self.startup_seconds = self.started_at - t0

    def stop(self) -> None:
        """Stop the server (immediate shutdown: it is throwaway) and delete its folder."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        with _LIVE_LOCK:
            if self in _LIVE:
                _LIVE.remove(self)
        pid = self.server_pid
        try:
            if self.datadir.exists():
                done = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir),
                                 "-m", "immediate", "-w", "-t", "30", "stop", timeout=45)
                if done.returncode != 0 and pid and _alive(pid):
                    os.kill(pid, signal.SIGQUIT)
                    _wait_gone(pid, 10)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else f"pid {self.server_pid}"
        return f"<Cluster {self.host}:{self.port} {state} {self.base}>"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def start_cluster(*, fast: bool = False, port: int | None = None,
                  settings: dict[str, str] | None = None,
                  bindir: str | os.PathLike | None = None) -> Cluster:
    """initdb + start a private cluster on 127.0.0.1; returns a running :class:`Cluster`.

    ``fast=True`` turns off fsync, synchronous_commit and full_page_writes (test
    suites only; benchmarks keep the default, durable settings). ``settings``
    adds or overrides postgresql.conf lines (values as written in the file,
    strings quoted: ``{"work_mem": "'64MB'"}``). ``port`` defaults to a free one.
    """
    bin_path = Path(bindir) if bindir else find_bindir()
    if not _has_server(bin_path):
        raise PostgresNotInstalled(f"{bin_path} does not hold initdb, pg_ctl and postgres; "
                                   f"{INSTALL_HINT}")
    run_as = None
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresNotInstalled(
                f"running as root, so the server must run as the '{SERVER_USER}' user, "
                f"which does not exist; {INSTALL_HINT}") from None
        if shutil.which("runuser") is None:
            raise PostgresStartError("running as root needs 'runuser' (util-linux) to start "
                                     "PostgreSQL as the postgres user")
        run_as = SERVER_USER
    parent = Path(tempfile.gettempdir())
    if owner is not None and not _traversable_by_others(parent):
        parent = Path("/tmp")
    base = Path(tempfile.mkdtemp(prefix="balie-pg-", dir=parent))
    (base / "sock").mkdir(mode=0o700)
    if owner is not None:
        for path in (base, base / "sock"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(bindir=bin_path, base=base, port=port or free_port(), run_as=run_as,
                      fast=fast)
    with _LIVE_LOCK:
        _LIVE.append(cluster)
    try:
        cluster._start(settings or {})
    except BaseException:
        cluster.stop()
        raise
    return cluster
