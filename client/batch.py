"""Batch mode of run.py: one workflow over a folder / CSV / JSONL, on one or more servers.

    run_batch(BatchOptions(...)) -> exit status

Order: read INPUTS (batch_inputs) → one workflow and key per row → the manifest of an
earlier run (done jobs are skipped, queued ones followed where they are) → the hosted
price of what is left (estimate; --estimate prints it, --max-usd refuses a batch above
it, nothing is sent either way) → the servers (dispatch) with a progress bar → at the end
DIR/manifest.jsonl (one line per job), DIR/results.csv and DIR/contact_sheet.jpg.
Exit 0 only when every job succeeded, else 1 (the manifest says which); 2 bad arguments;
3 over --max-usd; 130 Ctrl-C (running prompts are interrupted, jobs stay pending).
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import contact_sheet
from .batch_inputs import file_hash, job_key, job_names, job_prompt, load_mask, read_inputs
from .dispatch import Dispatcher, Job, Server
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_OVER_BUDGET, RunnerError
from .estimate import HOSTED_NODES, job_price, summary
from .manifest import Manifest, write_results
from .progress import BatchBar


@dataclass
class BatchOptions:
    prompt: dict                    # the workflow with every --set applied
    target: str                     # node id of the loader that takes each row's image
    inputs: str                     # --batch INPUTS
    out_dir: Path | None            # None only with estimate_only (then no manifest is read)
    servers: list = field(default_factory=lambda: ["http://127.0.0.1:8188"])
    fixed: dict = field(default_factory=dict)      # node id -> file, uploaded for every row
    estimate_only: bool = False
    max_usd: float | None = None
    depth: int = 2
    job_timeout: float | None = None
    stream: object = sys.stderr


def make_jobs(opt: BatchOptions) -> list[Job]:
    rows = read_inputs(opt.inputs)
    fixed = {nid: file_hash(p) for nid, p in opt.fixed.items()}
    jobs = []
    for row, name in zip(rows, job_names(rows)):
        prompt = job_prompt(opt.prompt, row)
        image_hash = file_hash(row.image) + ("" if row.mask is None else ":" + file_hash(row.mask))
        jobs.append(Job(row, name, job_key(prompt, opt.target, image_hash, fixed), prompt))
    return jobs


def restore(job: Job, rec: dict | None, out_dir: Path) -> None:
    """Carry over an earlier run's state: done (outputs still there) stays done, queued is
    followed on its server, anything else runs again."""
    if not rec:
        return
    job.attempts, job.moves = int(rec.get("attempts") or 0), list(rec.get("moves") or [])
    status = rec.get("status")
    if status == "done" and all((out_dir / o).is_file() for o in rec.get("outputs") or []):
        job.status = "done"
        for k in ("server", "prompt_id", "outputs", "cost_usd", "request_ids", "cached", "seconds"):
            setattr(job, k, rec.get(k))
        job.outputs = list(job.outputs or [])
        job.request_ids = list(job.request_ids or [])
    elif status == "queued" and rec.get("server") and rec.get("prompt_id"):
        job.status, job.server, job.prompt_id = "queued", rec["server"], rec["prompt_id"]


def price_jobs(opt: BatchOptions, jobs: list[Job]) -> tuple[float | None, list[str]]:
    """Each job's hosted estimate (job.estimate_usd) and the summary of those still to run."""
    todo = [j for j in jobs if j.status != "done"]
    if not any(n["class_type"] in HOSTED_NODES for n in opt.prompt.values()):
        return summary([], skipped=len(jobs) - len(todo))
    prices = []
    for job in todo:
        size, mask = load_mask(job.row)
        price = job_price(job.prompt, opt.target, size, mask)
        job.estimate_usd = price.usd
        prices.append(price)
    return summary(prices, skipped=len(jobs) - len(todo))


def check_budget(total: float | None, max_usd: float | None, count: int) -> str | None:
    """Why the batch may not start under --max-usd (None: it may)."""
    if max_usd is None:
        return None
    if total is None:
        return (f"--max-usd {max_usd:g}: the batch's price is unknown (an endpoint publishes no price), "
                "so it cannot be held to the limit; nothing was sent")
    if total > max_usd + 1e-9:
        return (f"--max-usd {max_usd:g}: the {count} job(s) to run are estimated at ${total:.4f}, above "
                "the limit; nothing was sent")
    return None


def limit_lines(servers: list[Server], total: float | None) -> list[str]:
    """The pack's daily spend limit on each live server (servers sharing a user folder share
    it), and whether this batch's estimate fits in what is left of it today."""
    lines = []
    for srv in servers:
        if not srv.alive:
            continue
        try:
            info = srv.client.spend_limit()
        except RunnerError:
            continue
        if not info or info.get("limit_usd") is None:
            continue
        limit, today = float(info["limit_usd"]), float(info.get("today_usd") or 0.0)
        left = max(0.0, limit - today)
        over = total is not None and total > left + 1e-9
        lines.append(f"  daily spend limit on {srv.url}: ${limit:.4f}, ${today:.4f} spent today, ${left:.4f} left"
                     + (": the estimate is above it; the fill nodes refuse the jobs beyond it, which stay "
                        "pending for the same command to run later" if over else ""))
    return lines


def finish_files(opt: BatchOptions, jobs: list[Job], manifest: Manifest) -> list[Path]:
    manifest.rewrite([j.record() for j in jobs])
    paths = [manifest.path, write_results(opt.out_dir, [j.record() for j in jobs])]
    entries = []
    for job in jobs:
        try:
            _, mask = load_mask(job.row)
            left = contact_sheet.input_thumb(job.row.image, mask)
        except (OSError, RunnerError):
            continue
        first = opt.out_dir / job.outputs[0] if job.status == "done" and job.outputs else None
        right = contact_sheet.output_thumb(first, "failed" if job.status == "failed" else "no output")
        entries.append((job.name, left, right))
    sheet = contact_sheet.write_sheet(opt.out_dir, entries)
    return paths + ([sheet] if sheet else [])


def run_batch(opt: BatchOptions) -> int:
    out = opt.stream
    jobs = make_jobs(opt)
    manifest = Manifest(opt.out_dir) if opt.out_dir is not None else None
    earlier = manifest.load() if manifest else {}
    for job in jobs:
        restore(job, earlier.get(job.key), opt.out_dir)
    done_before = sum(j.status == "done" for j in jobs)
    todo = len(jobs) - done_before
    total, lines = price_jobs(opt, jobs)
    head = f"{len(jobs)} job(s), {todo} to run: hosted estimate " + (
        "unknown (an endpoint publishes no price)" if total is None else f"${total:.4f}")
    refusal = check_budget(total, opt.max_usd, todo) if todo else None
    servers = [Server(u) for u in opt.servers]
    if opt.estimate_only:
        if todo and not refusal:
            lines += limit_lines(servers, total)
        print(head, *lines, sep="\n")
        if refusal:
            print(f"error: {refusal}", file=out)
        return EXIT_OVER_BUDGET if refusal else EXIT_OK
    if refusal:
        print(head, *lines, sep="\n", file=out)
        print(f"error: {refusal}", file=out)
        return EXIT_OVER_BUDGET
    if not todo:
        print(f"all {len(jobs)} job(s) are done already (manifest {manifest.path}); nothing to run", file=out)
        for p in finish_files(opt, jobs, manifest):
            print(p)
        return EXIT_OK
    for srv in servers:
        try:
            srv.client.check()
        except RunnerError as e:
            srv.alive, srv.error = False, str(e)
            print(f"server {srv.url} is not answering: it gets no jobs ({e})", file=out)
    if not any(s.alive for s in servers):
        raise RunnerError("no server answers: " + "; ".join(s.error for s in servers))
    print(head + f"; {sum(s.alive for s in servers)} server(s)", *limit_lines(servers, total), sep="\n", file=out)
    manifest.rewrite([j.record() for j in jobs])
    bar = BatchBar(len(jobs), done_before, out)
    dispatcher = Dispatcher(jobs, servers, out_dir=opt.out_dir, target=opt.target, fixed=opt.fixed,
                            manifest=manifest, bar=bar, depth=opt.depth, job_timeout=opt.job_timeout)
    try:
        dispatcher.run()
    except KeyboardInterrupt:
        bar.close()
        print("interrupted: our prompts were stopped on the servers; the jobs stay pending", file=out)
        manifest.rewrite([j.record() for j in jobs])
        return EXIT_INTERRUPTED
    bar.close()
    for p in finish_files(opt, jobs, manifest):
        print(p)
    if dispatcher.held:
        print(f"{len(dispatcher.held)} job(s) not run: every server's daily spend limit is reached; they stay "
              "pending: run the same command again when the limit allows", file=out)
    failed = [j for j in jobs if j.status != "done"]
    spent = [j.cost_usd for j in jobs if j.status == "done" and j.cost_usd is not None]
    unpriced = f" (+{bar.unknown} unpriced)" if bar.unknown else ""
    held = f", {len(dispatcher.held)} held by the spend limit" if dispatcher.held else ""
    print(f"{len(jobs) - len(failed)}/{len(jobs)} job(s) done, {len(failed) - len(dispatcher.held)} failed"
          f"{held}; new hosted requests "
          f"${bar.spend:.4f}{unpriced}; all results' cost ${sum(spent):.4f}", file=out)
    return EXIT_OK if not failed else EXIT_FAILED

