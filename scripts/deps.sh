#!/usr/bin/env bash
# Installs what the tests need and a fresh machine lacks: redis-server (real
# Redis for every store/worker/edge test) and chromium (the browser test);
# with "bench", what `make bench` needs.
# Debian/Ubuntu only; elsewhere it says what to install.
set -euo pipefail

# "deps.sh" (make deps): what the tests need. "deps.sh bench" (make bench):
# redis-server, and websockify, the second baseline the bench measures the
# stack against (without it that row reads "not measured").
case "${1:-test}" in
  test) want=(redis-server chromium) ;;
  bench) want=(redis-server websockify) ;;
  *) echo "deps: unknown set ${1} (test or bench)" >&2; exit 2 ;;
esac
missing=()
for c in "${want[@]}"; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]} from apt" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: apt-get not found. Install these yourself: ${missing[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "deps: not root and no sudo. Run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get update -qq >/dev/null; then
  echo "deps: apt-get update failed (no network to the Debian mirror?). Install by hand: ${missing[*]}" >&2
  exit 1
fi
if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  echo "deps: apt-get install ${missing[*]} failed. Install by hand and re-run." >&2
  exit 1
fi
for m in "${missing[@]}"; do
  command -v "$m" >/dev/null 2>&1 || { echo "deps: $m still missing after install" >&2; exit 1; }
done
echo "deps: installed ${missing[*]}" >&2
