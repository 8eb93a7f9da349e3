"""Copies the example workflows' input images into ComfyUI's input folder at start-up.

The workflows in workflows/ name these files in their Load Image nodes. A file that is
already there is never overwritten (it may be the user's own); any failure is logged and
ignored: the pack must load even when the input folder is read-only.
"""
import logging
import shutil
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "workflows" / "inputs"


def copy_example_inputs(dest=None) -> list[str]:
    """Copy workflows/inputs/*.png to `dest` (default: ComfyUI's input directory) when absent.

    Returns the names copied."""
    copied = []
    try:
        if dest is None:
            import folder_paths
            dest = folder_paths.get_input_directory()
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for src in sorted(SOURCE.glob("*.png")):
            target = dest / src.name
            if target.exists():
                continue
            shutil.copyfile(src, target)
            copied.append(src.name)
    except Exception as e:  # noqa: BLE001 - never stop the pack from loading
        logging.warning("FluxFill: could not copy the example inputs into %s: %s", dest, e)
    return copied
