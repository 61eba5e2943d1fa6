#!/usr/bin/env bash
# Builds every fuzz target (fuzz/) and runs each for ODG_FUZZ_SECONDS (default 60) on its corpus,
# with one worker per core. New inputs that widen coverage are added to fuzz/corpus/<target>;
# a crash stops the run with the reproducer under fuzz/artifacts/<target>/ (make it a regression
# test: copy it into the corpus and fix the bug). Prints executions per target at the end.
#
#   bash scripts/fuzz.sh                      # every target, 60 s each
#   ODG_FUZZ_SECONDS=3600 bash scripts/fuzz.sh jwt cache_entry
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${ODG_FUZZ_SECONDS:-60}"
jobs="${ODG_FUZZ_JOBS:-$(nproc)}"
cargo +nightly fuzz build -O
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
summary=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  log="target/fuzz-$target.log"
  mkdir -p target
  # -timeout: an input that takes over a second is a finding (hostile documents must be cheap);
  # -rss_limit_mb: so must one that needs more than 2 GiB.
  cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -fork="$jobs" \
    -ignore_crashes=0 -ignore_timeouts=0 -ignore_ooms=0 >"$log" 2>&1 || {
      echo "fuzz target $target FAILED; its log:" >&2
      tail -n 60 "$log" >&2
      exit 1
    }
  executions=$(grep -oE 'stat::number_of_executed_units: *[0-9]+|#[0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+$' || echo "?")
  summary+=("$target: $executions executions in ${seconds}s, 0 crashes, 0 timeouts")
done
printf 'fuzz: %s\n' "${summary[@]}"
