#!/usr/bin/env bash
# Instructions per warm request, deterministic whatever else the machine runs:
#   scripts/measure-instructions.sh [ODG_BINARY] [REQUESTS]
# Runs `odg serve` (the embedded demo) under callgrind with instrumentation off, sends 50
# warm-up requests, then counts only REQUESTS sequential keep-alive GETs of one descriptor.
# Extra request header: HDR='If-None-Match: "..."'. Needs valgrind, curl, python3.
set -euo pipefail
BIN=$(realpath "${1:-target/release/odg}")
N=${2:-2000}
PORT=${PORT:-18090}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"
ODG_LOG=warn valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$DIR/cg.out" \
  "$BIN" serve --listen "127.0.0.1:$PORT" > "$DIR/log" 2>&1 &
VPID=$!
URL_PATH="/ocm/component?component_name=acme.org/shop/cart&version=1.0.0"
for _ in $(seq 1 120); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT$URL_PATH" && break
  sleep 1
done
client() {
  python3 - "$1" "${HDR:-}" "$PORT" "$URL_PATH" <<'PY'
import http.client, sys
n, header, port, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = dict([tuple(part.strip() for part in header.split(":", 1))]) if header else {}
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    assert response.status in (200, 304), response.status
PY
}
client 50
callgrind_control -i on "$VPID" > /dev/null
client "$N"
callgrind_control -i off "$VPID" > /dev/null
kill -INT "$VPID"; sleep 0.5; kill "$VPID" 2> /dev/null || true; wait "$VPID" || true
TOTAL=$(callgrind_annotate "$DIR"/cg.out* 2> /dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$TOTAL instructions for $N requests: $((TOTAL / N)) per request"
