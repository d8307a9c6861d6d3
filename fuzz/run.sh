#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 450), JOBS at a time (default 2), then
# prints executions, corpus size and crashes per target. Needs `cargo afl build --release`.
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-450}"; jobs="${JOBS:-2}"
bin="${CARGO_TARGET_DIR:-target}/release"
mkdir -p out
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
run() {
  local t="$1"
  rm -rf "out/$t"
  local input="seeds/$t"
  [ -d "corpus/$t" ] && input="corpus/$t"
  cargo afl fuzz -i "$input" -o "out/$t" -V "$secs" -t 5000 -m none -- "$bin/$t" \
    > "out/$t.log" 2>&1
}
targets=(email mbox document party_import range catalogue query zip request)
running=0
for t in "${targets[@]}"; do
  run "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
for t in "${targets[@]}"; do
  s="out/$t/default/fuzzer_stats"
  printf '%-13s execs %-10s corpus %-6s crashes %-3s hangs %s\n' "$t" \
    "$(awk '/^execs_done/{print $3}' "$s" 2>/dev/null)" \
    "$(awk '/^corpus_count/{print $3}' "$s" 2>/dev/null)" \
    "$(awk '/^saved_crashes/{print $3}' "$s" 2>/dev/null)" \
    "$(awk '/^saved_hangs/{print $3}' "$s" 2>/dev/null)"
done
