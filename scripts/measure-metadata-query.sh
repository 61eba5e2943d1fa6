#!/usr/bin/env bash
# POST /artefacts/metadata/query at its bounds (figures in BENCHMARKS.md), against a release
# `odg serve` over a local docker-registry holding 100 components of 20 resources each.
# Usage: scripts/measure-metadata-query.sh (SQLite) or DB_URL=postgres://... scripts/measure-metadata-query.sh
set -euo pipefail
ODG=${ODG_BIN:-target/release/odg}
DB_URL=${DB_URL:-}
work=$(mktemp -d)
reg_port=$((20000 + RANDOM % 10000)); odg_port=$((reg_port + 1))
cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: 127.0.0.1:$reg_port, secret: measure}
YAML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 & reg_pid=$!
trap 'kill $reg_pid ${odg_pid:-} 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT
until curl -fs "http://127.0.0.1:$reg_port/v2/" > /dev/null; do sleep 0.2; done
mkdir -p "$work/descriptors"
for i in $(seq 0 99); do
  printf 'meta:\n  schemaVersion: v2\ncomponent:\n  name: acme.org/c-%s\n  version: 1.0.0\n  provider: p\n  repositoryContexts: []\n  sources: []\n  componentReferences: []\n  resources:\n%s' "$i" \
    "$(for r in $(seq 0 19); do printf '  - {name: img-%s, version: 1.0.0, type: ociImage, relation: external, access: {type: ociRegistry, imageReference: "x/y:%s"}}\n' "$r" "$r"; done)" \
    > "$work/descriptors/c-$i.yaml"
done
"$ODG" push --ocm-repo "http://127.0.0.1:$reg_port/ocm" "$work"/descriptors/*.yaml > /dev/null
db_args=(); [ -n "$DB_URL" ] && db_args=(--database-url "$DB_URL")
"$ODG" serve --listen "127.0.0.1:$odg_port" --ocm-repo "http://127.0.0.1:$reg_port/ocm" \
  --cache-dir "$work/cache" "${db_args[@]}" > "$work/odg.log" 2>&1 & odg_pid=$!
until curl -fs "http://127.0.0.1:$odg_port/ready" > /dev/null; do sleep 0.2; done
registry_requests() { curl -s "http://127.0.0.1:$odg_port/metrics" | awk '/^odg_registry_requests_total/ {sum += $NF} END {print sum + 0}'; }
body() { python3 -c "
import json, sys
count, distinct = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({'entries': [{'component_name': 'acme.org/c-%d' % (i % distinct), 'component_version': '1.0.0',
  'artefact_kind': 'resource', 'artefact': {'artefact_name': 'img-%d' % (i // distinct)}} for i in range(count)]}))" "$1" "$2"; }
query() {
  local before; before=$(registry_requests)
  curl -s -o "$work/answer.json" -w "%{http_code} %{time_total}s %{size_upload}B" -X POST \
    -H 'content-type: application/json' --data-binary "@$1" \
    "http://127.0.0.1:$odg_port/artefacts/metadata/query?type=finding/vulnerability"
  echo " registry requests: $(( $(registry_requests) - before )) $(head -c 160 "$work/answer.json")"
}
body 200000 200000 > "$work/huge.json"; body 1000 100 > "$work/max.json"; body 1000 1000 > "$work/max-distinct.json"
echo "200,000 entries (200,000 distinct):  $(query "$work/huge.json")"
echo "1,000 entries over 100 versions, cold: $(query "$work/max.json")"
echo "same again, warm:                      $(query "$work/max.json")"
echo "1,000 entries over 1,000 versions (900 absent), cold: $(query "$work/max-distinct.json")"
