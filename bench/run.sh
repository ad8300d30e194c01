#!/usr/bin/env bash
# Runs every benchmark and writes their results as one JSON list (SPEC.md §5).
#
#   bench/run.sh BUILD_DIR OUT_JSON
#
# A benchmark is either
#   - an executable BUILD_DIR/bench/bench_* (built from bench/bench_*.c), or
#   - a script bench/bench_*.sh (run with bash) or bench/bench_*.py (run with
#     /usr/bin/python3, Debian's, whatever python3 is first on PATH).
# It prints on stdout one JSON object per line, or a JSON list of objects on
# a line, each {"name","unit","value","limit": {"what","value"} | null,
# "peers": {NAME: N, ...}, "notes"}; anything for humans goes to stderr. It
# finds its inputs in the environment: BUILD_DIR/bench/bench.env (written
# by bench/CMakeLists.txt) is exported, plus SESAME_BUILD_DIR.
#
# Environment: BENCH_FILTER=REGEX runs only the benchmarks whose file name
# matches; BENCH_TIMEOUT=SECONDS per benchmark (default 900);
# SESAME_BENCH_SECONDS is passed through (each benchmark's measuring time).
# Exits 1 when a benchmark failed or printed something malformed (the
# others are still written), 2 on bad usage.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR OUT_JSON" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
out=$2
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
timeout_s=${BENCH_TIMEOUT:-900}
filter=${BENCH_FILTER:-}

if [ -f "$build/bench/bench.env" ]; then
  set -a
  # shellcheck disable=SC1091
  . "$build/bench/bench.env"
  set +a
fi
export SESAME_BUILD_DIR="$build"

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "${TMPDIR:-/tmp}/sesame-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

benches=()
for f in "$build"/bench/bench_*; do
  [ -f "$f" ] && [ -x "$f" ] && benches+=("$f")
done
for f in "$here"/bench_*.sh "$here"/bench_*.py; do
  [ -f "$f" ] && benches+=("$f")
done

failed=0
ran=0
for b in "${benches[@]}"; do
  name=$(basename "$b")
  if [ -n "$filter" ] && ! [[ $name =~ $filter ]]; then
    continue
  fi
  case "$b" in
    *.sh) cmd=(bash "$b") ;;
    *.py) cmd=("$py" "$b") ;;
    *)    cmd=("$b") ;;
  esac
  echo "bench: $name" >&2
  ran=$((ran + 1))
  rc=0
  timeout "$timeout_s" "${cmd[@]}" >"$work/$ran-$name.out" 2>"$work/$name.err" || rc=$?
  if [ $rc -ne 0 ]; then
    echo "bench: $name FAILED (exit $rc); its stderr ends with:" >&2
    tail -n 20 "$work/$name.err" | sed 's/^/    /' >&2
    failed=1
    rm -f "$work/$ran-$name.out"
  elif [ -s "$work/$name.err" ]; then
    sed "s/^/    [$name] /" "$work/$name.err" >&2
  fi
done
if [ $ran -eq 0 ]; then
  echo "bench: no benchmark found in $build/bench or $here" >&2
fi

# Assemble, check the shape, write OUT_JSON, print the table.
rc=0
"$py" - "$out" "$work" <<'EOF' || rc=$?
import glob, json, math, os, sys

out_path, work = sys.argv[1], sys.argv[2]
results, bad = [], 0

def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

def problem(o):
    if not isinstance(o, dict):
        return "not an object"
    want = {"name", "unit", "value", "limit", "peers", "notes"}
    if set(o) != want:
        return "keys must be exactly %s (got %s)" % (sorted(want), sorted(o))
    for k in ("name", "unit", "notes"):
        if not isinstance(o[k], str):
            return "%s must be a string" % k
    if not number(o["value"]):
        return "value must be a number"
    lim = o["limit"]
    if lim is not None and not (isinstance(lim, dict) and set(lim) == {"what", "value"}
                                and isinstance(lim["what"], str) and number(lim["value"])):
        return 'limit must be null or {"what": str, "value": number}'
    if not isinstance(o["peers"], dict) or not all(
            isinstance(k, str) and number(v) for k, v in o["peers"].items()):
        return "peers must map names to numbers"
    return None

files = sorted(glob.glob(os.path.join(work, "*.out")),
               key=lambda p: int(os.path.basename(p).split("-", 1)[0]))
for path in files:
    src = os.path.basename(path).split("-", 1)[1][:-len(".out")]
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                v = json.loads(line)
            except ValueError as e:
                print("bench: %s line %d is not JSON (%s): %.80s" % (src, n, e, line),
                      file=sys.stderr)
                bad += 1
                continue
            for o in (v if isinstance(v, list) else [v]):
                why = problem(o)
                if why:
                    print("bench: %s line %d: %s" % (src, n, why), file=sys.stderr)
                    bad += 1
                else:
                    results.append(o)

names = [o["name"] for o in results]
for dup in sorted({x for x in names if names.count(x) > 1}):
    print("bench: result name %s appears more than once" % dup, file=sys.stderr)
    bad += 1

with open(out_path, "w", encoding="utf-8") as f:
    json.dump(results, f, indent=1, ensure_ascii=False)
    f.write("\n")

def fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    return "{:,.3g}".format(v)

def ratio(a, b):
    return "%.2f" % (a / b) if b else "-"

rows = [("benchmark", "value", "unit", "compared with", "its value", "value/it")]
for o in results:
    comps = []
    if o["limit"] is not None:
        comps.append(("limit: " + o["limit"]["what"], o["limit"]["value"]))
    for peer, v in sorted(o["peers"].items()):
        comps.append(("peer: " + peer, v))
    if not comps:
        comps.append(("-", None))
    for i, (what, v) in enumerate(comps):
        rows.append((o["name"] if i == 0 else "", fmt(o["value"]) if i == 0 else "",
                     o["unit"] if i == 0 else "", what,
                     "-" if v is None else fmt(v),
                     "-" if v is None else ratio(o["value"], v)))
widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
right = {1, 4, 5}
for i, r in enumerate(rows):
    cells = [r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c])
             for c in range(len(r))]
    print("  ".join(cells).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))
for o in results:
    if o["notes"]:
        print("\n%s: %s" % (o["name"], o["notes"]))
print("\nbench: %d result(s) written to %s" % (len(results), out_path))
sys.exit(1 if bad else 0)
EOF
[ $rc -eq 0 ] || failed=1
exit $failed
