"""Regenerate the README's endpoint tables from core/hosted/endpoint_table.py (the one source of
truth for parameters, defaults, ranges and prices):  python scripts/readme_tables.py
tests/test_readme.py fails when the README's copy is out of date."""
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- endpoint-tables:begin -->", "<!-- endpoint-tables:end -->"


def _core():
    if "fluxfill" not in sys.modules:  # the pack's folder, without running its __init__ (needs ComfyUI)
        pkg = types.ModuleType("fluxfill")
        pkg.__path__ = [str(ROOT)]
        sys.modules["fluxfill"] = pkg
    from fluxfill.core.hosted import endpoint_table, presentation
    return endpoint_table, presentation


def tables() -> str:
    endpoint_table, presentation = _core()
    parts = [presentation.markdown_table(eid).strip().replace("\n### ", "\n#### ").replace("### ", "#### ", 1)
             for eid in endpoint_table.ENDPOINTS]
    return "\n\n".join(parts)


def render(readme: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{tables()}\n{END}{tail}"


if __name__ == "__main__":
    path = ROOT / "README.md"
    path.write_text(render(path.read_text()))
    print(f"updated {path}")
