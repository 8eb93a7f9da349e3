"""Run an API-format ComfyUI workflow from the command line (thin CLI over client/).

    python run.py WORKFLOW.json [--server URL] [--set NODE.INPUT=VALUE ...]
                  [--image [NODE=]PATH ...] [--seed-random] [--out DIR] [--timeout S]

A script, not part of the pack's import: Python puts this folder first on sys.path, so
`client` below is the pack's client/ (a ComfyUI API client; it never imports ComfyUI).
"""
import argparse
import sys

from client.errors import EXIT_INTERRUPTED, RunnerError
from client.runner import Client, run
from client.workflow import apply_set, image_target, load_workflow, randomize_seeds


EPILOG = """\
NODE is a node id ("12"), a class_type that occurs once ("KSampler") or a node title
(_meta.title). VALUE is parsed as JSON when it parses (20, 1.5, true, [1,2]) and taken as a
string otherwise; quote a string that looks like JSON: --set 6.text='"42"'.

examples:
  python run.py flux_fill_api.json --image photo.png --set 12.prompt="a red door" --out out/
  python run.py wf.json --image 3=photo.png --image 4=mask.png --set KSampler.steps=8 --seed-random

exit status: 0 done (saved paths printed on stdout), 1 the workflow failed (the node's error
is printed), 2 bad arguments or workflow file, 124 --timeout reached, 130 interrupted (Ctrl-C
also interrupts the prompt on the server)."""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="run.py", description="Run an API-format workflow (Workflow > Export (API)) on a "
        "ComfyUI server: upload inputs, follow progress, download the outputs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workflow", help="API-format workflow JSON (UI-format files are refused)")
    ap.add_argument("--server", default="http://127.0.0.1:8188", help="ComfyUI URL (default %(default)s)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE.INPUT=VALUE",
                    help="set a node input (repeatable)")
    ap.add_argument("--image", dest="images", action="append", default=[], metavar="[NODE=]PATH",
                    help="upload PATH and set NODE's 'image' input to it; without NODE, the "
                         "workflow's only LoadImage (repeatable)")
    ap.add_argument("--seed-random", action="store_true",
                    help="give every seed / noise_seed input a new random value")
    ap.add_argument("--out", default="outputs", help="folder for the downloaded outputs (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="give up (and interrupt the prompt) after this many seconds in all")
    args = ap.parse_args(argv)

    try:
        prompt = load_workflow(args.workflow)
        for spec in args.sets:
            apply_set(prompt, spec)
        targets = [image_target(prompt, spec) for spec in args.images]
        if args.seed_random:
            for name, seed in randomize_seeds(prompt).items():
                print(f"{name} = {seed}", file=sys.stderr)
        if targets:
            client = Client(args.server)
            for nid, path in targets:
                prompt[nid]["inputs"]["image"] = client.upload_image(path)
        saved = run(prompt, args.server, args.out, timeout=args.timeout)
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
