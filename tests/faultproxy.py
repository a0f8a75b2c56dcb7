"""A fault-injecting HTTP/1.1 proxy for the exactly-once tests (device → proxy → central).

Loopback only. The proxy parses each request (headers and a Content-Length or
chunked body), decides a :class:`Fault` for it, and forwards it, when the fault
asks for that, over a fresh upstream connection (``Connection: close``), so
upstream keep-alive never mixes requests. Towards the client, keep-alive is
kept (``requests.Session`` reuses its connection) except where a fault closes
the connection, in which case the answer says ``Connection: close``. Response
bodies are passed on with a Content-Length (a chunked upstream body is
de-chunked).

The faults, per request:

``pass``        forwarded, answer returned unchanged.
``reset``       connection reset (RST) after the request was read, before forwarding:
                upstream never sees it; the client gets a ConnectionError.
``drop_after``  forwarded, upstream answered in full (central committed), then the
                client connection is closed without a byte of the answer: the
                client gets a ConnectionError.
``truncate``    forwarded; the client gets the status line, the headers (with the
                full Content-Length) and half the body, then the connection closes
                (``requests`` raises ChunkedEncodingError). With an empty body the
                status line is cut instead (ConnectionError).
``delay``       held ``delay`` seconds (make it longer than the client's read
                timeout), then forwarded anyway (``delay_forwards=True``, the default:
                central commits after the client gave up) or dropped unforwarded.
``500`` ``502`` ``503``  answered by the proxy itself, not forwarded (503 carries
                Retry-After when ``retry_after_503`` is set).
``429``         answered by the proxy itself with ``Retry-After: <retry_after>``.

Which fault: first the scripted ones (``script=[...]`` / :meth:`FaultProxy.schedule`),
one per request in order; then at random with ``rates`` (``{"reset": 0.05, ...}``,
the rest passes) from a ``random.Random(seed)``; decisions are made in arrival
order under a lock, so one client sending one request at a time gets the same
sequence for the same seed. ``match(method, path)`` limits faults to some
requests (others always pass and take no scripted fault or random draw).

    with FaultProxy(("127.0.0.1", central_port), rates={"drop_after": 0.1}, seed=7) as proxy:
        uploader = Uploader(proxy.url, ...)
        ...
        proxy.wait_idle()         # delayed requests have landed
        proxy.counters["drop_after"], proxy.log[-1].fault
"""

from __future__ import annotations

import collections
import enum
import ipaddress
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping
from urllib.parse import urlsplit

__all__ = ["Fault", "FaultProxy", "Exchange"]


class Fault(str, enum.Enum):
    PASS = "pass"
    RESET = "reset"
    DROP_AFTER = "drop_after"
    TRUNCATE = "truncate"
    DELAY = "delay"
    HTTP_500 = "500"
    HTTP_502 = "502"
    HTTP_503 = "503"
    HTTP_429 = "429"

    @classmethod
    def of(cls, value: "Fault | str | int") -> "Fault":
        if isinstance(value, Fault):
            return value
        return cls(str(value))


FAULTS = tuple(Fault)          # fixed order for the random draw
_ANSWERED_BY_PROXY = {Fault.HTTP_500: (500, "Internal Server Error"),
                      Fault.HTTP_502: (502, "Bad Gateway"),
                      Fault.HTTP_503: (503, "Service Unavailable"),
                      Fault.HTTP_429: (429, "Too Many Requests")}
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length"}
_MAX_LINE = 65536
_MAX_HEADERS = 200


@dataclass
class Exchange:
    """One request as the proxy handled it (``FaultProxy.log``)."""
    seq: int
    method: str
    path: str
    fault: Fault
    forwarded: bool = False
    upstream_status: int | None = None   # None: not forwarded, or upstream failed
    client_status: int | None = None     # what the client was sent (None: nothing / cut)
    at: float = field(default_factory=time.monotonic)


class _BadMessage(Exception):
    pass


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    had_length: bool

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for k, v in self.headers if k.lower() == "connection"
                  for t in v.split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass
class _Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _check_loopback(host: str, what: str) -> None:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ValueError(f"{what} {host!r}: cannot resolve ({exc})") from None
    addrs = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    if not addrs or not all(addr.is_loopback for addr in addrs):
        raise ValueError(f"{what} {host!r} is not a loopback address: the fault proxy "
                         "only runs on loopback")


def _read_headers(rfile) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            raise _BadMessage("connection closed in the headers")
        if len(line) > _MAX_LINE:
            raise _BadMessage("header line too long")
        if line in (b"\r\n", b"\n"):
            return headers
        if line[:1] in (b" ", b"\t") and headers:       # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip().decode("latin-1"))
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise _BadMessage(f"bad header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
        if len(headers) > _MAX_HEADERS:
            raise _BadMessage("too many headers")


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _read_exact(rfile, n: int) -> bytes:
    data = rfile.read(n)
    if data is None or len(data) != n:
        raise _BadMessage(f"connection closed after {len(data or b'')} of {n} body bytes")
    return data


def _read_chunked(rfile, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            raise _BadMessage("connection closed in a chunk size")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadMessage(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            _read_headers(rfile)         # trailers, up to the blank line
            return b"".join(parts)
        total += size
        if total > limit:
            raise _BadMessage("chunked body too large")
        parts.append(_read_exact(rfile, size))
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise _BadMessage("missing CRLF after a chunk")


def _read_body(rfile, headers, limit: int) -> tuple[bytes, bool]:
    te = _header(headers, "transfer-encoding")
    if te is not None and te.lower().split(",")[-1].strip() == "chunked":
        return _read_chunked(rfile, limit), True
    length = _header(headers, "content-length")
    if length is None:
        return b"", False
    try:
        n = int(length)
    except ValueError:
        raise _BadMessage(f"bad Content-Length {length!r}") from None
    if n < 0 or n > limit:
        raise _BadMessage(f"Content-Length {n} out of range")
    return _read_exact(rfile, n), True


class FaultProxy:
    """A threaded, bounded, loopback-only HTTP/1.1 fault proxy. Use it as a context manager.

    ``target``: ``(host, port)`` or a URL like ``http://127.0.0.1:8000``.
    ``script``: faults for the first requests, in order. ``rates``: fault → probability
    for the requests after the script (sum ≤ 1; the rest pass). ``seed``: the RNG seed.
    ``delay``: seconds a ``delay`` fault holds a request; ``delay_forwards``: forward it
    afterwards (True) or drop it. ``retry_after``: seconds in the 429 answer;
    ``retry_after_503``: the same for 503 (None: no header). ``match(method, path)``:
    which requests may get a fault. ``max_connections``: client connections served at
    once (more wait in the listen backlog). ``idle_timeout``: an idle client connection
    is closed after this. ``upstream_timeout``: connect + read timeout towards the target.
    """

    def __init__(self, target: tuple[str, int] | str, *,
                 script: Iterable[Fault | str] = (),
                 rates: Mapping[Fault | str, float] | None = None,
                 seed: int | None = 0,
                 delay: float = 5.0,
                 delay_forwards: bool = True,
                 retry_after: int = 1,
                 retry_after_503: int | None = None,
                 match: Callable[[str, str], bool] | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 0),
                 max_connections: int = 32,
                 idle_timeout: float = 30.0,
                 upstream_timeout: float = 60.0,
                 max_body: int = 256 * 1024 * 1024,
                 log_size: int = 100_000):
        if isinstance(target, str):
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname or not parts.port:
                raise ValueError(f"target {target!r}: give http://host:port or (host, port)")
            target = (parts.hostname, parts.port)
        self.target = (target[0], int(target[1]))
        _check_loopback(self.target[0], "target")
        _check_loopback(listen[0], "listen address")
        self._listen = listen
        self.delay = delay
        self.delay_forwards = delay_forwards
        self.retry_after = retry_after
        self.retry_after_503 = retry_after_503
        self.match = match
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.upstream_timeout = upstream_timeout
        self.max_body = max_body

        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._script: collections.deque[Fault] = collections.deque(Fault.of(f) for f in script)
        self._rates: list[tuple[Fault, float]] = []
        self._rng = random.Random(seed)
        self.set_rates(rates or {})
        self._counters: collections.Counter[str] = collections.Counter()
        self.log: collections.deque[Exchange] = collections.deque(maxlen=log_size)
        self._seq = 0
        self._in_flight = 0

        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._server: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    # -- configuration while running ------------------------------------------
    def schedule(self, *faults: Fault | str) -> None:
        """Append faults to the script: the next requests (that ``match``) get them."""
        with self._lock:
            self._script.extend(Fault.of(f) for f in faults)

    def set_rates(self, rates: Mapping[Fault | str, float], seed: int | None = None) -> None:
        """Replace the random fault rates (and reseed the RNG when ``seed`` is given)."""
        parsed = {Fault.of(k): float(v) for k, v in rates.items()}
        if any(v < 0 for v in parsed.values()) or sum(parsed.values()) > 1 + 1e-9:
            raise ValueError(f"rates must be ≥ 0 and sum to ≤ 1: {rates}")
        ordered = [(f, parsed[f]) for f in FAULTS if parsed.get(f)]
        with self._lock:
            self._rates = ordered
            if seed is not None:
                self._rng.seed(seed)

    @property
    def counters(self) -> collections.Counter:
        """A snapshot: per fault value ("pass", "reset", "drop_after", "500", …) how many
        requests got it, plus "requests", "connections", "forwarded", "upstream_errors"
        (upstream unreachable or broken: the client got 502), "bad_requests"."""
        with self._lock:
            return collections.Counter(self._counters)

    def injected(self) -> int:
        """How many requests got a fault other than ``pass``."""
        c = self.counters
        return sum(c[f.value] for f in FAULTS if f is not Fault.PASS)

    def reset_counters(self) -> None:
        with self._lock:
            self._counters.clear()
            self.log.clear()

    # -- addresses --------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        host, port = self._server.getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # -- life cycle ------------------------------------------------------------
    def start(self) -> "FaultProxy":
        if self._server is not None:
            raise RuntimeError("already started")
        family = socket.AF_INET6 if ":" in self._listen[0] else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(self._listen)
        server.listen(128)
        server.settimeout(0.1)
        self._server = server
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept",
                                          daemon=True)
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, cut every open connection (both sides), join the threads."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        if self._server is not None:
            self._server.close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"fault proxy threads did not stop: {alive}")

    def __enter__(self) -> "FaultProxy":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no request is being handled (delayed ones included)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # -- internals --------------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counters[key] += n

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
        if self._stop.is_set():      # stop() may have missed it
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.1):
                continue
            try:
                conn, _ = self._server.accept()
            except (socket.timeout, TimeoutError):
                self._slots.release()
                continue
            except OSError:
                self._slots.release()
                if self._stop.is_set():
                    return
                continue
            self._count("connections")
            thread = threading.Thread(target=self._serve_client, args=(conn,),
                                      name=f"faultproxy-conn-{conn.fileno()}", daemon=True)
            with self._lock:
                self._threads.add(thread)
            thread.start()

    def _choose(self, req: _Request) -> Exchange:
        with self._lock:
            self._seq += 1
            self._counters["requests"] += 1
            self._in_flight += 1
            if self.match is not None and not self.match(req.method, req.path):
                fault = Fault.PASS
            elif self._script:
                fault = self._script.popleft()
            else:
                fault = Fault.PASS
                draw = self._rng.random()
                acc = 0.0
                for candidate, rate in self._rates:
                    acc += rate
                    if draw < acc:
                        fault = candidate
                        break
            self._counters[fault.value] += 1
            exchange = Exchange(self._seq, req.method, req.path, fault)
            self.log.append(exchange)
            return exchange

    def _done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _serve_client(self, conn: socket.socket) -> None:
        self._track(conn)
        rfile = None
        try:
            conn.settimeout(self.idle_timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rfile = conn.makefile("rb")
            while not self._stop.is_set():
                try:
                    req = self._read_request(rfile)
                except _BadMessage:
                    self._count("bad_requests")
                    self._send_plain(conn, 400, "Bad Request", b"bad request\n", close=True)
                    return
                if req is None:
                    return
                exchange = self._choose(req)
                try:
                    keep = self._handle(conn, req, exchange)
                finally:
                    self._done()
                if not keep:
                    return
        except OSError:
            pass                 # client went away, timed out, or stop() cut it
        finally:
            if rfile is not None:
                rfile.close()     # the fd closes only when its makefile() is closed too
            self._untrack(conn)
            self._slots.release()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _read_request(self, rfile) -> _Request | None:
        line = rfile.readline(_MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):          # stray blank lines between requests
            line = rfile.readline(_MAX_LINE + 1)
        if not line:
            return None
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            raise _BadMessage(f"bad request line {line[:80]!r}") from None
        if not version.startswith("HTTP/1."):
            raise _BadMessage(f"unsupported version {version!r}")
        headers = _read_headers(rfile)
        body, had_length = _read_body(rfile, headers, self.max_body)
        return _Request(method.upper(), target, version, headers, body, had_length)

    def _handle(self, conn: socket.socket, req: _Request, ex: Exchange) -> bool:
        """Apply the fault; True when the client connection stays open."""
        fault = ex.fault
        keep = req.keep_alive
        if fault is Fault.RESET:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if fault in _ANSWERED_BY_PROXY:
            status, reason = _ANSWERED_BY_PROXY[fault]
            headers = []
            if fault is Fault.HTTP_429:
                headers.append(("Retry-After", str(self.retry_after)))
            elif fault is Fault.HTTP_503 and self.retry_after_503 is not None:
                headers.append(("Retry-After", str(self.retry_after_503)))
            body = b'{"detail": "injected by faultproxy: %d"}' % status
            headers.append(("Content-Type", "application/json"))
            self._send(conn, req, _Response(status, reason, headers, body), close=not keep)
            ex.client_status = status
            return keep
        if fault is Fault.DELAY:
            if self._stop.wait(self.delay) or not self.delay_forwards:
                return False
        resp = self._forward(req, ex)
        if resp is None:              # upstream unreachable or broken: what a gateway does
            self._send_plain(conn, 502, "Bad Gateway", b"upstream failed\n", close=True, req=req)
            ex.client_status = 502
            return False
        if fault is Fault.DROP_AFTER:
            return False              # central answered; the client never hears it
        if fault is Fault.TRUNCATE:
            self._send(conn, req, resp, close=True, truncate=True)
            return False
        self._send(conn, req, resp, close=not keep)
        ex.client_status = resp.status
        return keep

    def _forward(self, req: _Request, ex: Exchange) -> _Response | None:
        try:
            upstream = socket.create_connection(self.target, timeout=self.upstream_timeout)
        except OSError:
            self._count("upstream_errors")
            return None
        self._track(upstream)
        rfile = None
        try:
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            lines = [f"{req.method} {req.target} HTTP/1.1"]
            lines += [f"{k}: {v}" for k, v in req.headers if k.lower() not in _HOP_BY_HOP]
            if req.body or req.had_length or req.method in ("POST", "PUT", "PATCH"):
                lines.append(f"Content-Length: {len(req.body)}")
            lines.append("Connection: close")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            upstream.sendall(head + req.body)
            ex.forwarded = True
            self._count("forwarded")
            rfile = upstream.makefile("rb")
            while True:
                status_line = rfile.readline(_MAX_LINE + 1)
                parts = status_line.decode("latin-1").split(None, 2)
                if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                    raise _BadMessage(f"bad status line {status_line[:80]!r}")
                status = int(parts[1])
                reason = parts[2].strip() if len(parts) > 2 else ""
                headers = _read_headers(rfile)
                if 100 <= status < 200 and status != 101:
                    continue          # 100 Continue and friends: not for the client
                break
            if req.method == "HEAD" or status in (204, 304):
                body = b""
            else:
                te = _header(headers, "transfer-encoding")
                if te is not None and te.lower().split(",")[-1].strip() == "chunked":
                    body = _read_chunked(rfile, self.max_body)
                elif _header(headers, "content-length") is not None:
                    body, _ = _read_body(rfile, headers, self.max_body)
                else:
                    body = rfile.read()   # until the upstream closes
            ex.upstream_status = status
            return _Response(status, reason, headers, body)
        except (OSError, _BadMessage, ValueError):
            self._count("upstream_errors")
            return None
        finally:
            if rfile is not None:
                rfile.close()
            self._untrack(upstream)

    def _send(self, conn: socket.socket, req: _Request, resp: _Response, *, close: bool,
              truncate: bool = False) -> None:
        lines = [f"HTTP/1.1 {resp.status} {resp.reason}".rstrip()]
        lines += [f"{k}: {v}" for k, v in resp.headers if k.lower() not in _HOP_BY_HOP]
        if req.method == "HEAD":
            length = _header(resp.headers, "content-length")
            if length is not None:
                lines.append(f"Content-Length: {length}")
        elif resp.status not in (204, 304) and not 100 <= resp.status < 200:
            lines.append(f"Content-Length: {len(resp.body)}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body = b"" if req.method == "HEAD" else resp.body
        if truncate:
            # Half the body; with no body, half the status line (a cut in the headers
            # would pass unnoticed: http.client takes EOF there as their end).
            data = head + body[: len(body) // 2] if body else head[: len(lines[0]) // 2]
        else:
            data = head + body
        conn.sendall(data)

    def _send_plain(self, conn, status: int, reason: str, body: bytes, *, close: bool,
                    req: _Request | None = None) -> None:
        fake = req or _Request("GET", "/", "HTTP/1.1", [], b"", False)
        try:
            self._send(conn, fake, _Response(status, reason,
                                             [("Content-Type", "text/plain")], body), close=close)
        except OSError:
            pass
