"""What the Comfy Registry and ComfyUI-Manager read from this pack, checked offline the way
`comfy node validate` (comfy-cli) and the registry's published rules check it:

- pyproject `[project]` / `[tool.comfy]` (comfy_cli/registry/config_parser.py
  extract_node_configuration, docs.comfy.org/registry/specifications): name, semantic version,
  license shape, Repository URL, OS / accelerator classifiers, `requires-comfyui` in the format
  comfy-cli accepts, PublisherId, an Icon whose raw URL names a file of this repository (square,
  at most 400x400, PNG/JPG/GIF/SVG), `includes` / `web` / `Banner` / `Models` when present;
- requirements.txt mirrors `[project] dependencies` (ComfyUI-Manager installs the former, pip the latter);
- comfy-cli's "security checks" (`ruff check . --select S102,S307,E702`): no exec, no eval, no
  `a; b` lines, and no syntax that requires-python's oldest Python (3.10) rejects.
"""
import ast
import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path
from urllib.parse import urlparse

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from PIL import Image

try:
    import tomllib  # novermin  (3.11+; 3.10 falls back to tomli below)
except ModuleNotFoundError:       # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
COMFY = PYPROJECT["tool"]["comfy"]
# what ComfyUI itself installs: a pack must not pin these (notes: conventions of a published pack)
COMFYUI_SHIPS = {"torch", "torchvision", "torchaudio", "numpy", "pillow", "safetensors", "aiohttp"}


def _oldest_python() -> tuple[int, int]:
    spec = SpecifierSet(PROJECT["requires-python"])
    for minor in range(6, 20):
        if Version(f"3.{minor}") in spec:
            return 3, minor
    raise AssertionError(f"requires-python {spec} admits no Python 3")


# ---------------------------------------------------------------- [project]
def test_project_name_version_description_license():
    name = PROJECT["name"]
    # registry node id: < 100 chars, alphanumerics - _ . only, no two specials in a row,
    # not starting with a digit or a special; "ComfyUI" in the name is discouraged
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", name), name
    assert not re.search(r"[._-]{2}", name) and not name.endswith(("-", "_", ".")), name
    assert "comfyui" not in name.lower(), name
    assert isinstance(PROJECT["version"], str) and re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"])
    assert "version" not in PROJECT.get("dynamic", [])
    assert PROJECT["description"].strip()
    lic = PROJECT["license"]      # comfy-cli: {text = ...} or {file = ...}, else a warning
    assert isinstance(lic, dict) and set(lic) <= {"text", "file"} and lic, lic
    if "file" in lic:
        assert (ROOT / lic["file"]).is_file()


def test_requires_python_is_met_here_and_names_3_10():
    spec = SpecifierSet(PROJECT["requires-python"])
    assert _oldest_python() == (3, 10), spec          # ComfyUI's own floor; the checks below use it
    assert Version("{}.{}.{}".format(*sys.version_info[:3])) in spec


def test_repository_and_other_urls():
    urls = PROJECT["urls"]
    repo = urls["Repository"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo), repo
    for label, url in urls.items():
        assert urlparse(url).scheme == "https" and url.startswith(repo), (label, url)
    assert {"Documentation", "Bug Tracker"} <= set(urls)


def test_classifiers_are_the_kinds_comfy_cli_accepts():
    classifiers = PROJECT["classifiers"]
    assert all(re.fullmatch(r"[A-Z][^:]*( :: [^:]+)+", c) for c in classifiers), classifiers
    os_values = [c.removeprefix("Operating System :: ") for c in classifiers if c.startswith("Operating System :: ")]
    assert os_values, "no Operating System classifier: the registry shows no OS support"
    assert all(v.startswith(("Microsoft", "POSIX", "MacOS", "OS Independent")) for v in os_values), os_values
    accelerators = {"GPU :: NVIDIA CUDA", "GPU :: AMD ROCm", "GPU :: Intel Arc", "NPU :: Huawei Ascend",
                    "GPU :: Apple Metal"}
    env = [c.removeprefix("Environment :: ") for c in classifiers if c.startswith("Environment ::")]
    assert set(env) <= accelerators, env      # anything else makes comfy-cli drop them all


def _requirements_txt() -> list[str]:
    out = []
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()      # comfy-cli's comment rule
        if line:
            assert not line.startswith("-"), f"pip option in requirements.txt: {line}"
            out.append(line)
    return out


def test_requirements_txt_mirrors_project_dependencies():
    deps = PROJECT["dependencies"]
    assert [str(Requirement(d)) for d in _requirements_txt()] == [str(Requirement(d)) for d in deps]
    names = {Requirement(d).name.lower() for d in deps}
    assert not names & COMFYUI_SHIPS, f"pins what ComfyUI already installs: {names & COMFYUI_SHIPS}"
    assert not any(n.startswith("comfyui-frontend-package") for n in names)


def test_dependencies_are_installed_in_this_host():
    from importlib.metadata import PackageNotFoundError, version
    for dep in PROJECT["dependencies"]:
        req = Requirement(dep)
        try:
            have = version(req.name)
        except PackageNotFoundError:
            raise AssertionError(f"{req.name} is not installed in this host's environment") from None
        assert req.specifier.contains(have, prereleases=True), f"{req}: installed {have}"


# ---------------------------------------------------------------- [tool.comfy]
def test_publisher_and_display_name():
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", COMFY["PublisherId"]), COMFY["PublisherId"]
    assert COMFY["DisplayName"].strip()


def _repo_file(url: str, what: str) -> Path:
    """The file of this repository that a raw.githubusercontent.com URL on main names."""
    owner_repo = urlparse(PROJECT["urls"]["Repository"]).path.strip("/")
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/main/"
    assert url.startswith(prefix), f"{what} {url!r} is not a raw URL into {owner_repo} on main"
    rel = url.removeprefix(prefix)
    path = ROOT / rel
    assert path.is_file(), f"{what}: {rel} does not exist"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=ROOT, capture_output=True)
    if tracked.returncode not in (0, 1) or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell whether the file is committed")
    assert tracked.returncode == 0, f"{what}: {rel} is not committed, so the URL would 404"
    return path


def test_icon_is_a_committed_square_image_of_at_most_400px():
    path = _repo_file(COMFY["Icon"], "Icon")
    assert path.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".svg")
    if path.suffix.lower() != ".svg":
        with Image.open(path) as im:
            assert im.format in ("PNG", "JPEG", "GIF"), im.format
            assert im.width == im.height and 64 <= im.width <= 400, im.size
            im.load()                       # a truncated file fails here
    assert path.stat().st_size < 200 * 1024


def test_optional_comfy_fields_when_present():
    for folder in COMFY.get("includes", []):
        assert isinstance(folder, str) and (ROOT / folder.lstrip("/")).is_dir(), folder
    if "web" in COMFY:
        assert (ROOT / COMFY["web"]).is_dir()
    if COMFY.get("Banner"):
        _repo_file(COMFY["Banner"], "Banner")
    for m in COMFY.get("Models", []):
        assert set(m) >= {"location", "model_url"}, m
    unknown = set(COMFY) - {"PublisherId", "DisplayName", "Icon", "Banner", "includes", "requires-comfyui", "web",
                            "Models", "version"}
    assert not unknown, f"fields comfy-cli does not read: {unknown}"


def test_requires_comfyui_is_in_comfy_clis_format_and_admits_the_host_under_test():
    raw = COMFY["requires-comfyui"]
    part = r"(?:(==|>=|<=|!=|~=|>|<|<>|=)\s*)?(\d+\.\d+\.\d+(?:-[a-zA-Z0-9]+)?)?"    # config_parser.validate_version
    assert all(re.fullmatch(part, p.strip()) for p in raw.split(",")), raw
    comfy = os.environ.get("FLUXFILL_COMFYUI")
    if not comfy or not (Path(comfy) / "comfyui_version.py").is_file():
        pytest.skip("no host under test (FLUXFILL_COMFYUI)")
    text = (Path(comfy) / "comfyui_version.py").read_text()
    host = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", text).group(1)
    assert Version(host) in SpecifierSet(raw), f"the suite runs on ComfyUI {host}, outside requires-comfyui {raw}"


# ---------------------------------------------------------------- comfy-cli's security checks
def _python_files() -> list[Path]:
    """Every .py file ruff sees from the root: tracked or untracked, minus what .gitignore drops."""
    res = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.py"],
                         cwd=ROOT, capture_output=True)
    if res.returncode == 0:
        files = [ROOT / p for p in res.stdout.decode().split("\0") if p]
    else:
        files = [p for p in ROOT.rglob("*.py") if ".hosts" not in p.parts and "__pycache__" not in p.parts]
    files = [p for p in files if p.is_file()]
    assert len(files) > 20
    return files


class _NewerThan310(ast.NodeVisitor):
    """Syntax of 3.11+ that ast.parse(feature_version=(3, 10)) still accepts."""

    def __init__(self):
        self.found = []

    def visit_Subscript(self, node):
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if any(isinstance(p, ast.Starred) for p in parts):
            self.found.append((node.lineno, "star expression in an index (PEP 646, Python 3.11)"))
        self.generic_visit(node)

    def visit_TryStar(self, node):              # only exists (and parses) on 3.11+
        self.found.append((node.lineno, "except* (Python 3.11)"))
        self.generic_visit(node)


def test_every_python_file_parses_on_the_oldest_required_python():
    oldest = _oldest_python()
    bad = []
    for path in _python_files():
        rel = path.relative_to(ROOT)
        src = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(src, str(rel), feature_version=oldest)
        except SyntaxError as e:
            bad.append(f"{rel}:{e.lineno}: {e.msg}")
            continue
        v = _NewerThan310()
        v.visit(tree)
        bad += [f"{rel}:{line}: {why}" for line, why in v.found]
    assert not bad, f"needs a newer Python than requires-python {PROJECT['requires-python']}:\n" + "\n".join(bad)


def test_no_exec_eval_or_semicolon_statements():
    """ruff S102 (exec), S307 (eval), E702 (multiple statements on one line, semicolon)."""
    bad = []
    for path in _python_files():
        rel = path.relative_to(ROOT)
        src = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(src, str(rel))
        except SyntaxError:
            continue                  # reported by the test above
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval"):
                bad.append(f"{rel}:{node.lineno}: {node.func.id}()")
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.OP and tok.string == ";":
                bad.append(f"{rel}:{tok.start[0]}: two statements on one line (;)")
    assert not bad, "\n".join(bad)
