"""The house rules a newcomer relies on, checked on the code itself: no import cycles, the
pure core never imports ComfyUI, files short enough to read in one sitting."""
import ast
from pathlib import Path

from comfy_host import ROOT

PACK_DIRS = ("core", "nodes", "client")
COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "server", "nodes", "node_helpers",
                 "execution", "latent_preview"}
MAX_LINES = 400


def pack_modules() -> dict[str, Path]:
    """Dotted name inside the pack ("core.hosted.params") -> file."""
    found = {}
    for top in PACK_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict) -> tuple[set, set]:
    """(modules of the pack it imports, top-level outside modules it imports)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            outside.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                outside.add(node.module.split(".")[0])
                continue
            base = package.split(".") if package else []
            base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:    # "from . import x" imports the module x
                candidate = f"{target}.{alias.name}" if target else alias.name
                inside.add(candidate if candidate in modules else target)
    return {m for m in inside if m in modules and m != name}, outside


def test_no_import_cycles():
    modules = pack_modules()
    graph = {name: imports_of(name, path, modules)[0] for name, path in modules.items()}
    done, on_path = set(), []

    def visit(name):
        if name in on_path:
            raise AssertionError("import cycle: " + " -> ".join(on_path[on_path.index(name):] + [name]))
        if name in done:
            return
        on_path.append(name)
        for target in sorted(graph[name]):
            visit(target)
        on_path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_core_and_client_never_import_comfyui():
    modules = pack_modules()
    for name, path in modules.items():
        if name.split(".")[0] in ("core", "client"):
            used = imports_of(name, path, modules)[1] & COMFY_MODULES
            assert not used, f"{path.relative_to(ROOT)} imports {sorted(used)}"


def test_files_are_short_enough_to_read():
    files = [p for top in PACK_DIRS for p in (ROOT / top).rglob("*.py")]
    files += [ROOT / "run.py", *(ROOT / "web").rglob("*.js")]
    long = {str(p.relative_to(ROOT)): n for p in files
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"
