#!/usr/bin/env bash
# Run by `npm test` before the suite: the viewer's browser tests drive Debian's chromium, the
# menu test drives a real terminal through tmux, and the queue and export tests run the
# pipeline's side in Python (its own sqlite3 module, as the pipeline writes the database). Installs whichever is missing when it can
# (root with apt-get); otherwise says what to install, and those tests fail with the same advice.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} for the browser and terminal tests (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: ${missing[*]} not installed; the tests that need them will fail until you install them (e.g. sudo apt-get install ${missing[*]})" >&2
fi
