#!/usr/bin/env bash
# Idempotent set-up of a fresh machine for Centralita: Java 17+ and Maven (for the Kafka broker jars and
# Spark), Debian's Chromium with --with-browser (the web chat end-to-end test), then a Python virtualenv in
# .venv with Centralita installed in editable mode.
# Every step checks first and does nothing when its result is already there, so it is cheap to re-run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CENTRALITA_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "bootstrap: need root to install system packages: $*" >&2; return 1; fi
}

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1
}

with_browser=0
[ "${1:-}" = "--with-browser" ] && with_browser=1

missing=()
if [ "$with_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ]; then missing+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]} from Debian" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating virtualenv $venv" >&2
  "$python" -m venv "$venv"
fi

stamp="$venv/.centralita-install-stamp"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python dependencies (cached by pip after the first time)" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e "$root[dev]"
  echo "$want" > "$stamp"
fi
