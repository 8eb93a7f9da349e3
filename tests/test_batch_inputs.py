"""The batch runner's parts that need no server: INPUTS, each job's workflow and key, the
price estimate (against the real MaskPrep code and the pack's price rules), the manifest,
shortest-queue dispatch, the bars and the contact sheet."""
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comfy_host import ROOT

from fluxfill.client.batch import check_budget
from fluxfill.client.batch_inputs import (job_key, job_names, job_prompt, load_mask, read_inputs,
                                          upload_file)
from fluxfill.client.contact_sheet import input_thumb, output_thumb, write_sheet
from fluxfill.client.dispatch import Dispatcher, Job, Server
from fluxfill.client.errors import RunnerError
from fluxfill.client.estimate import job_price, maskprep_size, summary
from fluxfill.client.manifest import Manifest
from fluxfill.client.progress import BatchBar, Progress
from fluxfill.client.workflow import load_workflow
from fluxfill.core.hosted import pricing
from fluxfill.core.prep import PrepOptions, prepare

FAL_WF = ROOT / "workflows" / "api" / "fal_fill.api.json"
WS_WF = ROOT / "workflows" / "api" / "wavespeed_fill.api.json"


def rgba(path: Path, w=40, h=30, hole=(5, 5, 15, 12)):
    a = np.full((h, w), 255, np.uint8)
    a[hole[1]:hole[3], hole[0]:hole[2]] = 0
    rgb = np.random.default_rng(w * h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, a]), "RGBA").save(path)


# ---------------------------------------------------------------- INPUTS

def test_folder_lists_images_sorted_with_sibling_masks(tmp_path):
    rgba(tmp_path / "b.png")
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    Image.new("L", (40, 30), 255).save(tmp_path / "a.mask.png")
    (tmp_path / "notes.txt").write_text("not an image")
    rows = read_inputs(tmp_path)
    assert [r.image.name for r in rows] == ["a.jpg", "b.png"]
    assert rows[0].mask == tmp_path / "a.mask.png" and rows[1].mask is None


def test_csv_values_columns_and_errors(tmp_path):
    rgba(tmp_path / "x.png")
    (tmp_path / "t.csv").write_text("image,prompt,seed,MaskPrep.grow,FalFill.endpoint\n"
                                    "x.png,42,7,4,fal-ai/flux-pro/v1/fill\nx.png,,,,\n")
    r1, r2 = read_inputs(tmp_path / "t.csv")
    assert r1.prompt == "42" and r1.seed == 7                       # a prompt stays text
    assert r1.sets == {"MaskPrep.grow": 4, "FalFill.endpoint": "fal-ai/flux-pro/v1/fill"}
    assert r2.prompt is None and r2.sets == {} and r2.image == tmp_path / "x.png"
    assert job_names([r1, r2]) == ["x-1", "x-2"]
    for body, message in (("image,colour\nx.png,red\n", "line 2: unknown column.*colour"),
                          ("image\nmissing.png\n", "line 2: image .*missing.png not found"),
                          ("image,seed\nx.png,1.5\n", "line 2: seed '1.5' is not a whole number"),
                          ("prompt\nhello\n", "line 2: no image")):
        (tmp_path / "bad.csv").write_text(body)
        with pytest.raises(RunnerError, match=message):
            read_inputs(tmp_path / "bad.csv")


def test_jsonl_keeps_json_types(tmp_path):
    rgba(tmp_path / "x.png")
    (tmp_path / "t.jsonl").write_text(json.dumps({"image": "x.png", "KSampler.steps": "8", "seed": 3}) + "\n\n")
    [row] = read_inputs(tmp_path / "t.jsonl")
    assert row.sets == {"KSampler.steps": "8"} and row.seed == 3
    (tmp_path / "bad.jsonl").write_text("[1]\n")
    with pytest.raises(RunnerError, match="line 1: expected an object"):
        read_inputs(tmp_path / "bad.jsonl")


def test_masks_alpha_sibling_and_the_uploaded_file(tmp_path):
    rgba(tmp_path / "x.png", hole=(2, 3, 9, 8))
    [row] = read_inputs(tmp_path)
    size, mask = load_mask(row)
    assert size == (40, 30) and mask[3:8, 2:9].min() == 1.0 and mask.sum() == 35   # transparent = fill
    Image.new("RGB", (40, 30), (9, 9, 9)).save(tmp_path / "y.jpg")
    m = np.zeros((30, 40), np.uint8)
    m[10:20, 5:25] = 255
    Image.fromarray(m, "L").save(tmp_path / "y.mask.png")
    row = read_inputs(tmp_path)[1]
    up = upload_file(row, tmp_path / "work")
    alpha = np.asarray(Image.open(up).getchannel("A")).astype(int)
    assert np.array_equal(1 - alpha / 255, m / 255)                 # what LoadImage will see as the mask
    Image.new("L", (10, 10)).save(tmp_path / "y.mask.png")
    with pytest.raises(RunnerError, match="mask y.mask.png is 10x10 but the image is 40x30"):
        load_mask(row)


def test_each_row_gets_its_prompt_seed_and_sets_and_a_stable_key(tmp_path):
    rgba(tmp_path / "x.png")
    (tmp_path / "t.csv").write_text("image,prompt,seed,MaskPrep.feather\nx.png,a door,5,0\nx.png,a door,6,0\n")
    base = load_workflow(FAL_WF)
    r1, r2 = read_inputs(tmp_path / "t.csv")
    p1 = job_prompt(base, r1)
    assert p1["3"]["inputs"]["prompt"] == "a door" and p1["3"]["inputs"]["seed"] == 5
    assert p1["2"]["inputs"]["feather"] == 0 and base["2"]["inputs"]["feather"] == 16    # base untouched
    k1 = job_key(p1, "1", "hash-of-x", {})
    assert k1 == job_key(job_prompt(base, r1), "1", "hash-of-x", {})
    assert k1 != job_key(job_prompt(base, r2), "1", "hash-of-x", {})          # another seed
    assert k1 != job_key(p1, "1", "hash-of-another-image", {})
    clip_only = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
                 "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["9", 0]}}}
    with pytest.raises(RunnerError, match="a seed is given but the workflow has no seed input"):
        job_prompt(clip_only, r1)
    r1.seed, r1.sets = None, {}
    assert job_prompt(clip_only, r1)["2"]["inputs"]["text"] == "a door"          # the only CLIPTextEncode
    r1.sets = {"Nope.x": 1}
    with pytest.raises(RunnerError, match="column 'Nope.x'.*no node 'Nope'"):
        job_prompt(base, r1)


# ---------------------------------------------------------------- the price

def test_maskprep_size_is_what_maskprep_makes():
    """The estimate's MaskPrep arithmetic against the node's own code (core.prep) on random
    masks (boxes, discs, soft values), widgets and outpaint padding."""
    rng = random.Random(1)
    for _ in range(120):
        w, h = rng.randint(16, 240), rng.randint(16, 240)
        m = np.zeros((h, w), np.float32)
        x0, y0 = rng.randint(0, w - 2), rng.randint(0, h - 2)
        m[y0:rng.randint(y0 + 1, h), x0:rng.randint(x0 + 1, w)] = rng.choice([1.0, 0.7, 0.3])
        yy, xx = np.mgrid[:h, :w]
        m[(xx - rng.randint(0, w)) ** 2 + (yy - rng.randint(0, h)) ** 2 < rng.randint(0, 20) ** 2] = 1.0
        opt = dict(invert=rng.random() < 0.1, threshold=rng.choice([0, 0.5]), grow=rng.choice([0, 3, 16]),
                   feather=rng.choice([0, 8, 16]), crop=rng.random() < 0.9, context_factor=rng.choice([1.0, 1.2, 2.0]),
                   context_px=rng.choice([0, 32]), target_mp=rng.choice([0.0, 1.0, 0.25]),
                   multiple=rng.choice([1, 16]), max_side=rng.choice([2048, 256]))
        pad = tuple(rng.choice([0, 0, 16]) for _ in range(4))
        widgets = dict(opt, pad_left=pad[0], pad_top=pad[1], pad_right=pad[2], pad_bottom=pad[3])
        try:
            img, _, _ = prepare(torch.rand(1, h, w, 3), torch.from_numpy(m)[None], PrepOptions(pad=pad, **opt))
            real = (img.shape[2], img.shape[1])
        except ValueError:
            real = None
        assert maskprep_size(widgets, (w, h), m) == real, (w, h, widgets)


def test_job_price_follows_endpoint_size_and_count():
    fal, mask = load_workflow(FAL_WF), np.zeros((600, 800), np.float32)
    mask[100:300, 200:400] = 1
    out = maskprep_size(fal["2"]["inputs"], (800, 600), mask)
    for endpoint, extra in (("fal-ai/flux-lora/inpainting", {}), ("fal-ai/flux-pro/v1/fill", {"num_images": 3}),
                            ("fal-ai/flux-general/inpainting", {"image_size": "landscape_4_3"})):
        p = json.loads(json.dumps(fal))
        p["3"]["inputs"].update(endpoint=endpoint, **extra)
        [node] = job_price(p, "1", (800, 600), mask).nodes
        size = (1024, 768) if extra.get("image_size") else out
        want = pricing.estimate(endpoint, *size, extra.get("num_images", 1))
        assert node.size == size and node.usd == want.usd and node.usd > 0
    assert job_price(fal, "1", (800, 600), mask).usd is None                     # flux-lora-fill: unpublished
    ws = load_workflow(WS_WF)
    assert job_price(ws, "1", (800, 600), mask).usd == pytest.approx(0.035)
    total, lines = summary([job_price(ws, "1", (800, 600), mask)] * 3, skipped=2)
    assert total == pytest.approx(0.105) and "3 job(s)" in lines[0] and "2 job(s) already done" in lines[-1]
    assert check_budget(0.105, 0.1, 3).endswith("above the limit; nothing was sent")
    assert check_budget(0.105, 0.11, 3) is None and "unknown" in check_budget(None, 5, 3)


def test_job_price_counts_one_request_per_separate_region():
    fal, mask = load_workflow(FAL_WF), np.zeros((600, 800), np.float32)
    for x0, y0 in ((50, 50), (600, 60), (300, 400)):
        mask[y0:y0 + 80, x0:x0 + 100] = 1
    fal["3"]["inputs"]["endpoint"] = "fal-ai/flux-lora/inpainting"
    fal["2"]["inputs"]["regions"] = "separate"
    [node] = job_price(fal, "1", (800, 600), mask).nodes
    img, _, _ = prepare(torch.rand(1, 600, 800, 3), torch.from_numpy(mask)[None], PrepOptions(regions="separate"))
    assert node.requests == img.shape[0] == 3 and node.size == (img.shape[2], img.shape[1])
    one = pricing.estimate("fal-ai/flux-lora/inpainting", *node.size, 1).usd
    assert node.usd == pytest.approx(3 * one)
    _, lines = summary([job_price(fal, "1", (800, 600), mask)])
    assert "x 3 region(s)" in lines[0]


# ---------------------------------------------------------------- the manifest and dispatch

def test_manifest_last_line_wins_and_a_torn_line_is_skipped(tmp_path):
    m = Manifest(tmp_path)
    m.append({"key": "a", "status": "queued"})
    m.append({"key": "b", "status": "done"})
    m.append({"key": "a", "status": "done", "outputs": ["outputs/a.png"]})
    with open(m.path, "a") as f:
        f.write('{"key": "b", "status": "fai')                      # a crash mid-write
    got = m.load()
    assert got["a"]["status"] == "done" and got["a"]["outputs"] == ["outputs/a.png"] and got["b"]["status"] == "done"
    m.rewrite(list(got.values()))
    assert len(m.path.read_text().splitlines()) == 2 and m.load() == got


def test_jobs_go_to_the_shortest_live_queue(tmp_path):
    a, b, c = Server("http://127.0.0.1:1"), Server("http://127.0.0.1:2"), Server("http://127.0.0.1:3")
    for i in range(4):
        rgba(tmp_path / f"{i}.png")
    rows = read_inputs(tmp_path)
    jobs = [Job(r, str(r.index), str(r.index), {}) for r in rows]
    d = Dispatcher(jobs, [a, b, c], out_dir=tmp_path, target="1", fixed={}, manifest=Manifest(tmp_path),
                   bar=None)
    a.queue_len, b.queue_len, c.queue_len = 2, 1, 0
    assert d.take(a) is None and d.take(b) is None                  # c's queue is shorter
    assert d.take(c) is jobs[0] and jobs[0].server == c.url and c.inflight == [jobs[0]]
    c.alive = False                                                 # a dead server does not count
    assert d.take(b) is jobs[1] and d.take(a) is None
    b.queue_len = 2
    assert d.take(a) is jobs[2]                                     # ties may take


# ---------------------------------------------------------------- what the user sees

def test_single_run_bar_and_batch_bar_on_tqdm():
    s = io.StringIO()
    p = Progress({"4": {"class_type": "KSampler", "inputs": {}}, "6": {"class_type": "SaveImage", "inputs": {}}}, s)
    p.executing("4")
    for v in (1, 2, 3):
        p.step("4", v, 3)
    p.progress_text("4", "sampling\nstep 3")
    p.executing("6")
    p.finish()
    text = s.getvalue()
    assert "[0/2 nodes] #4 KSampler |####################| 3/3, step 3" in text
    assert "[1/2 nodes] #6 SaveImage" in text and text.endswith("[2/2 nodes] done\n")
    s = io.StringIO()
    bar = BatchBar(3, 0, s)
    bar.job_done(0.035)
    bar.job_failed("shot_2", "node 3 (FalFill) failed: boom")
    bar.job_done(None)
    bar.close()
    text = s.getvalue()
    assert "failed: shot_2: node 3 (FalFill) failed: boom\n" in text
    assert "3/3" in text and "done 2, failed 1, spend $0.0350 (+1 unpriced)" in text


def test_contact_sheet_pairs_input_and_output(tmp_path):
    rgba(tmp_path / "in.png")
    Image.new("RGB", (80, 60), (0, 200, 0)).save(tmp_path / "out.png")
    _, mask = load_mask(read_inputs(tmp_path)[0])
    entries = [("ok", input_thumb(tmp_path / "in.png", mask), output_thumb(tmp_path / "out.png")),
               ("bad", input_thumb(tmp_path / "in.png", mask), output_thumb(None))]
    sheet = Image.open(write_sheet(tmp_path, entries)).convert("RGB")
    assert sheet.size == (2 * (2 * 128 + 6) + 3 * 6, 128 + 14 + 2 * 6)
    px = np.asarray(sheet).astype(int)
    assert np.abs(px[6 + 64, 6 + 128 + 6 + 64] - [0, 200, 0]).max() < 12       # the output, scaled up
    assert np.abs(px[6 + 20, 6 + 262 + 6 + 128 + 6 + 120] - [90, 90, 90]).max() < 12   # "failed" tile
    assert write_sheet(tmp_path, []) is None


def test_cli_refuses_bad_combinations(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "run.py", str(FAL_WF), *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    rgba(tmp_path / "x.png")
    for args, message in ((["--batch", tmp_path], "--batch needs --out DIR"),
                          (["--server", "a", "--server", "b"], "several --server URLs go with --batch"),
                          (["--estimate"], "--estimate and --max-usd go with --batch"),
                          (["--batch", tmp_path / "nope", "--out", tmp_path], "no such folder or file"),
                          (["--batch", tmp_path, "--out", tmp_path / "o", "--image", f"1={tmp_path / 'x.png'}"],
                           "the workflow has 0 LoadImage nodes|takes the batch's images")):
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert any(part in proc.stderr for part in message.split("|")), (args, proc.stderr)
