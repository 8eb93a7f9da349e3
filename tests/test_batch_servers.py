"""run.py --batch against two REAL ComfyUI servers (the host under test) and the fal emulator.

Both servers share one user folder (ComfyUI's `--user-directory`), so they share the pack's
journal, result cache and ledger. The emulator records every
submit and every billed job: "paid once" is counted, not assumed."""
import csv
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from comfy_host import ROOT, ComfyServer, make_base_dir
from emulators import FalEmulator, WaveSpeedEmulator, fill_colour
from test_hosted_nodes_graphs import FAL_KEY, WS_KEY, emulator_env, graph

from fluxfill.client.manifest import Manifest

pytestmark = pytest.mark.timeout(300)
WORKFLOW = ROOT / "workflows" / "api" / "fal_fill.api.json"
PRICED = "FalFill.endpoint=fal-ai/flux-lora/inpainting"          # $0.035 per megapixel
HOLE = (12, 10, 28, 26)         # x0, y0, x1, y1 of image 0's hole; image i's moves right by i


@pytest.fixture(scope="module")
def emus():
    with FalEmulator(FAL_KEY, queue_seconds=0.0, run_seconds=0.2) as fal, \
            WaveSpeedEmulator(WS_KEY, queue_seconds=0.0, run_seconds=0.1) as ws:
        yield fal, ws


@pytest.fixture(scope="module")
def fal(emus):
    return emus[0]


@pytest.fixture(scope="module")
def shared_user(tmp_path_factory):
    return tmp_path_factory.mktemp("shared_user")


@pytest.fixture(scope="module")
def servers(emus, shared_user, tmp_path_factory):
    """Servers A and B, started side by side, one user folder between them."""
    found, errors = [], []

    def start(name):
        base = make_base_dir(tmp_path_factory.mktemp(f"batch_{name}"))
        try:
            found.append((name, ComfyServer(base, env=emulator_env(*emus),
                                            args=["--user-directory", shared_user]).start()))
        except RuntimeError as e:
            errors.append(e)

    threads = [threading.Thread(target=start, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pair = [s for _, s in sorted(found, key=lambda kv: kv[0])]
    if errors:
        for s in pair:
            s.stop()
        raise errors[0]
    yield pair
    for s in pair:
        s.stop()


@pytest.fixture(autouse=True)
def emulator_speed(fal):
    fal.queue_seconds, fal.run_seconds = 0.0, 0.2
    yield


def photo(i: int, w: int = 64, h: int = 48, alpha: bool = True) -> Image.Image:
    rgb = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if not alpha:
        return Image.fromarray(rgb, "RGB")
    a = np.full((h, w, 1), 255, np.uint8)
    x0, y0, x1, y1 = HOLE
    a[y0:y1, x0 + i:x1 + i] = 0                     # transparent = fill (LoadImage's mask)
    return Image.fromarray(np.concatenate([rgb, a], -1), "RGBA")


def image_folder(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo(i).save(folder / f"shot_{i:02d}.png")
    return folder


def cli(*args, servers=(), timeout=180) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "run.py", str(WORKFLOW), *map(str, args)]
    for s in servers:
        cmd += ["--server", s.url]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def history_count(server) -> int:
    return len(server.get("/history").json())


def journal(shared_user: Path) -> dict:
    """{request id: latest status} of the shared journal."""
    path = shared_user / "fluxfill" / "hosted_journal.jsonl"
    latest = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        rec = json.loads(line)
        latest[rec["request_id"]] = rec["status"]
    return latest


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


# ---------------------------------------------------------------- a table of rows

def test_csv_rows_take_their_own_prompt_seed_mask_and_sets(servers, fal, tmp_path):
    a = servers[0]
    photo(1).save(tmp_path / "door.png")
    photo(2, alpha=False).save(tmp_path / "window.jpg", quality=95)
    mask = np.zeros((48, 64), np.uint8)
    mask[8:20, 30:44] = 255                                          # white = fill
    Image.fromarray(mask, "L").save(tmp_path / "window_mask.png")
    photo(3, alpha=False).save(tmp_path / "nomask.png")              # no alpha, no mask: MaskPrep refuses
    with open(tmp_path / "rows.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "mask", "prompt", "seed", "MaskPrep.grow", "MaskPrep.feather"])
        w.writerow(["door.png", "", "a red door", "11", "", ""])
        w.writerow(["window.jpg", "window_mask.png", "a blue window", "12", "0", "0"])
        w.writerow(["door.png", "", "a green door", "13", "", ""])
        w.writerow(["nomask.png", "", "anything", "14", "", ""])
    n0, out = len(fal.requests), tmp_path / "out"
    proc = cli("--batch", tmp_path / "rows.csv", "--out", out, "--set", PRICED, "--set", "MaskPrep.target_mp=0",
               servers=[a])
    assert proc.returncode == 1, proc.stderr                         # one row failed: exit 1
    assert "failed: nomask: node 2 (MaskPrep) failed" in proc.stderr and "mask" in proc.stderr
    sent = [(r["payload"]["prompt"], r["payload"]["seed"]) for r in fal.requests[n0:]]
    assert sorted(sent) == [("a blue window", 12), ("a green door", 13), ("a red door", 11)]
    jobs = {r["name"]: r for r in Manifest(out).load().values()}
    assert set(jobs) == {"door-1", "window", "door-3", "nomask"}    # repeated stems get the row number
    assert jobs["nomask"]["status"] == "failed" and "MaskPrep" in jobs["nomask"]["error"]
    assert jobs["window"]["params"] == {"prompt": "a blue window", "seed": 12, "MaskPrep.grow": 0,
                                        "MaskPrep.feather": 0}
    for name, prompt, seed in (("door-1", "a red door", 11), ("window", "a blue window", 12)):
        job = jobs[name]
        assert job["status"] == "done" and len(job["request_ids"]) == 1
        assert job["cost_usd"] == pytest.approx(job["estimate_usd"]) and job["cost_usd"] > 0
        got = rgb(out / job["outputs"][0])
        colour = fill_colour(prompt, seed, 0)
        src = rgb(tmp_path / ("door.png" if name == "door-1" else "window.jpg"))
        hole = np.zeros(got.shape[:2], bool)
        if name == "window":
            hole[8:20, 30:44] = True
            assert np.array_equal(got[~hole], src[~hole])            # feather 0, grow 0: original outside
        else:
            x0, y0, x1, y1 = HOLE
            hole[y0:y1, x0 + 1:x1 + 1] = True
            ring = np.zeros_like(hole)
            ring[y0 - 4:y1 + 4, x0 + 1 - 4:x1 + 1 + 4] = True
            ring &= ~hole                                            # grow 8: the fill reaches past the hole
            assert np.abs(got[ring] - colour).max() <= 2
        assert np.abs(got[hole] - colour).max() <= 2
    billed = {b["request_id"]: b["usd"] for b in fal.billed}
    assert billed[jobs["window"]["request_ids"][0]] == pytest.approx(jobs["window"]["cost_usd"])
    with open(out / "results.csv", newline="") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert rows["window"]["prompt"] == "a blue window" and rows["window"]["seed"] == "12"
    assert rows["nomask"]["status"] == "failed" and rows["door-1"]["outputs"].startswith("outputs/door-1")


# ---------------------------------------------------------------- the price before anything runs

def expected_price(folder: Path, n: int) -> float:
    """What the real MaskPrep (core.prep, the node's own code) makes of each image, priced by
    the pack's rule for flux-lora/inpainting."""
    import torch

    from fluxfill.core.hosted import pricing
    from fluxfill.core.prep import PrepOptions, prepare
    widgets = json.loads(WORKFLOW.read_text())["2"]["inputs"]
    opt = PrepOptions(grow=widgets["grow"], feather=widgets["feather"], context_factor=widgets["context_factor"],
                      context_px=widgets["context_px"], target_mp=widgets["target_mp"], multiple=widgets["multiple"],
                      max_side=widgets["max_side"])
    total = 0.0
    for i in range(n):
        arr = np.asarray(Image.open(folder / f"shot_{i:02d}.png"), np.float32) / 255
        img = torch.from_numpy(arr[None, ..., :3])
        out, _, _ = prepare(img, torch.from_numpy(1 - arr[None, ..., 3]), opt)
        total += pricing.estimate("fal-ai/flux-lora/inpainting", out.shape[2], out.shape[1], 1).usd
    return round(total, 6)


def test_estimate_and_max_usd_send_nothing(servers, fal, tmp_path):
    folder = image_folder(tmp_path / "shots", 12)
    want = expected_price(folder, 12)
    assert 12 * 0.03 < want < 12 * 0.04                              # MaskPrep's 1 MP fills
    n0, h0 = len(fal.requests), [history_count(s) for s in servers]
    out = tmp_path / "out"
    proc = cli("--batch", folder, "--out", out, "--set", PRICED, "--estimate", servers=servers)
    assert proc.returncode == 0, proc.stderr
    assert f"12 job(s), 12 to run: hosted estimate ${want:.4f}" in proc.stdout
    assert "fal-ai/flux-lora/inpainting: 12 job(s) x 1 image(s)" in proc.stdout
    proc = cli("--batch", folder, "--out", out, "--set", PRICED, "--max-usd", round(want - 0.01, 2),
               servers=servers)
    assert proc.returncode == 3 and "above the limit; nothing was sent" in proc.stderr
    proc = cli("--batch", folder, "--out", out, "--max-usd", 100, servers=servers)     # flux-lora-fill
    assert proc.returncode == 3 and "price is unknown" in proc.stderr
    proc = cli("--batch", folder, "--set", PRICED, "--estimate", "--max-usd", round(want + 0.01, 2))   # no --out
    assert proc.returncode == 0 and f"${want:.4f}" in proc.stdout
    assert len(fal.requests) == n0 and [history_count(s) for s in servers] == h0
    assert not (out / "manifest.jsonl").exists()


# ---------------------------------------------------------------- two servers, one user folder

def test_same_inputs_on_two_servers_sharing_a_user_folder_pay_once(servers, fal):
    a, b = servers
    g, _ = graph(a, "FalFill", w=32, h=32, pattern_seed=5, seed=77, prompt="the same on both")
    fal.run_seconds = None                                            # the job runs until told
    n0 = len(fal.requests)
    pa = a.queue(g)["prompt_id"]
    deadline = time.monotonic() + 60
    while len(fal.requests) == n0 and time.monotonic() < deadline:
        time.sleep(0.05)
    pb = b.queue(g)["prompt_id"]
    while pb not in [item[1] for item in b.get("/queue").json()["queue_running"]]:
        assert time.monotonic() < deadline, "B never started the prompt"
        time.sleep(0.05)
    time.sleep(1.5)                                                   # B would have submitted by now
    assert len(fal.requests) == n0 + 1, "the second server submitted the same inputs again"
    fal.finish_job(fal.requests[n0]["request_id"])
    ha, hb = a.wait(pa, 60), b.wait(pb, 60)
    assert ha["status"]["status_str"] == hb["status"]["status_str"] == "success"
    assert len(fal.requests) == n0 + 1


def wait_for(cond, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_killed_runner_resumes_its_queued_prompts_instead_of_sending_them_again(servers, fal, tmp_path):
    a = servers[0]
    folder = image_folder(tmp_path / "shots", 6)
    out = tmp_path / "out"
    args = ["--batch", folder, "--out", out, "--set", PRICED, "--set", "MaskPrep.target_mp=0",
            "--set", "FalFill.seed=5"]
    n0, h0 = len(fal.requests), history_count(a)
    cmd = [sys.executable, "run.py", str(WORKFLOW), *map(str, args), "--server", a.url]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = Manifest(out)
    wait_for(lambda: sum(r["status"] == "done" for r in manifest.load().values()) >= 2, "2 jobs done")
    proc.kill()                                                       # the runner dies; the server goes on
    proc.wait(10)
    queued = [r for r in manifest.load().values() if r["status"] == "queued"]
    assert queued, "the runner had prompts queued on the server when it died"
    # the id is written before the prompt is posted: a runner killed in between never posted it
    on_server = set(a.get("/history").json())
    queue = a.get("/queue").json()
    on_server |= {item[1] for item in queue["queue_running"] + queue["queue_pending"]}
    followed = {r["key"]: r["prompt_id"] for r in queued if r["prompt_id"] in on_server}
    assert followed, "the runner had prompts on the server when it died"
    again = cli(*args, servers=[a])
    assert again.returncode == 0, again.stderr
    jobs = list(manifest.load().values())
    assert len(jobs) == 6 and all(j["status"] == "done" for j in jobs)
    assert all(j["prompt_id"] == followed[j["key"]] for j in jobs if j["key"] in followed)
    assert len(fal.requests) - n0 == 6 and history_count(a) - h0 == 6     # nothing queued twice


def test_the_daily_spend_limit_holds_the_jobs_beyond_it_for_later(servers, fal, tmp_path):
    from fluxfill.core.hosted import pricing
    a = servers[0]
    folder = image_folder(tmp_path / "shots", 6)
    out = tmp_path / "out"
    args = ["--batch", folder, "--out", out, "--set", PRICED, "--set", "MaskPrep.target_mp=0",
            "--set", "FalFill.seed=9"]
    per_job = pricing.estimate("fal-ai/flux-lora/inpainting", 64, 48, 1).usd
    today = a.get("/fluxfill/limit").json()["today_usd"]
    n0 = len(fal.requests)
    requests.post(a.url + "/fluxfill/limit", json={"limit_usd": today + 3.5 * per_job}, timeout=10).raise_for_status()
    try:
        proc = cli(*args, servers=[a])
    finally:
        requests.post(a.url + "/fluxfill/limit", json={"limit_usd": None}, timeout=10).raise_for_status()
    assert proc.returncode == 1, proc.stderr
    assert f"daily spend limit on {a.url}" in proc.stderr and "the estimate is above it" in proc.stderr
    assert f"server {a.url}: the daily spend limit is reached" in proc.stderr
    assert "3 job(s) not run: every server's daily spend limit is reached" in proc.stderr
    jobs = list(Manifest(out).load().values())
    assert sorted(j["status"] for j in jobs) == ["done"] * 3 + ["pending"] * 3
    pending = [j["error"] for j in jobs if j["status"] == "pending"]
    assert all("daily spend limit" in e for e in pending)
    assert any("refused by the daily spend limit" in e for e in pending)          # the node's own words
    assert len(fal.requests) - n0 == 3                                # nothing sent beyond the limit
    again = cli(*args, servers=[a])                                   # the limit is lifted: the rest runs
    assert again.returncode == 0, again.stderr
    assert all(j["status"] == "done" for j in Manifest(out).load().values())
    assert len(fal.requests) - n0 == 6


def test_two_servers_one_killed_mid_batch_then_the_same_command_again(servers, fal, shared_user, tmp_path):
    a, b = servers
    folder = image_folder(tmp_path / "shots", 12)
    out = tmp_path / "out"
    args = ["--batch", folder, "--out", out, "--set", PRICED, "--set", "MaskPrep.target_mp=0"]
    n0, held0 = len(fal.requests), set(fal.jobs)
    cmd = [sys.executable, "run.py", str(WORKFLOW), *map(str, args), "--server", a.url, "--server", b.url]
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=so, stderr=se, text=True)
        try:
            manifest = Manifest(out)
            wait_for(lambda: sum(r["status"] == "done" for r in manifest.load().values()) >= 4, "4 jobs done")
            fal.run_seconds = None                                    # the next job on each server is held
            held = lambda: [j for j in fal.jobs if j not in held0 and fal.jobs[j].run_seconds is None]  # noqa: E731
            wait_for(lambda: len(held()) == 2 and all(journal(shared_user).get(j) == "pending" for j in held()),
                     "a held, journaled request on each server")
            on_b = {r["prompt_id"] for r in manifest.load().values() if r["server"] == b.url}
            b.stop(kill=True)                                         # SIGKILL mid-request
            fal.run_seconds = 0.2
            for job_id in held():
                fal.finish_job(job_id)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(30)
    err = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, err
    assert f"server {b.url} stopped answering" in err
    jobs = list(Manifest(out).load().values())
    assert len(jobs) == 12 and all(j["status"] == "done" for j in jobs)
    assert len({o for j in jobs for o in j["outputs"]}) == 12 and all((out / j["outputs"][0]).is_file() for j in jobs)
    moved = [j for j in jobs if j["moves"] == [b.url]]
    assert moved and all(j["server"] == a.url for j in moved)
    assert on_b                                                      # B had prompts when it died
    # one billed job each: 12 submits in all, 12 distinct billed requests, one per job
    assert len(fal.requests) - n0 == 12
    ids = [i for j in jobs for i in j["request_ids"]]
    billed = {x["request_id"] for x in fal.billed}
    assert len(ids) == 12 and len(set(ids)) == 12 and set(ids) <= billed
    # the request B was waiting on when it died: resumed on A from the shared journal, not re-sent
    resumed = [j for j in moved if set(j["request_ids"]) & set(held())]
    assert len(resumed) == 1 and all(i in ids for i in held())
    # a job's cost is what its result cost when it was made (a cache hit: its original cost)
    assert all(j["cost_usd"] == pytest.approx(j["estimate_usd"]) for j in jobs)
    sheet = Image.open(out / "contact_sheet.jpg")
    assert sheet.format == "JPEG" and sheet.width >= 4 * 2 * 128
    with open(out / "results.csv", newline="") as f:
        assert sorted(r["name"] for r in csv.DictReader(f)) == sorted(p.stem for p in folder.iterdir())
    # the same command again: nothing new is submitted anywhere
    h0, n1 = history_count(a), len(fal.requests)
    again = cli(*args, servers=[a, b])
    assert again.returncode == 0, again.stderr
    assert "all 12 job(s) are done already" in again.stderr
    assert len(fal.requests) == n1 and history_count(a) == h0
