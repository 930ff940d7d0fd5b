#!/usr/bin/env bash
# Run by `npm test` before the suite: the viewer's browser tests drive Debian's chromium, the
# menu test drives a real terminal through tmux, the queue and export tests run the pipeline's
# side in Python (its own sqlite3 module, as the pipeline writes the database), and the hash
# test compares object ids with b3sum. Installs whichever is missing when it can (root with
# apt-get); otherwise says what to install, and those tests fail with the same advice. b3sum is
# optional: where it cannot be installed, only the hash test's comparison with it is skipped,
# with a message.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
optional=()
command -v b3sum >/dev/null 2>&1 || optional+=(b3sum)
[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} ${optional[*]} for the browser, terminal, pipeline and hash tests (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq "${missing[@]}" >/dev/null
  [ ${#optional[@]} -eq 0 ] || apt-get install -y -qq "${optional[@]}" >/dev/null || echo "note: ${optional[*]} could not be installed; the hash test skips its comparison with b3sum" >&2
else
  [ ${#missing[@]} -eq 0 ] || echo "note: ${missing[*]} not installed; the tests that need them will fail until you install them (e.g. sudo apt-get install ${missing[*]})" >&2
  [ ${#optional[@]} -eq 0 ] || echo "note: ${optional[*]} not installed; the hash test skips its comparison with b3sum (sudo apt-get install b3sum)" >&2
fi
