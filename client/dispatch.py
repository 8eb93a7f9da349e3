"""Jobs over several ComfyUI servers: shortest queue first, failover, resumable state.

One thread per server keeps that server's queue (every client's prompts, from GET /queue)
at `depth` prompts: it takes the next pending job only while no live server has a shorter
queue, uploads the job's image (once per server, content-named, into input/fluxfill_batch/),
posts the workflow, and collects each of its prompts when it leaves the queue (/history,
then GET /view of every output into DIR/outputs/). A hosted node's `report` output is read
through a PreviewAny node the runner adds (when the server has it): cost, request ids,
cached or not. A server that fails DEAD_AFTER calls in a row is dead: it gets no new jobs
and its unfinished ones go back to the front of the queue for the other servers. A job the
server's daily spend limit refused stays pending and that server gets no new jobs; when
every live server is at its limit the rest is held (pending) for a later run. Every state
change is appended to the manifest at once; a prompt's id is chosen and written before the
prompt is posted, so a killed runner's next run follows it instead of queueing it twice.
"""
import copy
import hashlib
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .batch_inputs import Row, upload_file
from .errors import RunnerError, Unreachable
from .runner import Client, format_execution_error, output_items, outcome_from_history

DEAD_AFTER = 3              # failed calls in a row
POLL_TIMEOUT = 10.0         # seconds for /queue and /history
MAX_ATTEMPTS = 3            # a job lost by servers this often fails
UPLOAD_FOLDER = "fluxfill_batch"
HOSTED_REPORTS = ("FalFill", "WaveSpeedFill")     # output 1 is the JSON report
REPORT_NODE = "fluxfill_report_"


@dataclass
class Job:
    row: Row
    name: str
    key: str
    prompt: dict                    # this job's workflow (image input not yet uploaded)
    estimate_usd: float | None = None
    status: str = "pending"         # pending | queued | done | failed
    server: str | None = None
    prompt_id: str | None = None
    outputs: list = field(default_factory=list)
    cost_usd: float | None = None
    request_ids: list = field(default_factory=list)
    cached: bool | None = None
    error: str | None = None
    moves: list = field(default_factory=list)     # servers it was moved away from
    attempts: int = 0
    seconds: float | None = None
    started: float | None = None    # monotonic time it was seen running
    submitted: float | None = None  # monotonic time of its /prompt
    skipped: str = ""               # outputs /prompt left out (validation errors)
    upload: Path | None = None      # the file uploaded for it (made once)

    def record(self) -> dict:
        return {"key": self.key, "index": self.row.index, "name": self.name, "input": str(self.row.image),
                "mask": None if self.row.mask is None else str(self.row.mask), "params": self.row.params(),
                "server": self.server, "prompt_id": self.prompt_id, "status": self.status,
                "outputs": self.outputs, "cost_usd": self.cost_usd, "estimate_usd": self.estimate_usd,
                "request_ids": self.request_ids, "cached": self.cached, "error": self.error,
                "moves": self.moves, "attempts": self.attempts, "seconds": self.seconds}


class Server:
    def __init__(self, url: str):
        self.client = Client(url)
        self.client.verbose = False
        self.url = self.client.server
        self.alive = True
        self.failures = 0
        self.queue_len = 0
        self.inflight: list[Job] = []
        self.uploaded: dict[Path, str] = {}
        self.reports = False        # PreviewAny is there to read hosted reports through
        self.limited = False        # its daily spend limit refused a job: no new jobs
        self.error = ""


def with_reports(prompt: dict) -> dict:
    """The workflow plus a PreviewAny on each hosted fill node's report (read back from /history)."""
    p = copy.deepcopy(prompt)
    for nid, node in prompt.items():
        if node["class_type"] in HOSTED_REPORTS:
            p[REPORT_NODE + nid] = {"class_type": "PreviewAny", "inputs": {"source": [nid, 1]},
                                    "_meta": {"title": f"FluxFill batch: report of node {nid}"}}
    return p


def read_reports(history: dict) -> tuple[float | None, list, bool | None]:
    """(cost, request ids, all cached) from the hosted reports in a prompt's outputs. The cost
    is what the results cost when they were made: a result from the cache (free now) counts
    with its original cost, so that a job's cost does not depend on which server ran it."""
    costs, ids, cached, seen = [], [], [], False
    for nid, out in (history.get("outputs") or {}).items():
        if not nid.startswith(REPORT_NODE):
            continue
        try:
            rep = json.loads((out.get("text") or [""])[0])
        except (ValueError, TypeError, IndexError):
            continue
        seen = True
        ids += [i for i in rep.get("request_ids") or [] if i]
        for r in rep.get("results") or []:
            cached.append(bool(r.get("cached")))
            costs.append(r.get("original_cost_usd") if r.get("cached") else r.get("cost_usd"))
    if not seen:
        return None, [], None
    cost = None if any(c is None for c in costs) else round(sum(costs), 6)
    return cost, ids, (all(cached) if cached else None)


class Dispatcher:
    def __init__(self, jobs: list[Job], servers: list[Server], *, out_dir: Path, target: str,
                 fixed: dict, manifest, bar, depth: int = 2, tick: float = 0.2,
                 job_timeout: float | None = None):
        self.jobs, self.servers, self.out_dir = jobs, servers, Path(out_dir)
        self.target, self.fixed, self.manifest, self.bar = target, fixed, manifest, bar
        self.depth, self.tick, self.job_timeout = max(1, depth), tick, job_timeout
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.crash: BaseException | None = None     # a server thread's unexpected error
        self.pending = deque(j for j in jobs if j.status == "pending")
        self.held: list[Job] = []   # left pending: every live server's daily spend limit is reached
        by_url = {s.url: s for s in servers}
        for j in jobs:              # queued by an earlier run: follow it where it is
            if j.status == "queued":
                srv = by_url.get(j.server)
                if srv is not None and srv.alive:
                    srv.inflight.append(j)
                else:
                    self._requeue(j, "its server is not in this run")

    # ------------------------------------------------------------------ shared state
    def finished(self) -> bool:
        with self.lock:
            return not self.pending and not any(s.inflight for s in self.servers)

    def take(self, srv: Server) -> Job | None:
        """The next job for srv, if no live server has a shorter queue."""
        with self.lock:
            if self.stop.is_set() or not self.pending or srv.limited:
                return None
            others = [s.queue_len for s in self.servers if s.alive and not s.limited and s is not srv]
            if others and srv.queue_len > min(others):
                return None
            job = self.pending.popleft()
            job.server, job.prompt_id, job.started = srv.url, None, None
            srv.inflight.append(job)
            return job

    def _requeue(self, job: Job, why: str, moved_from: str | None = None):
        with self.lock:
            if moved_from:
                job.moves.append(moved_from)
            if job.attempts >= MAX_ATTEMPTS:
                return self._fail(job, f"given up after {job.attempts} attempts ({why})")
            job.status, job.server, job.prompt_id, job.started = "pending", None, None, None
            self.pending.appendleft(job)
            self.manifest.append(job.record())

    def _fail(self, job: Job, error: str):
        job.status, job.error = "failed", error
        self.manifest.append(job.record())
        self.bar.job_failed(job.name, error)

    def _server_died(self, srv: Server, err: Exception):
        with self.lock:
            srv.alive, srv.error = False, str(err)
            moved, srv.inflight = srv.inflight, []
            for job in reversed(moved):
                self._requeue(job, f"server {srv.url} stopped answering", moved_from=srv.url)
            self.bar.note(f"server {srv.url} stopped answering ({err}); it gets no new jobs"
                          + (f", its {len(moved)} unfinished job(s) move to the other servers" if moved else ""))
            if any(s.alive for s in self.servers):
                self._hold_if_all_limited()
            else:
                while self.pending:
                    self._fail(self.pending.popleft(), f"no server left (the last one: {err})")

    def _hold_if_all_limited(self):
        """When every live server's daily spend limit is reached, the queued jobs stay pending
        (held, not failed: nothing was sent; the same command runs them when the limit allows)."""
        if self.pending and not any(s.alive and not s.limited for s in self.servers):
            for job in self.pending:
                job.error = job.error or "not run: every live server's daily spend limit is reached"
                self.manifest.append(job.record())
            self.held.extend(self.pending)
            self.pending.clear()

    def _limit_reached(self, srv: Server, job: Job, error: dict):
        message = (error.get("exception_message") or "").strip().splitlines()[0] if error else ""
        with self.lock:
            if job in srv.inflight:
                srv.inflight.remove(job)
            job.attempts = max(0, job.attempts - 1)      # refused before anything was sent
            job.status, job.server, job.prompt_id = "pending", None, None
            job.error = f"not run: {message}"
            if not srv.limited:
                srv.limited = True
                self.bar.note(f"server {srv.url}: the daily spend limit is reached, it gets no new jobs "
                              f"({message})")
            self.manifest.append(job.record())
            self.pending.appendleft(job)
            self._hold_if_all_limited()

    # ------------------------------------------------------------------ one server
    def serve(self, srv: Server):
        try:
            srv.reports = srv.client.has_node("PreviewAny")
        except (RunnerError, requests.RequestException):
            srv.reports = False
        while not self.stop.is_set() and not self.finished():
            if not srv.alive:
                return
            try:
                self._tick(srv)
                srv.failures = 0
            except (Unreachable, requests.RequestException) as e:
                srv.failures += 1
                if srv.failures >= DEAD_AFTER:
                    self._server_died(srv, e)
                    return
            except BaseException as e:  # noqa: BLE001 - a bug here ends the batch, in the main thread
                self.crash = e
                self.stop.set()
                return
            self.stop.wait(self.tick)

    def _tick(self, srv: Server):
        running, waiting = srv.client.queue_state(timeout=POLL_TIMEOUT)
        active = set(running) | set(waiting)
        srv.queue_len = len(active)
        now = time.monotonic()
        for job in list(srv.inflight):
            if not job.prompt_id:
                continue
            if job.prompt_id in running and job.started is None:
                job.started = now
            if job.prompt_id not in active:
                self._collect(srv, job)
            elif self.job_timeout and job.started and now - job.started > self.job_timeout:
                srv.client.interrupt(job.prompt_id)
                self._finish(srv, job, error=f"timed out after {self.job_timeout:.0f}s (--timeout); "
                                            "the prompt was interrupted")
        while srv.queue_len < self.depth:
            job = self.take(srv)
            if job is None:
                break
            self._submit(srv, job)
            srv.queue_len += 1

    def _upload(self, srv: Server, path: Path) -> str:
        if path not in srv.uploaded:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            name = f"{path.stem}-{digest}{path.suffix.lower()}"
            srv.uploaded[path] = srv.client.upload_image(path, name=name, subfolder=UPLOAD_FOLDER,
                                                         overwrite=True)
        return srv.uploaded[path]

    def _submit(self, srv: Server, job: Job):
        """Upload, then write the prompt id to the manifest BEFORE posting it: a runner killed
        in between finds the id on its next run and follows the prompt (or, if it never
        reached the server, queues it again), never queueing it twice."""
        try:
            if job.upload is None:
                job.upload = upload_file(job.row, self.out_dir / ".inputs")
            prompt = with_reports(job.prompt) if srv.reports else copy.deepcopy(job.prompt)
            prompt[self.target]["inputs"]["image"] = self._upload(srv, job.upload)
            for nid, path in self.fixed.items():
                prompt[nid]["inputs"]["image"] = self._upload(srv, path)
            with self.lock:
                job.prompt_id, job.status, job.error = str(uuid.uuid4()), "queued", None
                job.attempts += 1
                job.submitted = time.monotonic()
                self.manifest.append(job.record())
            srv.client.queue(prompt, prompt_id=job.prompt_id)
        except (Unreachable, requests.RequestException):
            with self.lock:
                if job in srv.inflight:
                    srv.inflight.remove(job)
                job.status, job.server, job.prompt_id = "pending", None, None
                self.pending.appendleft(job)
                self.manifest.append(job.record())
            raise
        except (RunnerError, OSError) as e:
            return self._finish(srv, job, error=str(e))
        job.skipped, srv.client.skipped = srv.client.skipped, ""

    def _collect(self, srv: Server, job: Job):
        h = srv.client.history(job.prompt_id, timeout=POLL_TIMEOUT)
        if not h or h.get("status", {}).get("completed") is None:
            with self.lock:
                srv.inflight.remove(job)
            return self._requeue(job, f"prompt {job.prompt_id} is not on {srv.url} (never queued, or the "
                                      "server restarted)")
        outcome = outcome_from_history(h)
        if outcome.status == "error" and "SpendLimitExceeded" in str((outcome.error or {}).get("exception_type")):
            return self._limit_reached(srv, job, outcome.error)
        if outcome.status == "error":
            return self._finish(srv, job, error=format_execution_error(outcome.error or {}, job.prompt))
        if outcome.status == "interrupted":
            return self._finish(srv, job, error=f"prompt {job.prompt_id} was interrupted on {srv.url}")
        dest = self.out_dir / "outputs"
        dest.mkdir(parents=True, exist_ok=True)
        saved = []
        for k, item in enumerate(output_items(h)):
            suffix = Path(item["filename"]).suffix
            path = srv.client.download(item, dest, name=f"{job.name}{'' if k == 0 else f'_{k}'}{suffix}")
            saved.append(str(path.relative_to(self.out_dir)))
        job.outputs = saved
        job.cost_usd, job.request_ids, job.cached = read_reports(h)
        self._finish(srv, job, error=("the server ran only the outputs that passed validation:\n"
                                      + job.skipped) if job.skipped else None)

    def _finish(self, srv: Server, job: Job, error: str | None = None):
        with self.lock:
            if job in srv.inflight:
                srv.inflight.remove(job)
            if job.submitted is not None:
                job.seconds = round(time.monotonic() - job.submitted, 3)
            if error:
                return self._fail(job, error)
            job.status, job.error = "done", None
            self.manifest.append(job.record())
            self.bar.job_done(0.0 if job.cached else job.cost_usd)     # spend: new requests only

    # ------------------------------------------------------------------ the whole batch
    def run(self):
        threads = [threading.Thread(target=self.serve, args=(s,), name=f"batch:{s.url}", daemon=True)
                   for s in self.servers if s.alive]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.2)
        except KeyboardInterrupt:
            self.stop.set()
            for t in threads:
                t.join(2.0)          # a submit under way ends first, so that it is interrupted too
            self.interrupt_all()
            raise
        if self.crash is not None:
            self.interrupt_all()
            raise self.crash

    def interrupt_all(self):
        """Ctrl-C: drop our queued prompts and interrupt the running ones; they stay pending."""
        for srv in self.servers:
            if not srv.alive:
                continue
            client = Client(srv.url, timeout=5)
            for job in list(srv.inflight):
                if job.prompt_id:
                    client.interrupt(job.prompt_id)
                job.status, job.prompt_id, job.server = "pending", None, None
                self.manifest.append(job.record())
