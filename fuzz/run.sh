#!/usr/bin/env bash
# Runs the libFuzzer targets.
#
#   fuzz/run.sh BUILD_DIR SECONDS
#       Fuzzes every BUILD_DIR/fuzz/fuzz_* for SECONDS each (FUZZ_JOBS at a
#       time, default: the number of CPUs), starting from a copy of its seed
#       corpus fuzz/corpus/NAME/ under BUILD_DIR/fuzz-work/NAME/ (the repo's
#       corpus is never written; inputs found are left in the copy), with
#       fuzz/NAME.dict when it exists. A crash, leak, timeout or
#       out-of-memory is written to fuzz/artifacts/ (git-ignored) and makes
#       the script exit 1. Prints one summary line per target.
#
#   fuzz/run.sh --smoke TARGET_BINARY CORPUS_DIR
#       Runs the target once over each file of CORPUS_DIR (an empty input
#       when there is none), no fuzzing: what the fuzz build's ctest does.
#
# Extra libFuzzer flags can be given in FUZZ_FLAGS (e.g. "-max_len=4096");
# FUZZ_TARGETS, a regex on the target name, runs only the targets it matches.
set -euo pipefail

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

if [ "${1:-}" = "--smoke" ]; then
  if [ $# -ne 3 ]; then
    echo "usage: $0 --smoke TARGET_BINARY CORPUS_DIR" >&2
    exit 2
  fi
  bin=$2
  dir=$3
  inputs=()
  if [ -d "$dir" ]; then
    while IFS= read -r -d '' f; do inputs+=("$f"); done \
      < <(find "$dir" -type f ! -name '.*' -print0 | sort -z)
  fi
  tmp=""
  if [ ${#inputs[@]} -eq 0 ]; then
    tmp=$(mktemp)
    inputs=("$tmp")
    echo "fuzz: no seed corpus in $dir; running the empty input" >&2
  fi
  rc=0
  # shellcheck disable=SC2086
  "$bin" -timeout=25 -rss_limit_mb=2048 ${FUZZ_FLAGS:-} "${inputs[@]}" || rc=$?
  [ -z "$tmp" ] || rm -f "$tmp"
  if [ $rc -eq 0 ]; then
    echo "fuzz: $(basename "$bin"): ${#inputs[@]} input(s) ran cleanly"
  fi
  exit $rc
fi

if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 BUILD_DIR SECONDS | $0 --smoke TARGET_BINARY CORPUS_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
artifacts=$here/artifacts
work=$build/fuzz-work
jobs=${FUZZ_JOBS:-$(nproc)}
mkdir -p "$artifacts" "$work"

targets=()
for f in "$build"/fuzz/fuzz_*; do
  # FUZZ_TARGETS (a regex on the name, e.g. "dkim|dns") picks some targets
  [ -n "${FUZZ_TARGETS:-}" ] && ! [[ $(basename "$f") =~ $FUZZ_TARGETS ]] && continue
  [ -f "$f" ] && [ -x "$f" ] && targets+=("$f")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no target in $build/fuzz (fuzz/fuzz_*.c, built with -DSESAME_FUZZ=ON)" >&2
  exit 1
fi

run_one() { # bin name short dir
  local bin=$1 name=$2 short=$3 dir=$4 rc=0 start end
  local args=(-max_total_time="$secs" -print_final_stats=1 -timeout=25
              -rss_limit_mb=2048 -artifact_prefix="$artifacts/$name-")
  [ -f "$here/$short.dict" ] && args+=(-dict="$here/$short.dict")
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$bin" "${args[@]}" ${FUZZ_FLAGS:-} "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  echo "$rc" >"$dir/rc"
  echo "$start $end" >"$dir/time"
}

echo "fuzz: ${#targets[@]} target(s), ${secs}s each, $jobs at a time; logs in $work" >&2
for bin in "${targets[@]}"; do
  name=$(basename "$bin")
  short=${name#fuzz_}
  dir=$work/$short
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  if [ -d "$here/corpus/$short" ]; then
    cp -R "$here/corpus/$short/." "$dir/corpus/"
  fi
  find "$dir/corpus" -type f | wc -l | tr -d ' ' >"$dir/seeds"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$bin" "$name" "$short" "$dir" &
done
wait

failed=0
for bin in "${targets[@]}"; do
  name=$(basename "$bin")
  short=${name#fuzz_}
  dir=$work/$short
  rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
  read -r start end <"$dir/time" || { start=0; end=0; }
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
  [ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$dir/log" | tail -n 1)
  [ -n "$execs" ] || execs="?"
  cov=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -n 1 | grep -oE '[0-9]+' || true)
  corpus=$(find "$dir/corpus" -type f | wc -l | tr -d ' ')
  line=$(awk -v s="$start" -v e="$end" -v x="$execs" -v n="$name" -v c="${cov:-?}" \
    -v a="$(cat "$dir/seeds")" -v b="$corpus" 'BEGIN {
      t = e - s; r = (x ~ /^[0-9]+$/ && t > 0) ? sprintf("%.0f", x / t) : "?";
      printf "%-28s execs %-10s seconds %-6.1f exec/s %-8s cov %-6s corpus %s -> %s", n, x, t, r, c, a, b }')
  if [ "$rc" = 0 ]; then
    echo "fuzz: $line ok"
  else
    failed=1
    echo "fuzz: $line FAILED (exit $rc)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY:|.*runtime error:|ALARM:|==[0-9]+== ERROR: libFuzzer)' "$dir/log" \
      | head -n 5 | sed 's/^/      /'
    grep -E 'Test unit written to|artifact_prefix' "$dir/log" | tail -n 1 | sed 's/^/      /'
    echo "      full log: $dir/log"
  fi
done
exit $failed
