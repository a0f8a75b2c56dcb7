"""The fault proxy (tests/faultproxy.py) against a small real HTTP server: each fault does
what it says, keep-alive survives where it should, and the proxy stops cleanly."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.faultproxy import Fault, FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        with server.lock:
            server.seen.append({"method": self.command, "path": self.path, "body": body,
                                "headers": dict(self.headers)})
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/nocontent"):
            self.send_response(204)
            self.end_headers()
            return
        payload = json.dumps({"path": self.path, "received": len(body),
                              "echo": body[:64].decode("latin-1"),
                              "pad": "x" * 200}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_HEAD = _answer


class _Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: list[dict] = []

    def paths(self) -> list[str]:
        with self.lock:
            return [r["path"] for r in self.seen]


@pytest.fixture
def upstream():
    server = _Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def proxy(upstream):
    with FaultProxy(("127.0.0.1", upstream.server_port), delay=1.0) as p:
        yield p


def _session() -> requests.Session:
    return requests.Session()


def test_pass_through_keeps_the_connection_alive(upstream, proxy):
    with _session() as s:
        for i in range(5):
            r = s.post(f"{proxy.url}/ingest?i={i}", data=b"payload-%d" % i, timeout=5)
            assert r.status_code == 201
            assert r.json()["received"] == len(b"payload-%d" % i)
            assert r.headers.get("Connection", "").lower() != "close"
    assert upstream.paths() == [f"/ingest?i={i}" for i in range(5)]
    c = proxy.counters
    assert c["requests"] == 5 and c["pass"] == 5 and c["forwarded"] == 5
    assert c["connections"] == 1          # one client connection, reused
    assert proxy.injected() == 0


def test_body_headers_and_chunked_request_are_forwarded_intact(upstream, proxy):
    big = bytes(range(256)) * 4096        # 1 MiB, binary
    with _session() as s:
        r = s.post(f"{proxy.url}/big", data=gzip.compress(big), timeout=10,
                   headers={"Content-Encoding": "gzip", "Authorization": "Bearer t0k"})
        assert r.status_code == 201
        r = s.post(f"{proxy.url}/gen", data=iter([b"ab", b"cd", b"ef"]), timeout=5)  # chunked
        assert r.json()["received"] == 6 and r.json()["echo"] == "abcdef"
    first = upstream.seen[0]
    assert gzip.decompress(first["body"]) == big
    assert first["headers"]["Content-Encoding"] == "gzip"
    assert first["headers"]["Authorization"] == "Bearer t0k"
    assert upstream.seen[1]["headers"].get("Transfer-Encoding") is None


def test_chunked_and_bodiless_responses_reach_the_client(upstream, proxy):
    with _session() as s:
        assert s.get(f"{proxy.url}/chunked", timeout=5).text == "hello chunked world"
        assert s.get(f"{proxy.url}/nocontent", timeout=5).status_code == 204
        head = s.head(f"{proxy.url}/x", timeout=5)
        assert head.status_code == 200 and head.content == b""
        assert s.get(f"{proxy.url}/after", timeout=5).json()["path"] == "/after"
    assert proxy.counters["connections"] == 1


def test_reset_before_forwarding(upstream, proxy):
    proxy.schedule(Fault.RESET)
    with _session() as s:
        with pytest.raises(requests.ConnectionError):
            s.post(f"{proxy.url}/ingest", data=b"x", timeout=5)
        assert upstream.paths() == []          # never forwarded
        assert s.post(f"{proxy.url}/ingest", data=b"y", timeout=5).status_code == 201
    assert proxy.counters["reset"] == 1
    assert proxy.log[0].fault is Fault.RESET and not proxy.log[0].forwarded


def test_drop_after_upstream_answered(upstream, proxy):
    proxy.schedule("drop_after")
    with _session() as s:
        with pytest.raises(requests.ConnectionError):
            s.post(f"{proxy.url}/ingest", data=b"committed", timeout=5)
        # central saw (and answered) the request; the client never heard the answer
        assert upstream.paths() == ["/ingest"]
        assert upstream.seen[0]["body"] == b"committed"
        assert proxy.log[0].upstream_status == 201 and proxy.log[0].client_status is None
        assert s.get(f"{proxy.url}/next", timeout=5).status_code == 200
    assert proxy.counters["drop_after"] == 1


def test_truncated_response_body(upstream, proxy):
    proxy.schedule(Fault.TRUNCATE, Fault.TRUNCATE)
    with _session() as s:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            s.post(f"{proxy.url}/ingest", data=b"x", timeout=5)
        # streamed: the status and headers arrive, the body is cut short
        r = s.get(f"{proxy.url}/ingest", timeout=5, stream=True)
        assert r.status_code == 200
        expected = int(r.headers["Content-Length"])
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            r.content
        assert s.get(f"{proxy.url}/ok", timeout=5).status_code == 200
    assert expected > 0
    assert upstream.paths() == ["/ingest", "/ingest", "/ok"]
    assert proxy.counters["truncate"] == 2


def test_truncate_with_an_empty_body_cuts_the_status_line(upstream, proxy):
    proxy.schedule(Fault.TRUNCATE)
    with _session() as s:
        with pytest.raises(requests.ConnectionError):
            s.get(f"{proxy.url}/nocontent", timeout=5)
    assert upstream.paths() == ["/nocontent"]


def test_delay_beyond_the_client_timeout_then_forwarded(upstream, proxy):
    proxy.schedule(Fault.DELAY)
    started = time.monotonic()
    with _session() as s:
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.post(f"{proxy.url}/late", data=b"x", timeout=(2, 0.3))
        assert upstream.paths() == []          # not yet
    assert proxy.wait_idle(5)
    assert time.monotonic() - started >= 1.0
    assert upstream.paths() == ["/late"]        # central got it after the client gave up
    assert proxy.counters["delay"] == 1


def test_delay_without_forwarding(upstream):
    with FaultProxy(("127.0.0.1", upstream.server_port), script=["delay"], delay=0.5,
                    delay_forwards=False) as proxy:
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{proxy.url}/lost", timeout=(2, 3))
        assert proxy.wait_idle(5)
    assert upstream.paths() == []


@pytest.mark.parametrize("fault,status", [("500", 500), ("502", 502), ("503", 503)])
def test_server_errors_answered_by_the_proxy(upstream, proxy, fault, status):
    proxy.schedule(fault)
    with _session() as s:
        r = s.post(f"{proxy.url}/ingest", data=b"x", timeout=5)
        assert r.status_code == status
        assert "Retry-After" not in r.headers
        assert s.post(f"{proxy.url}/ingest", data=b"y", timeout=5).status_code == 201
    assert upstream.paths() == ["/ingest"]       # only the second one
    assert proxy.counters[fault] == 1 and proxy.counters["connections"] == 1


def test_429_and_503_with_retry_after(upstream):
    with FaultProxy(("127.0.0.1", upstream.server_port), script=[Fault.HTTP_429, "503"],
                    retry_after=7, retry_after_503=3) as proxy, _session() as s:
        r = s.get(f"{proxy.url}/a", timeout=5)
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        r = s.get(f"{proxy.url}/b", timeout=5)
        assert r.status_code == 503 and r.headers["Retry-After"] == "3"
        assert s.get(f"{proxy.url}/c", timeout=5).status_code == 200
    assert upstream.paths() == ["/c"]


def test_random_faults_are_seeded_and_follow_the_rates(upstream):
    rates = {"reset": 0.1, "drop_after": 0.1, "503": 0.1, "429": 0.1}

    def run(seed):
        with FaultProxy(("127.0.0.1", upstream.server_port), rates=rates, seed=seed,
                        retry_after=0) as proxy, _session() as s:
            for i in range(200):
                try:
                    s.get(f"{proxy.url}/r{i}", timeout=5)
                except requests.ConnectionError:
                    pass
            return [e.fault for e in proxy.log], proxy.counters

    seq1, c1 = run(42)
    seq2, _ = run(42)
    seq3, _ = run(43)
    assert seq1 == seq2 and seq1 != seq3
    assert len(seq1) == 200
    for name in rates:
        assert 5 <= c1[name] <= 40, (name, c1)
    assert c1["pass"] == 200 - sum(c1[n] for n in rates)


def test_match_limits_faults_to_some_requests(upstream):
    with FaultProxy(("127.0.0.1", upstream.server_port), script=["500"],
                    match=lambda method, path: method == "POST") as proxy, _session() as s:
        assert s.get(f"{proxy.url}/questionnaire", timeout=5).status_code == 200
        assert s.post(f"{proxy.url}/ingest", data=b"x", timeout=5).status_code == 500
    assert proxy.counters["500"] == 1 and proxy.counters["pass"] == 1


def test_upstream_down_gives_502(upstream):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]          # nothing listens there
    with FaultProxy(("127.0.0.1", dead_port)) as proxy:
        assert requests.get(f"{proxy.url}/x", timeout=5).status_code == 502
    assert proxy.counters["upstream_errors"] == 1


def test_only_loopback():
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(("8.8.8.8", 80))
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(("127.0.0.1", 80), listen=("0.0.0.0", 0))
    FaultProxy("http://localhost:8000")          # fine, not started


def test_many_clients_at_once_and_a_clean_stop(upstream):
    proxy = FaultProxy(("127.0.0.1", upstream.server_port), max_connections=4,
                       rates={"500": 0.2}, seed=1).start()
    url = proxy.url
    errors: list[BaseException] = []

    def client(n):
        try:
            with _session() as s:
                for i in range(20):
                    assert s.get(f"{url}/c{n}/{i}", timeout=10).status_code in (200, 500)
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert proxy.counters["requests"] == 200
    # a keep-alive client still connected and a delayed request in flight do not block stop()
    idle = socket.create_connection(proxy.address)
    proxy.schedule("delay")
    proxy.delay = 30
    hanging = threading.Thread(target=lambda: _swallow(lambda: requests.get(f"{url}/h",
                                                                            timeout=60)))
    hanging.start()
    time.sleep(0.2)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 3
    hanging.join(5)
    assert not hanging.is_alive()
    assert idle.recv(1) == b""
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1)
    assert not [t for t in threading.enumerate() if t.name.startswith("faultproxy")]


def _swallow(fn):
    try:
        fn()
    except requests.RequestException:
        pass
