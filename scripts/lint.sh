#!/usr/bin/env bash
# Lint the whole tree with ruff (rules: pyproject.toml [tool.ruff]); `make test` runs it first.
#   scripts/lint.sh [RUFF CHECK ARGS ...]     e.g. --statistics, --fix, --output-format concise
# Ruff is pinned and installed once into its own small venv, $FLUXFILL_CACHE/ruff-VERSION
# (default ~/.cache/fluxfill), from PyPI; .hosts/ is skipped because .gitignore lists it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
RUFF_VERSION=0.17.6
cache="${FLUXFILL_CACHE:-$HOME/.cache/fluxfill}"
venv="$cache/ruff-$RUFF_VERSION"
ruff="$venv/bin/ruff"
PY="${PYTHON311:-$(command -v python3.11 || command -v python3)}"

if ! [ -x "$ruff" ] || [ "$("$ruff" --version 2>/dev/null)" != "ruff $RUFF_VERSION" ]; then
  echo "[lint] installing ruff $RUFF_VERSION into $venv" >&2
  rm -rf "$venv"            # a half-made one (interrupted install) is made again
  mkdir -p "$cache"
  "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "ruff==$RUFF_VERSION"
  [ "$("$ruff" --version)" = "ruff $RUFF_VERSION" ]
fi

cd "$here"
echo "[lint] ruff $RUFF_VERSION: ruff check ." >&2
exec "$ruff" check . "$@"
