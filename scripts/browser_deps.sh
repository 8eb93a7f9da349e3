#!/usr/bin/env bash
# Headless Chromium + its WebDriver for the browser tests (tests/browser.py), from Debian
# packages: Playwright's and Selenium Manager's browser downloads need internet the CI
# machines do not have. Idempotent: does nothing when both binaries are present.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "browser_deps: need root (or sudo) to apt-get install chromium chromium-driver" >&2; exit 1; }
  sudo="sudo"
fi
echo "[browser_deps] installing chromium + chromium-driver (apt)" >&2
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium chromium-driver
/usr/bin/chromium --version >&2
