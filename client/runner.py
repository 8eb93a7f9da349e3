"""Run an API-format workflow on a ComfyUI server: the logic behind `run.py`.

Pure: no comfy imports. HTTP through `requests` (every call has a timeout), the progress
websocket through aiohttp's client (ComfyUI ships aiohttp, so the pack adds no websocket
library). The flow is the one ComfyUI's own API examples use: connect /ws?clientId=ID first,
then POST /prompt with that client_id (so no message can be missed), follow the messages
until the prompt succeeds, fails or is interrupted, then read /history and GET /view each
output file. If the websocket cannot be opened the runner polls /history instead.
"""
import asyncio
import json
import re
import struct
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

from .errors import EXIT_INTERRUPTED, EXIT_TIMEOUT, RunnerError, Unreachable
from .progress import Progress

HTTP_TIMEOUT = 30.0          # seconds for each ordinary HTTP call
DOWNLOAD_TIMEOUT = 120.0     # seconds for each output download
BINARY_TEXT = 3              # protocol.BinaryEventTypes.TEXT (progress text on a node)


# ---------------------------------------------------------------- server calls

class Client:
    """The few ComfyUI HTTP routes the runner needs; every call has a timeout."""

    def __init__(self, server: str, client_id: str | None = None, timeout: float = HTTP_TIMEOUT):
        self.server = server.rstrip("/")
        if "://" not in self.server:
            self.server = "http://" + self.server
        self.client_id = client_id or uuid.uuid4().hex
        self.timeout = timeout
        self.session = requests.Session()
        self.prompt_id: str | None = None      # set once /prompt accepted ours
        self.closed = False                     # tells a polling thread to stop
        self.skipped = ""                       # node errors of outputs /prompt left out
        self.verbose = True                     # print what /prompt left out (batch mode: no)

    def _call(self, method: str, path: str, timeout=None, **kw) -> requests.Response:
        try:
            return self.session.request(method, self.server + path, timeout=timeout or self.timeout, **kw)
        except requests.ConnectionError as e:
            raise Unreachable(f"cannot reach ComfyUI at {self.server} ({e.__class__.__name__}); "
                              "is it running? pass --server URL") from None
        except requests.Timeout:
            raise Unreachable(f"ComfyUI at {self.server} did not answer {method} {path} "
                              f"within {timeout or self.timeout:.0f}s") from None

    def has_node(self, class_type: str) -> bool:
        r = self._call("GET", f"/object_info/{class_type}")
        return r.status_code == 200 and class_type in (r.json() or {})

    def spend_limit(self) -> dict | None:
        """The pack's daily spend limit on this server (GET /fluxfill/limit: limit_usd,
        today_usd, source, ...); None when the server's pack has no such route."""
        r = self._call("GET", "/fluxfill/limit", timeout=10)
        return r.json() if r.status_code == 200 else None

    def check(self):
        r = self._call("GET", "/system_stats")
        if r.status_code != 200:
            raise RunnerError(f"{self.server} does not look like ComfyUI (/system_stats: {r.status_code})")

    def upload_image(self, path: Path, *, name: str | None = None, subfolder: str = "",
                     overwrite: bool = False) -> str:
        """Upload to input/[subfolder/] (as `name`, default the file's); returns the value for
        a LoadImage `image` input."""
        with open(path, "rb") as f:
            r = self._call("POST", "/upload/image", files={"image": (name or path.name, f)},
                           data={"type": "input", "overwrite": "true" if overwrite else "false",
                                 "subfolder": subfolder}, timeout=DOWNLOAD_TIMEOUT)
        if r.status_code != 200:
            raise RunnerError(f"uploading {path} failed: HTTP {r.status_code} {r.text[:300]}")
        ans = r.json()
        return f"{ans['subfolder']}/{ans['name']}" if ans.get("subfolder") else ans["name"]

    def queue_state(self, timeout: float | None = None) -> tuple[list[str], list[str]]:
        """(running, pending) prompt ids of the server's queue, every client's."""
        r = self._call("GET", "/queue", timeout=timeout)
        if r.status_code != 200:
            raise RunnerError(f"{self.server}/queue answered HTTP {r.status_code}")
        q = r.json()
        return ([item[1] for item in q.get("queue_running", [])],
                [item[1] for item in q.get("queue_pending", [])])

    def queue(self, prompt: dict, prompt_id: str | None = None) -> dict:
        """POST /prompt; `prompt_id` (ours, chosen before sending) or the server's."""
        body = {"prompt": prompt, "client_id": self.client_id}
        if prompt_id:
            body["prompt_id"] = prompt_id
        r = self._call("POST", "/prompt", json=body)
        try:
            ans = r.json()
        except ValueError:
            raise RunnerError(f"/prompt answered HTTP {r.status_code}: {r.text[:500]}") from None
        if r.status_code != 200 or "prompt_id" not in ans:
            raise RunnerError("the server rejected the workflow:\n" + format_prompt_error(ans, prompt))
        self.prompt_id = ans["prompt_id"]
        if ans.get("node_errors"):   # 200 all the same: the outputs that validated were queued
            self.skipped = format_prompt_error({"node_errors": ans["node_errors"]}, prompt)
            if self.verbose:
                print("validation left some outputs out (the rest runs):\n" + self.skipped, file=sys.stderr)
        return ans

    def history(self, prompt_id: str, timeout: float | None = None) -> dict | None:
        r = self._call("GET", f"/history/{prompt_id}", timeout=timeout)
        return r.json().get(prompt_id) if r.status_code == 200 else None

    def interrupt(self, prompt_id: str | None):
        """Stop our prompt: drop it from the queue if pending, interrupt it if running."""
        try:
            if prompt_id:
                self._call("POST", "/queue", json={"delete": [prompt_id]}, timeout=10)
            self._call("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {}, timeout=10)
        except RunnerError as e:
            print(f"could not interrupt: {e}", file=sys.stderr)

    def download(self, item: dict, out_dir: Path, name: str | None = None) -> Path:
        """GET /view of one output into out_dir (as `name`, default the server's file name;
        never overwriting: a _1, _2 ... suffix is added)."""
        params = {"filename": item["filename"], "subfolder": item.get("subfolder", ""),
                  "type": item.get("type", "output")}
        r = self._call("GET", "/view", params=params, timeout=DOWNLOAD_TIMEOUT, stream=True)
        if r.status_code != 200:
            raise RunnerError(f"downloading {params} failed: HTTP {r.status_code}")
        dest = unique_path(out_dir / (name or Path(item["filename"]).name))
        part = dest.with_name(dest.name + ".part")     # a broken download leaves no half file
        try:
            with open(part, "wb") as f:
                for chunk in r.iter_content(1 << 16):
                    f.write(chunk)
            part.replace(dest)
        finally:
            part.unlink(missing_ok=True)
        return dest


def unique_path(p: Path) -> Path:
    n = 1
    stem, suffix = p.stem, p.suffix
    while p.exists():
        p = p.with_name(f"{stem}_{n}{suffix}")
        n += 1
    return p


def format_prompt_error(ans: dict, prompt: dict) -> str:
    """The /prompt answer's error and every node's errors, one line each."""
    lines = []
    err = ans.get("error")
    if isinstance(err, dict):
        lines.append(f"  {err.get('message', '')}" + (f": {err['details']}" if err.get("details") else ""))
    elif err:
        lines.append(f"  {err}")
    for nid, ne in (ans.get("node_errors") or {}).items():
        ctype = ne.get("class_type") or prompt.get(nid, {}).get("class_type", "?")
        for e in ne.get("errors", []):
            info = e.get("extra_info") or {}
            where = f" [input '{info['input_name']}']" if info.get("input_name") else ""
            lines.append(f"  node {nid} ({ctype}){where}: {e.get('message', '')}"
                         + (f": {e['details']}" if e.get("details") else ""))
    return "\n".join(lines) or json.dumps(ans)[:1000]


def output_items(history: dict) -> list[dict]:
    """Every file entry ({filename, subfolder, type}) in a finished prompt's outputs."""
    items = []
    for out in (history.get("outputs") or {}).values():
        for value in out.values():
            if isinstance(value, list):
                items += [v for v in value if isinstance(v, dict) and "filename" in v]
    return items


# ---------------------------------------------------------------- websocket frames

def parse_binary(data: bytes):
    """(node_id, text) for a progress-text frame; None for previews and anything else."""
    if len(data) < 8 or struct.unpack(">I", data[:4])[0] != BINARY_TEXT:
        return None
    n = struct.unpack(">I", data[4:8])[0]
    return data[8:8 + n].decode("utf-8", "replace"), data[8 + n:].decode("utf-8", "replace")


# ---------------------------------------------------------------- the run

@dataclass
class Outcome:
    status: str                     # "success" | "error" | "interrupted"
    error: dict | None = None       # the execution_error message


async def _follow_ws(ws, client: Client, prompt: dict, progress: Progress) -> Outcome:
    """Queue the prompt on an open websocket and follow it to its end."""
    import aiohttp
    queued = await asyncio.to_thread(client.queue, prompt)
    pid = queued["prompt_id"]
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.BINARY:
            parsed = parse_binary(msg.data)
            if parsed and parsed[0] in prompt:
                progress.progress_text(*parsed)
            continue
        if msg.type != aiohttp.WSMsgType.TEXT:
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
            continue
        m = json.loads(msg.data)
        kind, data = m.get("type"), m.get("data") or {}
        if data.get("prompt_id") not in (None, pid):
            continue
        if kind == "executing":
            if data.get("node") is None and data.get("prompt_id") == pid:
                return Outcome("success")
            progress.executing(data.get("node"))
        elif kind == "execution_cached":
            progress.cached(data.get("nodes") or [])
        elif kind == "progress":
            progress.step(data.get("node"), data.get("value", 0), data.get("max", 0))
        elif kind == "execution_success":
            return Outcome("success")
        elif kind == "execution_error":
            return Outcome("error", data)
        elif kind == "execution_interrupted":
            return Outcome("interrupted", data)
    # the socket closed early: the history has the answer
    return await asyncio.to_thread(_poll, client, pid)


def _poll(client: Client, pid: str) -> Outcome:
    while not client.closed:
        h = client.history(pid)
        if h and h.get("status", {}).get("completed") is not None:
            return outcome_from_history(h)
        time.sleep(0.25)
    raise asyncio.CancelledError()


def outcome_from_history(h: dict) -> Outcome:
    for kind, data in h.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return Outcome("error", data)
        if kind == "execution_interrupted":
            return Outcome("interrupted", data)
    return Outcome("success" if h["status"].get("status_str") != "error" else "error")


async def _run_async(client: Client, prompt: dict, progress: Progress) -> Outcome:
    import aiohttp
    ws_url = client.server.replace("http", "ws", 1) + f"/ws?clientId={client.client_id}"
    timeout = aiohttp.ClientTimeout(total=None, connect=HTTP_TIMEOUT, sock_connect=HTTP_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.ws_connect(ws_url, heartbeat=30, max_msg_size=0) as ws:
                return await _follow_ws(ws, client, prompt, progress)
    except (aiohttp.ClientError, OSError) as e:
        if client.prompt_id:
            print(f"(websocket lost: {e}; polling /history instead)", file=sys.stderr)
        else:
            print(f"(no websocket: {e}; polling /history instead)", file=sys.stderr)
            await asyncio.to_thread(client.queue, prompt)
        return await asyncio.to_thread(_poll, client, client.prompt_id)


def run(workflow: dict, server: str, out_dir, timeout: float | None = None,
        stream=sys.stderr) -> list[Path]:
    """Queue `workflow` (API format, already edited), follow it, download its outputs.
    Raises RunnerError (with exit code) on failure; Ctrl-C interrupts the prompt on the server."""
    client = Client(server)
    client.check()
    progress = Progress(workflow, stream)

    async def main():
        try:
            return await asyncio.wait_for(_run_async(client, workflow, progress), timeout)
        finally:
            client.closed = True

    try:
        outcome = asyncio.run(main())
    except (asyncio.TimeoutError, TimeoutError):
        progress.close()
        client.interrupt(client.prompt_id)
        raise RunnerError(f"timed out after {timeout:.0f}s (--timeout); the prompt was interrupted",
                          EXIT_TIMEOUT) from None
    except KeyboardInterrupt:
        progress.close()
        stream.write("\ninterrupted: stopping the prompt on the server\n")
        client.interrupt(client.prompt_id)
        raise RunnerError("interrupted by the user", EXIT_INTERRUPTED) from None
    if outcome.status == "success":
        progress.finish()
    else:
        progress.close()
    pid = client.prompt_id
    if outcome.status == "error":
        raise RunnerError(format_execution_error(outcome.error or {}, workflow))
    if outcome.status == "interrupted":
        raise RunnerError(f"prompt {pid} was interrupted on the server", EXIT_INTERRUPTED)
    history = _wait_history(client, pid)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = [client.download(item, out_dir) for item in output_items(history)]
    if client.skipped:
        raise RunnerError("the server ran only the outputs that passed validation:\n" + client.skipped,
                          saved=saved)
    return saved


def _wait_history(client: Client, pid: str, wait: float = 10.0) -> dict:
    """History is written just after the last websocket message: allow a moment."""
    deadline = time.monotonic() + wait
    while True:
        h = client.history(pid)
        if h and h.get("status", {}).get("completed") is not None:
            return h
        if time.monotonic() > deadline:
            raise RunnerError(f"prompt {pid} finished but /history/{pid} has no record of it")
        time.sleep(0.1)


def format_execution_error(err: dict, prompt: dict) -> str:
    nid = err.get("node_id", "?")
    ntype = err.get("node_type") or prompt.get(str(nid), {}).get("class_type", "?")
    msg = f"node {nid} ({ntype}) failed: {err.get('exception_type', 'error')}: " \
          f"{err.get('exception_message', '').strip()}"
    frames = FRAME.findall("".join(err.get("traceback") or []))
    if frames:
        path, line, function = frames[-1]
        msg += f"\n  raised at {server_file(path)}:{line} in {function}"
    return msg


FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def server_file(path: str) -> str:
    """A file of the server named without the server machine's folders: from custom_nodes/
    (a pack's file) or from the ComfyUI folder's own top-level modules, else its name."""
    parts = path.replace("\\", "/").split("/")
    if "custom_nodes" in parts:
        return "/".join(parts[parts.index("custom_nodes"):])
    for top in ("comfy", "comfy_extras", "comfy_api", "comfy_execution"):
        if top in parts:
            return "/".join(parts[len(parts) - 1 - parts[::-1].index(top):])
    return parts[-1]
