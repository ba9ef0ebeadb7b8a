#!/usr/bin/env bash
# A headless Chromium screenshot of a report.html, to check the page in a real browser:
#   tools/screenshot_report.sh [REPORT_HTML] [PNG]
# Defaults: runs/demo/dpo/report.html (launch/demo's), and the PNG beside it (report.png).
# SHOT_HEIGHT (default 2400) sets the window height in pixels; the page below it is cut off.
# Installs Debian's chromium through apt when it is missing (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
report=${1:-runs/demo/dpo/report.html}
png=${2:-${report%.html}.png}
[ -f "$report" ] || { echo "screenshot_report: no $report (run launch/demo, or dpo-dist report RUN_DIR)" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing chromium (apt)…" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
    browser=$(command -v chromium)
fi
abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
out=$(cd "$(dirname "$png")" && pwd)/$(basename "$png")
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,"${SHOT_HEIGHT:-2400}" \
    --screenshot="$out" "file://$abs" 2>/dev/null
[ -s "$out" ] || { echo "screenshot_report: chromium wrote no $out" >&2; exit 1; }
echo "$out"
