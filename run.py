"""Run an API-format ComfyUI workflow from the command line (thin CLI over client/).

    python run.py WORKFLOW.json [--server URL] [--set NODE.INPUT=VALUE ...]
                  [--image [NODE=]PATH ...] [--seed-random] [--out DIR] [--timeout S]
    python run.py WORKFLOW.json --batch INPUTS --out DIR [--server URL ...] [--estimate]
                  [--max-usd N] [--image NODE=] [--set ...] [--queue-depth N] [--timeout S]

A script, not part of the pack's import: Python puts this folder first on sys.path, so
`client` below is the pack's client/ (a ComfyUI API client; it never imports ComfyUI).
"""
import argparse
import sys
from pathlib import Path

from client.errors import EXIT_INTERRUPTED, EXIT_USAGE, RunnerError
from client.runner import Client, run
from client.workflow import apply_set, batch_target, image_target, load_workflow, randomize_seeds

DEFAULT_SERVER = "http://127.0.0.1:8188"
EPILOG = """\
NODE is a node id ("12"), a class_type that occurs once ("KSampler") or a node title
(_meta.title). VALUE is parsed as JSON when it parses (20, 1.5, true, [1,2]) and taken as a
string otherwise; quote a string that looks like JSON: --set 6.text='"42"'.

batch mode (--batch INPUTS): INPUTS is a folder of images (mask = alpha channel, or a sibling
NAME.mask.png, white = fill) or a CSV / JSONL file with columns image, mask, prompt, seed and
any NODE.INPUT (a per-row --set). Each job goes to the --server with the shortest queue; a
server that stops answering gets no new jobs and its unfinished ones move to another. DIR
keeps manifest.jsonl (run the same command again: finished jobs are skipped), results.csv
and contact_sheet.jpg. --estimate prints the hosted price and sends nothing; --max-usd N
refuses a batch estimated above N.

examples:
  python run.py flux_fill_api.json --image photo.png --set 12.prompt="a red door" --out out/
  python run.py wf.json --image 3=photo.png --image 4=mask.png --set KSampler.steps=8 --seed-random
  python run.py workflows/api/fal_fill.api.json --batch photos/ --out out/ \\
      --server http://gpu1:8188 --server http://gpu2:8188 --max-usd 5

exit status: 0 done (saved paths printed on stdout), 1 the workflow failed (the node's error
is printed) or, in batch mode, some job failed, 2 bad arguments or workflow file, 3 the batch
is estimated above --max-usd (nothing sent), 124 --timeout reached, 130 interrupted (Ctrl-C
also interrupts the prompt on the server)."""


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="run.py", description="Run an API-format workflow (Workflow > Export (API)) on a "
        "ComfyUI server: upload inputs, follow progress, download the outputs; or run it over a "
        "whole folder or table of inputs on several servers (--batch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workflow", help="API-format workflow JSON (UI-format files are refused)")
    ap.add_argument("--server", dest="servers", action="append", default=[], metavar="URL",
                    help=f"ComfyUI URL (default {DEFAULT_SERVER}); repeat it in batch mode to use several")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE.INPUT=VALUE",
                    help="set a node input (repeatable; in batch mode, for every row)")
    ap.add_argument("--image", dest="images", action="append", default=[], metavar="[NODE=]PATH",
                    help="upload PATH and set NODE's 'image' input to it; without NODE, the "
                         "workflow's only LoadImage (repeatable). Batch mode: NODE= (no path) names "
                         "the node that takes each row's image")
    ap.add_argument("--seed-random", action="store_true",
                    help="give every seed / noise_seed input a new random value")
    ap.add_argument("--out", default=None, help="folder for the downloaded outputs (default outputs; "
                    "required with --batch: it holds the batch's manifest)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="give up (and interrupt the prompt) after this many seconds in all; in "
                         "batch mode, per job once it runs")
    batch = ap.add_argument_group("batch mode")
    batch.add_argument("--batch", metavar="INPUTS", help="folder of images, or a .csv / .jsonl table")
    batch.add_argument("--estimate", action="store_true",
                       help="print the hosted price of the batch and exit; nothing is sent")
    batch.add_argument("--max-usd", type=float, default=None, metavar="N",
                       help="refuse to start a batch whose hosted estimate is above N (exit 3)")
    batch.add_argument("--queue-depth", type=int, default=2, metavar="N",
                       help="prompts kept queued on each server (default %(default)s)")
    return ap


def main_batch(args, prompt) -> int:
    from client.batch import BatchOptions, run_batch
    target_ref, fixed = None, {}
    for spec in args.images:
        node_ref, sep, path = spec.partition("=")
        if sep and not path:
            target_ref = node_ref
        else:
            nid, p = image_target(prompt, spec)
            fixed[nid] = p
    target = batch_target(prompt, target_ref)
    if target in fixed:
        raise RunnerError(f"--image: node {target} takes the batch's images; give it no file", EXIT_USAGE)
    if args.out is None and not args.estimate:
        raise RunnerError("--batch needs --out DIR (it holds the manifest that makes the batch resumable)",
                          EXIT_USAGE)
    opt = BatchOptions(prompt=prompt, target=target, inputs=args.batch,
                       out_dir=None if args.out is None else Path(args.out),
                       servers=args.servers or [DEFAULT_SERVER], fixed=fixed, estimate_only=args.estimate,
                       max_usd=args.max_usd, depth=args.queue_depth, job_timeout=args.timeout)
    return run_batch(opt)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        prompt = load_workflow(args.workflow)
        for spec in args.sets:
            apply_set(prompt, spec)
        if args.seed_random:
            for name, seed in randomize_seeds(prompt).items():
                print(f"{name} = {seed}", file=sys.stderr)
        if args.batch:
            return main_batch(args, prompt)
        if args.estimate or args.max_usd is not None:
            raise RunnerError("--estimate and --max-usd go with --batch", EXIT_USAGE)
        if len(args.servers) > 1:
            raise RunnerError("several --server URLs go with --batch (one run uses one server)", EXIT_USAGE)
        server = args.servers[0] if args.servers else DEFAULT_SERVER
        targets = [image_target(prompt, spec) for spec in args.images]
        if targets:
            client = Client(server)
            for nid, path in targets:
                prompt[nid]["inputs"]["image"] = client.upload_image(path)
        saved = run(prompt, server, args.out or "outputs", timeout=args.timeout)
    except RunnerError as e:
        for path in e.saved:
            print(path)
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    for path in saved:
        print(path)
    if not saved:
        print("(the workflow finished but produced no output files)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
