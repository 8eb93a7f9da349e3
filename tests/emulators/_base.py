"""Loopback HTTP server shared by the emulators: threading, fault injection, call log,
file store, and optional TLS interception (an HTTPS proxy that answers CONNECT for the
providers' real host names with a test certificate, so unmodified official clients that
hard-code https:// URLs reach the emulator through their own proxy/CA settings)."""
from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CERTS = Path(__file__).parent / "certs"
CA_FILE = str(CERTS / "ca.pem")
MAX_BODY = 64 * 1024 * 1024
FAULT_KINDS = {"429", "500", "502-ingress", "503-ingress", "504-ingress", "503", "reset",
               "drop-response", "hang", "malformed", "401", "404", "422"}


@dataclass
class Request:
    method: str
    path: str                 # service-relative path, no query
    query: dict               # first value of each query parameter
    headers: dict             # lower-case names
    body: bytes
    service: str              # which emulated host ("queue", "rest", ..., or "api")
    base: str                 # absolute URL of that host as the client reached it
    tls_host: str | None = None

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    stream: object = None     # an iterable of bytes: sent chunked, each part as it is produced

    @classmethod
    def json(cls, status: int, obj, **headers) -> Response:
        return cls(status, json.dumps(obj).encode(), "application/json", dict(headers))


class _Fault:
    def __init__(self, kind: str, count: int, opts: dict):
        self.kind, self.remaining, self.opts = kind, count, opts


class _SocketWriter:
    """wfile for a TLS socket: every write is a sendall."""

    def __init__(self, sock):
        self._sock, self.closed = sock, False

    def write(self, data):
        self._sock.sendall(data)
        return len(data)

    def flush(self):
        pass

    def close(self):
        self.closed = True


class _Handler(BaseHTTPRequestHandler):
    # headers and body go out in two writes: with Nagle on, the body would wait for the
    # client's delayed ACK (~40 ms). Production front ends run with TCP_NODELAY too.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end on their own
    _tls_host = None

    def log_message(self, *args):  # keep test output quiet
        pass

    def setup(self):
        super().setup()
        self.server.emulator._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        self.server.emulator._track(self.connection, False)

    def do_CONNECT(self):
        emu = self.server.emulator
        host = self.path.rpartition(":")[0]
        if host not in emu.tls_hosts:
            self._send(Response.json(403, {"detail": f"emulator does not intercept {host}"}))
            self.close_connection = True
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        try:
            tls = emu._ssl_context().wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        emu._track(self.connection, False)
        self.connection = self.request = tls
        emu._track(tls, True)
        self.rfile = tls.makefile("rb", -1)
        self.wfile = _SocketWriter(tls)
        self._tls_host = host
        self.close_connection = False
        while not self.close_connection and not emu.stop_event.is_set():
            try:
                self.handle_one_request()
            except (OSError, ssl.SSLError):
                break
        self.close_connection = True

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while total <= MAX_BODY:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                total += size
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY)) if length else b""

    def _dispatch(self):
        emu = self.server.emulator
        body = self._read_body()
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        service, path, base = emu._locate(self._tls_host, split.path, headers)
        req = Request(self.command, path, query, headers, body, service, base, self._tls_host)
        route, fn = emu._resolve(req)
        fault = emu._take_fault(route) if route else None
        entry = {"route": route, "method": req.method, "path": path, "service": service,
                 "time": time.time(), "fault": fault.kind if fault else None, "status": None}
        with emu.lock:
            emu.calls.append(entry)
        if fault and fault.kind == "hang":
            emu.stop_event.wait(min(float(fault.opts.get("seconds", emu.hang_seconds)),
                                    emu.hang_seconds))
            return self._reset(entry)
        if fault and fault.kind == "reset":
            return self._reset(entry)
        if fault and fault.kind != "drop-response":
            resp = emu._fault_response(fault, req)
        elif fn is None:
            resp = emu._not_found(req)
        else:
            try:
                resp = fn(req)
            except Exception as exc:  # noqa: BLE001 - an emulator bug must show up as a 500, not a hang
                resp = Response.json(500, {"detail": f"emulator error: {exc!r}"})
        if fault and fault.kind == "drop-response":
            return self._reset(entry)
        entry["status"] = resp.status
        self._send(resp)

    def _send(self, resp: Response):
        if resp.stream is not None:
            return self._send_stream(resp)
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def _send_stream(self, resp: Response):
        """Chunked transfer: each part of `resp.stream` goes out (and is flushed) at once."""
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for part in resp.stream:
                if part:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:                    # the client went away mid-stream
            self.close_connection = True

    def _reset(self, entry):
        """Close the connection with a TCP RST and no answer at all."""
        entry["status"] = "reset"
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class EmulatorBase:
    """Common machinery. Subclasses implement _locate, _resolve, _fault_response."""

    tls_hosts: frozenset = frozenset()

    def __init__(self, *, hang_seconds: float = 30.0, retry_after: str = "1"):
        self.hang_seconds = float(hang_seconds)
        self.retry_after = str(retry_after)
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self.calls: list[dict] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self.jobs: dict = {}
        self._plans: list[dict] = []
        self._conns: set = set()
        self._server = None
        self._thread = None
        self._ctx = None

    # job controls shared by both emulators (jobs carry start_at / finish_at) ------------
    def _plan_next(self, plan: dict, queue_seconds, run_seconds) -> None:
        """Queue the outcome of the next accepted submission (FIFO, one plan per job)."""
        if queue_seconds is not ...:
            plan["queue_seconds"] = queue_seconds
        if run_seconds is not ...:
            plan["run_seconds"] = run_seconds
        with self.lock:
            self._plans.append(plan)

    def start_job(self, job_id: str) -> None:
        """Move a job held in the queue (queue_seconds=None) to running now."""
        with self.lock:
            job = self.jobs[job_id]
            if job.start_at is None:
                job.start_at = time.monotonic()

    def finish_job(self, job_id: str) -> None:
        """Complete a job that runs until told (run_seconds=None) now."""
        with self.lock:
            job, now = self.jobs[job_id], time.monotonic()
            job.start_at = now if job.start_at is None else job.start_at
            job.finish_at = now

    def state(self, job_id: str) -> str:
        with self.lock:
            return self._state(self.jobs[job_id], time.monotonic())

    # lifecycle -----------------------------------------------------------------------
    def start(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.emulator = self
        self.port = self._server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving, releases hung handlers, and cuts open keep-alive connections."""
        self.stop_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            with self.lock:
                conns = list(self._conns)
            for conn in conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, conn, add: bool):
        with self.lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _ssl_context(self):
        if self._ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(CERTS / "server.pem"), str(CERTS / "server.key"))
            self._ctx = ctx
        return self._ctx

    # fault injection -----------------------------------------------------------------
    def inject(self, route: str, kind: str, count: int = 1, **opts) -> None:
        """Make the next `count` calls to `route` fail with `kind` (see README)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {sorted(FAULT_KINDS)}")
        if route not in self.routes:
            raise ValueError(f"unknown route {route!r}; use one of {sorted(self.routes)}")
        with self.lock:
            self._faults.setdefault(route, []).append(_Fault(kind, int(count), opts))

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def _take_fault(self, route: str):
        with self.lock:
            queue = self._faults.get(route) or []
            while queue and queue[0].remaining <= 0:
                queue.pop(0)
            if not queue:
                return None
            queue[0].remaining -= 1
            return queue[0]

    def count(self, route: str | None = None, *, method: str | None = None) -> int:
        """How many HTTP calls reached the emulator (faulted ones included)."""
        with self.lock:
            return sum(1 for c in self.calls if (route is None or c["route"] == route)
                       and (method is None or c["method"] == method))

    # file store ----------------------------------------------------------------------
    def _store(self, data: bytes, content_type: str, name: str) -> str:
        key = f"{uuid.uuid4().hex[:16]}/{name}"
        with self.lock:
            self.files[key] = (data, content_type)
        return key
