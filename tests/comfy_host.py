"""Real ComfyUI hosts for the tests: a base directory with the pack linked in, a server
process on 127.0.0.1 and an HTTP client for it. Nothing here imitates ComfyUI."""
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TEST_PACKS = Path(__file__).resolve().parent / "packs"


def comfy_dir() -> Path:
    """The ComfyUI under test (scripts/test.sh sets FLUXFILL_COMFYUI once per host)."""
    d = os.environ.get("FLUXFILL_COMFYUI")
    if not d or not (Path(d) / "main.py").is_file():
        raise RuntimeError(
            "FLUXFILL_COMFYUI must name a ComfyUI folder (main.py): run the tests with `make test`, "
            "which sets up the hosts and runs the suite against each of them")
    return Path(d).resolve()


def make_base_dir(base: Path, test_packs: bool = True) -> Path:
    """A ComfyUI --base-directory with FluxFill (and the test-only packs) in custom_nodes."""
    for sub in ("custom_nodes", "models/loras", "models/diffusion_models", "models/vae",
                "models/text_encoders", "input", "output", "user", "temp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / "ComfyUI-FluxFill"
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    if test_packs and TEST_PACKS.is_dir():
        for pack in sorted(TEST_PACKS.iterdir()):
            if (pack / "__init__.py").is_file() and not (base / "custom_nodes" / pack.name).exists():
                (base / "custom_nodes" / pack.name).symlink_to(pack, target_is_directory=True)
    return base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """`python main.py` of the host under test, on 127.0.0.1 and a free port; `args` are more
    command-line arguments for main.py (e.g. ["--front-end-root", DIR])."""

    def __init__(self, base: Path, env: dict | None = None, port: int | None = None,
                 args: list[str] | None = None):
        self.base = Path(base)
        self.env = dict(env or {})
        self.args = [str(a) for a in args or []]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / f"server-{self.port}.log"
        self.proc = None
        self.client_id = uuid.uuid4().hex

    def start(self, timeout: float = 180.0):
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--disable-auto-launch",
               "--database-url", f"sqlite:///{self.base}/comfyui.db", *self.args]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=comfy_dir(), env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/system_stats", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self, kill: bool = False):
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    # --- HTTP API ---
    def get(self, path: str, **kw):
        r = requests.get(self.url + path, timeout=kw.pop("timeout", 30), **kw)
        r.raise_for_status()
        return r

    def object_info(self, node: str | None = None) -> dict:
        return self.get("/object_info" + (f"/{node}" if node else "")).json()

    def queue(self, prompt: dict, extra: dict | None = None) -> dict:
        """POST /prompt; returns the JSON answer (with prompt_id, or error + node_errors)."""
        body = {"prompt": prompt, "client_id": self.client_id, **(extra or {})}
        r = requests.post(self.url + "/prompt", json=body, timeout=30)
        data = r.json()
        data["_status"] = r.status_code
        return data

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI died:\n{self.log_tail()}")
            h = self.get(f"/history/{prompt_id}").json()
            if prompt_id in h and h[prompt_id].get("status", {}).get("completed") is not None:
                st = h[prompt_id]["status"]
                if st.get("status_str") in ("success", "error") or st.get("completed"):
                    return h[prompt_id]
            time.sleep(0.1)
        raise TimeoutError(f"prompt {prompt_id} not done after {timeout}s:\n{self.log_tail()}")

    def run(self, prompt: dict, timeout: float = 300.0) -> dict:
        """Queue a prompt and wait for it; raises with the node errors if it does not start."""
        ans = self.queue(prompt)
        if "prompt_id" not in ans or ans.get("node_errors"):
            raise AssertionError("prompt rejected: " + json.dumps(ans, indent=1))
        return self.wait(ans["prompt_id"], timeout)

    def interrupt(self):
        requests.post(self.url + "/interrupt", json={}, timeout=10)

    def upload_image(self, path: Path, subfolder: str = "") -> str:
        with open(path, "rb") as f:
            r = requests.post(self.url + "/upload/image", files={"image": (Path(path).name, f, "image/png")},
                              data={"overwrite": "true", "subfolder": subfolder}, timeout=30)
        r.raise_for_status()
        return r.json()["name"]

    def output_files(self, history: dict) -> list[Path]:
        files = []
        for out in history.get("outputs", {}).values():
            for img in out.get("images", []):
                kind = img.get("type", "output")
                files.append(self.base / kind / img.get("subfolder", "") / img["filename"])
        return files


def execution_error(history: dict) -> dict | None:
    """The execution_error message of a finished prompt (None when it succeeded)."""
    for kind, data in history.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return data
    return None


def was_interrupted(history: dict) -> bool:
    return any(kind == "execution_interrupted" for kind, _ in history.get("status", {}).get("messages", []))


def combo_options(entry) -> list:
    """The choices of a combo input spec in either shape: V1 ([...], {...}) or V3 ("COMBO", {"options": [...]})."""
    kind, opts = entry[0], entry[1] if len(entry) > 1 else {}
    return list(opts["options"]) if kind == "COMBO" else list(kind)
