#!/usr/bin/env bash
# Run the whole suite once per host: scripts/test.sh HOST... [-- PYTEST ARGS]
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
hosts=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do hosts+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
status=0
for h in "${hosts[@]}"; do
  echo "=== tests against $h ==="
  FLUXFILL_COMFYUI="$here/.hosts/$h" "$here/.hosts/$h.venv/bin/python" -m pytest "$here/tests" "$@"
  rc=$?
  # exit 5 = no tests collected: that is a failure for us too, say so
  [ $rc -eq 5 ] && echo "no tests were collected against $h" >&2
  [ $rc -ne 0 ] && status=1
done
exit $status
