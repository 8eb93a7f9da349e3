"""pytest plugin (loaded with `-p pack_root_plugin`): collect the pack's root folder as a
plain directory, not as a Python package.

The root has an __init__.py because ComfyUI loads the pack from it; pytest would otherwise
import that __init__ (and so register the nodes) before any test runs, outside the host.
The tests load the pack the way ComfyUI does instead (see conftest.py)."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path, parent):
    if Path(path).resolve() == ROOT:
        return pytest.Dir.from_parent(parent, path=path)
    return None
