"""Shared fixtures. Tests run inside a host's venv (scripts/test.sh): FLUXFILL_COMFYUI names
the real ComfyUI under test; nothing of ComfyUI is replaced or imitated.

`fluxfill` is the pack's folder made importable for tests of the pure modules (core/)
without running the pack's __init__ (which registers nodes and needs the host)."""
import asyncio
import sys
import types
from pathlib import Path

import pytest

from comfy_host import ROOT, ComfyServer, comfy_dir, make_base_dir

if "fluxfill" not in sys.modules:
    _pkg = types.ModuleType("fluxfill")
    _pkg.__path__ = [str(ROOT)]
    _pkg.__file__ = str(ROOT / "__init__.py")
    sys.modules["fluxfill"] = _pkg


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    """One real ComfyUI server (the host under test) with FluxFill and the test packs."""
    base = make_base_dir(tmp_path_factory.mktemp("comfy_server"))
    server = ComfyServer(base).start()
    yield server
    server.stop()


class InProcessHost:
    """The host imported into the test process: its real node classes and PromptExecutor."""

    def __init__(self, base: Path):
        self.base = base
        sys.path.insert(0, str(comfy_dir()))
        import comfy.cli_args
        comfy.cli_args.args.cpu = True
        comfy.cli_args.args.base_directory = str(base)
        import comfy.model_management  # noqa: F401  (after args.cpu)
        import nodes
        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        self.nodes = nodes
        missing = {"MaskPrep", "PasteBack"} - set(nodes.NODE_CLASS_MAPPINGS)
        if missing:
            raise RuntimeError(f"FluxFill did not load into the host: {missing} missing")

    def node(self, node_id: str):
        """An instance of a registered node class (FluxFill's, core's, or a test pack's)."""
        return self.nodes.NODE_CLASS_MAPPINGS[node_id]()

    def call(self, node_id: str, unique_id=None, **inputs):
        """Run a node as ComfyUI's executor does: a V1 node's FUNCTION on an instance, a V3
        node's execute on a class clone carrying its hidden inputs. Returns the outputs tuple."""
        cls = self.nodes.NODE_CLASS_MAPPINGS[node_id]
        if not hasattr(cls, "PREPARE_CLASS_CLONE"):
            obj = cls()
            return getattr(obj, obj.FUNCTION)(**inputs)
        hidden = {"UNIQUE_ID": unique_id}
        # 0.30 takes the executor's v3_data; v0.3.75 the hidden inputs themselves
        clone = cls.PREPARE_CLASS_CLONE({"hidden_inputs": hidden})
        if clone.hidden.unique_id != unique_id:
            clone = cls.PREPARE_CLASS_CLONE(hidden)
        output = clone.execute(**inputs)
        if asyncio.iscoroutine(output):
            output = asyncio.run(output)
        return tuple(output.args)


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """The real host, in-process, with FluxFill loaded through ComfyUI's own custom-node loader."""
    return InProcessHost(make_base_dir(tmp_path_factory.mktemp("comfy_inproc")))
