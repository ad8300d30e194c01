#!/usr/bin/env bash
# The sending benchmark of issue 6 (SPEC.md §5): POST /v1/messages → MIME →
# DKIM (RSA-2048 + Ed25519) → durable queue → delivery to a local sink,
# against the single-core `openssl speed rsa2048` sign rate measured in the
# same run (the issue's goal: delivered msg/s ≥ 80 % of it), and Postfix
# relaying the same message with the same concurrency to the same sink.
#
# Prints two JSON objects (one per line):
#   send_api_to_sink_rsa2048          msg/s delivered at the sink while the load
#                                     runs (accepted/s, the delivery-only rate and
#                                     CPU per thread in its notes)
#   send_api_to_sink_e2e_p99_latency  ms from the POST to the arrival at the sink
#
# Phases, one after the other: openssl speed; the sink alone; sesame (a probe
# message whose two signatures dkimpy verifies, W s warm-up + D s measured,
# drain, then a backlog queued while the sink is SIGSTOPped and delivered
# with no API load); Postfix relaying (probe, then the same W + D); Postfix
# with two OpenDKIM signing milters (probe verified, then W + D).
#
# The pieces:
#   bench/send_load.c          C keep-alive HTTP clients, lock-step POSTs, the
#                              send time stamped in the Subject
#   bench/send/send_sink.c     the recipient's MX on 127.0.0.20: accepts and
#                              discards, PIPELINING, logs arrival and stamp
#   bench/smtp_load.c          feeds Postfix over SMTP (the inbound bench's tool)
#   bench/send/*.in            Postfix (and OpenDKIM signing) configuration
#   bench/send/tool.py, report.py   set-up helpers and the results
# The sink is measured alone first (smtp_load against it) to show it is not
# the bottleneck.
#
# Isolation (as bench_mta.sh): run as root, it re-executes itself in a
# private network and mount namespace (unshare -mn) where only loopback
# exists, so nothing can leave the machine and fixed ports are free. Without
# root/unshare it runs on free loopback ports; the peer still runs if
# Postfix can be started.
#
# Environment (run.sh exports the programs from bench.env):
#   SESAME_BIN SESAME_TESTDNS SESAME_SMTP_LOAD SESAME_SEND_LOAD SESAME_SEND_SINK
#   BENCH_SEND_SECONDS (10)      measured time per side
#   BENCH_SEND_WARMUP (2)        warm-up per side, not measured
#   BENCH_SEND_CONNECTIONS (16)  concurrent HTTP (sesame) / SMTP (Postfix) clients
#   BENCH_SEND_OUT_CONNECTIONS (20)  connections to the sink: sesame's
#                                [delivery] max_connections_per_domain and
#                                Postfix's destination concurrency (its default)
#   BENCH_SEND_SIZE (2048)       octets of message text
#   BENCH_SEND_DRAIN (20)        seconds allowed for the queue to drain after the load
#   BENCH_SEND_BACKLOG (4)       seconds of POSTs queued while the sink is stopped,
#                                then delivered with no API load (0: skip)
#   BENCH_SEND_SIDES (all)       "sesame", "postfix", "postfix-dkim" or comma-separated
#   BENCH_SEND_PERF=1            record `perf` of sesame during its window
#                                (report in the kept directory: perf.txt)
#   BENCH_SEND_KEEP=1            keep the temporary directory (logs, configs)
# Human-readable progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
sd=$here/send
py=/usr/bin/python3
build=${SESAME_BUILD_DIR:-$here/../build-bench}
SESAME_BIN=${SESAME_BIN:-$build/sesame}
SESAME_TESTDNS=${SESAME_TESTDNS:-$build/tests/sesame-testdns}
SESAME_SMTP_LOAD=${SESAME_SMTP_LOAD:-$build/bench/smtp_load}
SESAME_SEND_LOAD=${SESAME_SEND_LOAD:-$build/bench/send_load}
SESAME_SEND_SINK=${SESAME_SEND_SINK:-$build/bench/send_sink}
secs=${BENCH_SEND_SECONDS:-10}
warm=${BENCH_SEND_WARMUP:-2}
conns=${BENCH_SEND_CONNECTIONS:-16}
out_conns=${BENCH_SEND_OUT_CONNECTIONS:-20}
size=${BENCH_SEND_SIZE:-2048}
drain=${BENCH_SEND_DRAIN:-20}
backlog=${BENCH_SEND_BACKLOG:-4}
sides=${BENCH_SEND_SIDES:-sesame,postfix,postfix-dkim}

log() { echo "bench_send: $*" >&2; }

for p in "$SESAME_BIN" "$SESAME_TESTDNS" "$SESAME_SMTP_LOAD" "$SESAME_SEND_LOAD" "$SESAME_SEND_SINK"; do
  [ -x "$p" ] || { log "missing program $p (build the 'benchmarks' target)"; exit 1; }
done

# ---- into a private network + mount namespace ----
if [ -z "${BENCH_SEND_IN_NETNS:-}" ]; then
  if [ "$(id -u)" = 0 ] && unshare -mn true 2>/dev/null; then
    export BENCH_SEND_IN_NETNS=1
    exec unshare -mn --propagation private bash "$0" "$@"
  fi
  BENCH_SEND_IN_NETNS=0
fi
isolated=0
if [ "$BENCH_SEND_IN_NETNS" = 1 ]; then
  ip link set lo up
  isolated=1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/sesame-send.XXXXXX")
chmod 755 "$T" # Postfix's unprivileged processes walk into it
PIDS=()
PF_STARTED=""
SINK_PID=""

stop_postfix() {
  local dir=$1 mpid
  postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
  mpid=$(tr -dc 0-9 < "$dir/spool/pid/master.pid" 2>/dev/null || true)
  for _ in $(seq 1 50); do
    if [ -z "$mpid" ] || ! kill -0 "$mpid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null; then kill -9 "$mpid"; fi
}

cleanup() {
  set +e
  [ -n "$PF_STARTED" ] && stop_postfix "$PF_STARTED"
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ "${BENCH_SEND_KEEP:-0}" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SINK_IP=127.0.0.20
if [ $isolated = 1 ]; then
  DNS_PORT=53; MX_PORT=2525; SUB_PORT=5870; HTTP_PORT=8080; SINK_PORT=25; PF_PORT=2526
else
  DNS_PORT=$(free_port); MX_PORT=$(free_port); SUB_PORT=$(free_port)
  HTTP_PORT=$(free_port); SINK_PORT=$(free_port); PF_PORT=$(free_port)
fi

wait_port() {   # wait_port PORT PID: until 127.0.0.1:PORT accepts (20 s) while PID lives
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
json_get() { "$py" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
now_ns() { date +%s%N; }
tool() { "$py" "$sd/tool.py" "$@"; }

# start_sink NAME [SAVE]: a fresh sink logging to $T/sink-NAME.log
start_sink() {
  mkdir -p "$T/saved-$1"
  "$SESAME_SEND_SINK" --listen "$SINK_IP:$SINK_PORT" --log "$T/sink-$1.log" \
    --save "${2:-0}" --save-dir "$T/saved-$1" > "$T/sink-$1.out" 2> "$T/sink-$1.err" &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  for _ in $(seq 1 100); do
    grep -q ready "$T/sink-$1.out" 2>/dev/null && return 0
    kill -0 "$SINK_PID" 2>/dev/null || break
    sleep 0.05
  done
  log "the sink did not start: $(cat "$T/sink-$1.err")"
  exit 1
}
stop_sink() {
  kill -TERM "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
}

# ---- 1. the limit: one core's RSA-2048 signatures per second ----
log "openssl speed -seconds 3 rsa2048 (one core)"
openssl speed -mr -seconds 3 rsa2048 > "$T/openssl.txt" 2>/dev/null || true
RSA_SIGN=$(awk -F: '$1 == "+F2" && $3 == 2048 { print $4 }' "$T/openssl.txt" | tail -n1)
[ -n "$RSA_SIGN" ] || { log "openssl speed gave no rsa2048 figure: $(tail -n3 "$T/openssl.txt")"; exit 1; }
log "rsa2048 sign/s: $RSA_SIGN"

# ---- 2. the sink alone ----
"$SESAME_SMTP_LOAD" --write-message "$T/sinkcheck.eml" --size $((size + 1200))
start_sink alone
"$SESAME_SMTP_LOAD" --port "$SINK_PORT" --host "$SINK_IP" --connections "$out_conns" --seconds 2 \
  --warmup 0.5 --from a@send.test --rcpt b@rcpt.test --message "$T/sinkcheck.eml" \
  > "$T/load-sinkalone.json" 2> "$T/load-sinkalone.err" || true
stop_sink
log "sink alone: $(cat "$T/load-sinkalone.json")"

# ---- 3. DNS: the recipient domain's MX is the sink ----
cat > "$T/zone.json" <<EOF
{
 "rcpt.test": [{"type": "MX", "value": [10, "mx.rcpt.test"]}],
 "mx.rcpt.test": [{"type": "A", "value": "$SINK_IP"}],
 "send.test": [{"type": "TXT", "value": "v=spf1 ip4:127.0.0.0/8 -all"}],
 "_dmarc.send.test": [{"type": "TXT", "value": "v=DMARC1; p=reject"}]
}
EOF
"$SESAME_TESTDNS" "$T/zone.json" --port "$DNS_PORT" > "$T/dns.addr" 2> "$T/dns.log" &
DNS_PID=$!
PIDS+=("$DNS_PID")
for _ in $(seq 1 100); do [ -s "$T/dns.addr" ] && break; sleep 0.05; done
[ -s "$T/dns.addr" ] || { log "the test DNS server did not start: $(cat "$T/dns.log")"; exit 1; }
reload_dns() { kill -HUP "$DNS_PID"; sleep 0.3; }

# ---- 4. sesame ----
SESAME_NOTE=""
SESAME_PID=""
run_sesame() {
  local conf=$T/sesame.conf
  mkdir -p "$T/sesame"
  cat > "$conf" <<EOF
[server]
hostname = mx.send.test
data_dir = $T/sesame
[listen]
mx = 127.0.0.1:$MX_PORT
submission = 127.0.0.1:$SUB_PORT
http = 127.0.0.1:$HTTP_PORT
[dns]
servers = 127.0.0.1:$DNS_PORT
[delivery]
smtp_port = $SINK_PORT
max_connections = 200
max_connections_per_domain = $out_conns
messages_per_minute_per_domain = 10000000
[log]
level = warn
EOF
  "$SESAME_BIN" account create bench --production --max-rate 100000 --max-24h 100000000 \
    --config "$conf" --json > "$T/account.json" 2> "$T/account.err" ||
    { SESAME_NOTE="sesame account create failed: $(tail -n1 "$T/account.err")"; return 1; }
  API_KEY=$(json_get api_key < "$T/account.json")
  "$SESAME_BIN" domain add send.test --account bench --config "$conf" --json \
    > "$T/domain.json" 2> "$T/domain.err" ||
    { SESAME_NOTE="sesame domain add failed: $(tail -n1 "$T/domain.err")"; return 1; }
  local nrec
  nrec=$(tool publish "$T/zone.json" "$T/domain.json")
  reload_dns
  "$SESAME_BIN" domain verify send.test --account bench --config "$conf" --json \
    > "$T/verify-domain.json" 2>&1 ||
    { SESAME_NOTE="sesame domain verify failed: $(tail -n1 "$T/verify-domain.json")"; return 1; }
  grep -q '"verified"' "$T/verify-domain.json" ||
    { SESAME_NOTE="send.test did not verify: $(cat "$T/verify-domain.json")"; return 1; }
  log "sesame: send.test verified, $nrec records published (verification + DKIM)"

  start_sink sesame 3
  ulimit -n 20000 2>/dev/null || true
  "$SESAME_BIN" serve --config "$conf" 2> "$T/sesame.log" &
  SESAME_PID=$!
  PIDS+=("$SESAME_PID")
  wait_port "$HTTP_PORT" "$SESAME_PID" ||
    { SESAME_NOTE="sesame serve did not start: $(tail -n 3 "$T/sesame.log")"; return 1; }

  # One message first: it must reach the sink with two verifying signatures.
  local r
  r=$(tool post "$HTTP_PORT" "$API_KEY" \
      '{"from":"Bench <bench@send.test>","to":["probe@rcpt.test"],"subject":"probe","text":"probe"}')
  case "$r" in "202 "*) ;; *) SESAME_NOTE="the probe POST was refused: $r"; return 1 ;; esac
  for _ in $(seq 1 100); do [ -s "$T/saved-sesame/1.eml" ] && break; sleep 0.1; done
  [ -s "$T/saved-sesame/1.eml" ] ||
    { SESAME_NOTE="the probe message did not reach the sink in 10 s: $(tail -n 3 "$T/sesame.log")"; return 1; }
  tool dkim-check "$T/saved-sesame/1.eml" "$T/zone.json" > "$T/dkim-sesame.json"
  log "sesame: probe at the sink: $(cat "$T/dkim-sesame.json")"
  "$py" -c '
import json, sys
s = json.load(open(sys.argv[1]))["signatures"]
sys.exit(0 if sorted(x["algorithm"] for x in s if x["pass"]) == ["ed25519-sha256", "rsa-sha256"] else 1)' \
    "$T/dkim-sesame.json" ||
    { SESAME_NOTE="the probe message does not carry two verifying signatures (RSA and Ed25519): $(cat "$T/dkim-sesame.json")"; return 1; }

  log "sesame: $conns HTTP connections, ${warm} s warm-up, ${secs} s measured"
  local ppid=""
  (sleep "$warm"; tool cpu "$SESAME_PID" > "$T/cpu-sesame-0.json";
   sleep "$secs"; tool cpu "$SESAME_PID" > "$T/cpu-sesame-1.json") &
  local cpid=$!
  if [ "${BENCH_SEND_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    (sleep "$warm"; exec perf record -q -g -o "$T/perf.data" -p "$SESAME_PID" -- sleep "$secs") \
      > /dev/null 2>&1 &
    ppid=$!
  fi
  "$SESAME_SEND_LOAD" --port "$HTTP_PORT" --key "$API_KEY" --from bench@send.test \
    --rcpt user@rcpt.test --connections "$conns" --seconds "$secs" --warmup "$warm" \
    --size "$size" > "$T/load-sesame.json" 2> "$T/load-sesame.err" ||
    { SESAME_NOTE="send_load failed: $(tail -n 2 "$T/load-sesame.err")"; return 1; }
  wait "$cpid" || true
  [ -n "$ppid" ] && { wait "$ppid" || true; }
  log "sesame: load: $(cat "$T/load-sesame.json")"
  local total
  total=$(json_get accepted_total < "$T/load-sesame.json")
  tool wait-sink "$T/sink-sesame.log" "$total" "$drain" > "$T/drain-sesame.json"
  log "sesame: drain: $(cat "$T/drain-sesame.json")"

  # Delivery alone: a backlog queued while the sink is stopped (SIGSTOP: its
  # connections hang, nothing is refused), then delivered at full speed with
  # no API load. Tells which half of the pipeline limits the figure above.
  if [ "$backlog" != 0 ]; then
    kill -STOP "$SINK_PID"
    "$SESAME_SEND_LOAD" --port "$HTTP_PORT" --key "$API_KEY" --from bench@send.test \
      --rcpt user@rcpt.test --connections "$conns" --seconds "$backlog" --warmup 0 \
      --size "$size" > "$T/load-backlog.json" 2> "$T/load-backlog.err" || true
    now_ns > "$T/t-cont"
    kill -CONT "$SINK_PID"
    local more
    more=$(json_get accepted_total < "$T/load-backlog.json" 2>/dev/null || echo 0)
    tool wait-sink "$T/sink-sesame.log" $((total + more)) "$drain" > "$T/drain-backlog.json"
    log "sesame: backlog of $more delivered: $(cat "$T/drain-backlog.json")"
  fi
  kill -TERM "$SESAME_PID"
  wait "$SESAME_PID" || true
  stop_sink
  if [ -n "$ppid" ] && [ -f "$T/perf.data" ]; then
    perf report -i "$T/perf.data" --no-children --sort comm,dso,symbol --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -n 60 > "$T/perf.txt" || true
    log "perf profile: $T/perf.txt"
  fi
  return 0
}

# ---- 5. Postfix relaying the same message ----
# run_postfix NAME DKIM(0|1)
PF_NOTE_postfix=""
PF_NOTE_postfix_dkim=""
run_postfix() {
  local name=$1 dkim=$2 note_var="PF_NOTE_${1//-/_}"
  if ! command -v postfix >/dev/null; then
    printf -v "$note_var" '%s' "postfix not installed (scripts/install-deps.sh --bench)"; return 1
  fi
  if [ "$dkim" = 1 ] && ! command -v opendkim >/dev/null; then
    printf -v "$note_var" '%s' "opendkim not installed"; return 1
  fi
  local PF=$T/$name milters="" milter_note="no milter: the message is relayed as it came"
  mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
  chown postfix:postfix "$PF/data" 2>/dev/null || true
  if [ "$dkim" = 1 ]; then
    # The same kinds of keys as sesame: RSA-2048 and Ed25519, published so
    # that the relayed copy can be verified at the sink.
    "$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --bits 2048 --domain send.test \
      --selector pfrsa --out "$PF/etc/rsa.key" --json > "$PF/rsa.json"
    "$SESAME_BIN" dkim keygen --algorithm ed25519-sha256 --domain send.test \
      --selector pfed --out "$PF/etc/ed.key" --json > "$PF/ed.json"
    local f
    for f in rsa ed; do
      "$py" -c '
import json, sys
k = json.load(open(sys.argv[1]))
print(k["name"].rstrip(".")); print(k["value"])' "$PF/$f.json" > "$PF/$f.rec"
      tool zone-add "$T/zone.json" "$(sed -n 1p "$PF/$f.rec")" TXT "$(sed -n 2p "$PF/$f.rec")"
    done
    reload_dns
    local k alg dpid
    milters=""
    for k in rsa ed; do
      if [ $k = rsa ]; then alg=rsa-sha256; else alg=ed25519-sha256; fi
      echo "pf$k._domainkey.send.test send.test:pf$k:$PF/etc/$k.key" > "$PF/etc/keytable-$k"
      echo "*@send.test pf$k._domainkey.send.test" > "$PF/etc/signingtable-$k"
      sed -e "s|@DIR@|$PF|g" -e "s|@DKIM_SOCKET@|local:$PF/opendkim-$k.sock|g" \
          -e "s|@NAME@|$k|g" -e "s|@ALG@|$alg|g" "$sd/opendkim.conf.in" > "$PF/etc/opendkim-$k.conf"
      opendkim -f -x "$PF/etc/opendkim-$k.conf" > "$PF/opendkim-$k.log" 2>&1 &
      dpid=$!
      PIDS+=("$dpid")
      for _ in $(seq 1 100); do
        [ -S "$PF/opendkim-$k.sock" ] && break
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.1
      done
      [ -S "$PF/opendkim-$k.sock" ] ||
        { printf -v "$note_var" '%s' "opendkim ($alg) did not start: $(tail -n 2 "$PF/opendkim-$k.log")"; return 1; }
      milters="${milters:+$milters, }unix:$PF/opendkim-$k.sock"
    done
    milter_note="two OpenDKIM milters (unix sockets; 2.11 takes one algorithm per instance) sign it with RSA-2048 and with Ed25519 (relaxed/relaxed) before the 250;"
  fi
  local f
  for f in main.cf master.cf; do
    sed -e "s|@DIR@|$PF|g" -e "s|@SMTP_PORT@|$PF_PORT|g" -e "s|@SINK_PORT@|$SINK_PORT|g" \
        -e "s|@OUT_CONNS@|$out_conns|g" -e "s|@MAXPROC@|$((conns + out_conns + 50))|g" \
        -e "s|@MILTERS@|$milters|g" -e "s|@MILTER_NOTE@|$milter_note|g" \
        "$sd/$f.in" > "$PF/etc/$f"
  done
  echo "rcpt.test smtp:[$SINK_IP]:$SINK_PORT" > "$PF/etc/transport"
  postfix -c "$PF/etc" check > "$PF/check.log" 2>&1 || true
  start_sink "$name" 2
  if ! postfix -c "$PF/etc" start > "$PF/start.log" 2>&1; then
    printf -v "$note_var" '%s' "postfix did not start: $(tail -n 3 "$PF/start.log")"; stop_sink; return 1
  fi
  PF_STARTED=$PF
  local mpid=""
  for _ in $(seq 1 100); do
    mpid=$(tr -dc 0-9 < "$PF/spool/pid/master.pid" 2>/dev/null || true)
    [ -n "$mpid" ] && break
    sleep 0.1
  done
  if ! wait_port "$PF_PORT" "${mpid:-0}"; then
    printf -v "$note_var" '%s' "postfix does not listen: $(tail -n 3 "$PF/maillog" 2>/dev/null)"
    stop_postfix "$PF"; PF_STARTED=""; stop_sink; return 1
  fi
  # The probe: relayed to the sink (and signed twice with OpenDKIM).
  "$py" "$here/mta/probe.py" --port "$PF_PORT" --source 127.0.0.1 --helo client.send.test \
    --from bench@send.test --rcpt probe@rcpt.test "$T/relay.eml" > "$PF/probe.json" || true
  for _ in $(seq 1 100); do [ -s "$T/saved-$name/1.eml" ] && break; sleep 0.1; done
  if [ ! -s "$T/saved-$name/1.eml" ]; then
    printf -v "$note_var" '%s' "the probe message was not relayed to the sink: $(cat "$PF/probe.json") $(tail -n 2 "$PF/maillog" 2>/dev/null)"
    stop_postfix "$PF"; PF_STARTED=""; stop_sink; return 1
  fi
  if [ "$dkim" = 1 ]; then
    tool dkim-check "$T/saved-$name/1.eml" "$T/zone.json" > "$T/dkim-$name.json"
    log "$name: probe at the sink: $(cat "$T/dkim-$name.json")"
    if ! "$py" -c '
import json, sys
s = json.load(open(sys.argv[1]))["signatures"]
sys.exit(0 if sorted(x["algorithm"] for x in s if x["pass"]) == ["ed25519-sha256", "rsa-sha256"] else 1)' \
      "$T/dkim-$name.json"; then
      printf -v "$note_var" '%s' "OpenDKIM's relayed probe does not carry two verifying signatures: $(cat "$T/dkim-$name.json")"
      stop_postfix "$PF"; PF_STARTED=""; stop_sink; return 1
    fi
  fi
  log "$name: $conns SMTP connections, ${warm} s warm-up, ${secs} s measured"
  local t0
  t0=$(now_ns)
  echo "$t0" > "$T/t0-$name"
  "$SESAME_SMTP_LOAD" --port "$PF_PORT" --connections "$conns" --seconds "$secs" --warmup "$warm" \
    --sources 1 --helo client.send.test --from bench@send.test --rcpt user@rcpt.test \
    --message "$T/relay.eml" > "$T/load-$name.json" 2> "$T/load-$name.err" || true
  log "$name: load: $(cat "$T/load-$name.json")"
  tool wait-postfix "$PF/spool" "$T/sink-$name.log" "$drain" > "$T/drain-$name.json"
  log "$name: drain: $(cat "$T/drain-$name.json")"
  stop_postfix "$PF"
  PF_STARTED=""
  stop_sink
  return 0
}

have_sesame=0
case ",$sides," in *,sesame,*)
  if run_sesame; then have_sesame=1; else log "sesame side not measured: $SESAME_NOTE"; fi
  if [ -n "$SESAME_PID" ] && kill -0 "$SESAME_PID" 2>/dev/null; then
    kill -TERM "$SESAME_PID"; wait "$SESAME_PID" || true
  fi ;;
esac

# The peer relays the message sesame built (its DKIM-Signature and Received
# fields removed), so both sides carry the same content; when sesame did not
# run, the benchmarks' shared message of the same size.
if [ -s "$T/saved-sesame/2.eml" ]; then
  tool strip "$T/saved-sesame/2.eml" "$T/relay.eml"
else
  "$SESAME_SMTP_LOAD" --write-message "$T/relay0.eml" --size $((size + 600))
  sed -e 's/^From: .*/From: Bench <bench@send.test>\r/' -e 's/^To: .*/To: user@rcpt.test\r/' \
    "$T/relay0.eml" > "$T/relay.eml"
fi
RELAY_OCTETS=$(wc -c < "$T/relay.eml")

have_postfix=0
have_postfix_dkim=0
case ",$sides," in *,postfix,*)
  if run_postfix postfix 0; then have_postfix=1; else log "postfix side not measured: $PF_NOTE_postfix"; fi ;;
esac
case ",$sides," in *,postfix-dkim,*)
  if run_postfix postfix-dkim 1; then have_postfix_dkim=1; else log "postfix-dkim side not measured: $PF_NOTE_postfix_dkim"; fi ;;
esac

# ---- results ----
fs_type=$(findmnt -n -o FSTYPE -T "$T" 2>/dev/null || stat -f -c %T "$T")
export T have_sesame have_postfix have_postfix_dkim isolated conns out_conns secs warm size backlog \
  fs_type RSA_SIGN RELAY_OCTETS SESAME_NOTE PF_NOTE_postfix PF_NOTE_postfix_dkim
"$py" "$sd/report.py"
