#!/usr/bin/env bash
# Runs the whole test suite on this machine: makes sure the services the tests talk to are
# installed and running (idempotent), then runs lints and every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

need_apt=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
# The browser test drives the Delivery Dashboard in Debian's Chromium (headless).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# PostgreSQL and Redis: start them when they are down (later issues' tests use them).
if command -v pg_ctlcluster >/dev/null 2>&1 && ! (command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q); then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if command -v redis-server >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

# The independent OCM client the interoperability tests compare against, in its own venv, with
# Playwright (its DevTools-protocol driver; the browser is the system's Chromium above).
venv=target/python-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import ocm, oci, odg_client, playwright' >/dev/null 2>&1; then
  log "installing gardener-ocm, odg-client and playwright into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r tests/python/requirements.txt
fi
export ODG_PYTHON="$PWD/$venv/bin/python"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo nextest run"
cargo nextest run --workspace --locked --profile ci

# The Helm chart (charts/odg): rendered and linted by Helm's own engine (helm-python-sdk, offline),
# every object validated against the Kubernetes schemas (kubernetes-validate) and the CRD schemas
# in tests/chart/schemas, the rendered config files run through the binary built above, and the
# recorded scan burst replayed through the HPA's replica formula. Its own venv, reinstalled when
# tests/chart/requirements.txt changes.
chart_venv=target/chart-venv
chart_stamp="$chart_venv/.requirements.sha256"
chart_requirements=$(sha256sum tests/chart/requirements.txt | cut -d' ' -f1)
if [ ! -x "$chart_venv/bin/python" ] || [ "$(cat "$chart_stamp" 2>/dev/null)" != "$chart_requirements" ]; then
  log "installing the chart checks' requirements into $chart_venv"
  python3 -m venv "$chart_venv"
  "$chart_venv/bin/pip" install -q -r tests/chart/requirements.txt
  echo "$chart_requirements" >"$chart_stamp"
fi
log "pytest tests/chart"
ODG_BIN="$PWD/target/debug/odg" "$chart_venv/bin/python" -m pytest -q -p no:cacheprovider tests/chart

# Fuzz targets (fuzz/, cargo-fuzz on the nightly toolchain): each replays its committed corpus
# (every crash found so far is in it) and then fuzzes for a short time. The long runs that the
# figures in ARCHITECTURE.md's FUZZING section come from are `scripts/fuzz.sh`, not CI.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install -q --locked cargo-fuzz --version 0.13.2
  fi
  ODG_FUZZ_SECONDS="${ODG_FUZZ_SECONDS:-20}" bash scripts/fuzz.sh
else
  log "SKIPPING the fuzz targets: no nightly toolchain on this machine (rustup toolchain install nightly)"
fi
