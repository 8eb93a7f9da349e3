#!/usr/bin/env bash
# Start ComfyUI with the pack: scripts/run.sh [HOST] [PORT]. Extra args go to main.py via $COMFY_ARGS.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/scripts/hosts.sh"
host="${1:-$FLUXFILL_DEFAULT_HOST}"; port="${2:-8188}"
dir="$here/.hosts/$host"
[ -f "$dir/main.py" ] || { echo "host $host is not set up: run make setup" >&2; exit 1; }
cpu=""
"$here/.hosts/$host.venv/bin/python" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || cpu="--cpu"
cd "$dir"
exec "$here/.hosts/$host.venv/bin/python" main.py $cpu --listen 127.0.0.1 --port "$port" \
  --disable-auto-launch --database-url "sqlite:///$dir/user/comfyui.db" ${COMFY_ARGS:-}
