"""DIR/manifest.jsonl: one JSON line per job, what makes a batch resumable.

A line: {key, index, name, input, mask, params, server, prompt_id, status, outputs,
cost_usd, estimate_usd, request_ids, cached, error, moves, attempts, seconds}.
`key` is the job's identity (its workflow with the image named by content hash, see
batch_inputs.job_key); `status` is "pending", "queued" (on `server` as `prompt_id`),
"done" or "failed". While a batch runs, a job's new state is appended as a new line (one
write of one line; the last line of a key wins, a torn last line is skipped); the file is
rewritten with exactly one line per job when the batch starts and when it ends.
Paths (input, mask, outputs) are as given on the command line / relative to DIR.
"""
import csv
import json
import os
import threading
from pathlib import Path

FILE = "manifest.jsonl"
RESULTS = "results.csv"
FIELDS = ("key", "index", "name", "input", "mask", "params", "server", "prompt_id", "status",
          "outputs", "cost_usd", "estimate_usd", "request_ids", "cached", "error", "moves",
          "attempts", "seconds")


class Manifest:
    def __init__(self, out_dir: Path):
        self.dir = Path(out_dir)
        self.path = self.dir / FILE
        self._lock = threading.Lock()

    def load(self) -> dict:
        """{key: the latest line of that job} from an earlier run ({} when there is none)."""
        found = {}
        if not self.path.is_file():
            return found
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue        # a line torn by a crash
                if isinstance(rec, dict) and rec.get("key"):
                    found[rec["key"]] = rec
        return found

    def append(self, rec: dict) -> None:
        line = (json.dumps({k: rec.get(k) for k in FIELDS}, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def rewrite(self, recs: list[dict]) -> None:
        """Exactly one line per job, atomically (a temporary file, then a rename)."""
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                for rec in recs:
                    f.write(json.dumps({k: rec.get(k) for k in FIELDS}, ensure_ascii=False) + "\n")
            os.replace(tmp, self.path)


def write_results(out_dir: Path, recs: list[dict]) -> Path:
    """DIR/results.csv: one row per job, for a spreadsheet."""
    path = Path(out_dir) / RESULTS
    cols = ["index", "name", "status", "input", "mask", "prompt", "seed", "params", "server",
            "prompt_id", "outputs", "cost_usd", "estimate_usd", "cached", "request_ids", "error"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in recs:
            params = dict(r.get("params") or {})
            prompt, seed = params.pop("prompt", ""), params.pop("seed", "")
            w.writerow([r.get("index"), r.get("name"), r.get("status"), r.get("input"), r.get("mask") or "",
                        prompt, seed, json.dumps(params) if params else "", r.get("server") or "",
                        r.get("prompt_id") or "", ";".join(r.get("outputs") or []),
                        "" if r.get("cost_usd") is None else r["cost_usd"],
                        "" if r.get("estimate_usd") is None else r["estimate_usd"],
                        "" if r.get("cached") is None else r["cached"],
                        ";".join(r.get("request_ids") or []), r.get("error") or ""])
    return path
