#!/usr/bin/env bash
# The inbound MTA benchmark of issue 5 (SPEC.md §5): sesame's MX against
# Postfix + OpenDKIM + OpenDMARC, measured in the same run, with the same
# load generator (bench/smtp_load.c), the same DKIM-signed 4 KiB message and
# the same DNS server (sesame-testdns on loopback).
#
# Prints three JSON objects (one per line):
#   mx_inbound_accept_4k      msg/s accepted (250 after durable storage)
#   mx_inbound_p99_latency    ms from the final "." to the 250, 99th pct
#   mx_idle_session_memory    bytes of server memory per idle SMTP session
#
# Isolation: run as root, the whole benchmark re-executes itself in a
# private network and mount namespace (unshare -mn): only a loopback
# interface exists, and /etc/resolv.conf is replaced (bind mount, private
# to the namespace) by "nameserver 127.0.0.1" where the test DNS server
# listens on port 53. OpenDMARC and libspf2 have no resolver option and use
# /etc/resolv.conf; this way every DNS query of every program in the run
# reaches the test zone, and nothing can leave the machine. Without root or
# unshare, the peer is not run (its resolver would be the system's) and
# the notes say so; sesame is measured with its [dns] server.
#
# What each side does per message is in the notes of the results, and in
# bench/mta/main.cf.in for Postfix.
#
# Environment (run.sh exports the first ones from bench.env):
#   SESAME_BIN, SESAME_TESTDNS, SESAME_SMTP_LOAD  the programs
#   BENCH_MTA_SECONDS (20)       measuring time per side
#   BENCH_MTA_WARMUP (3)         warm-up per side, not measured
#   BENCH_MTA_CONNECTIONS (32)   concurrent SMTP connections
#   BENCH_MTA_SOURCES (16)       client addresses 127.0.0.2..
#   BENCH_MTA_IDLE (5000)        idle sessions held open against sesame
#   BENCH_MTA_IDLE_PEER (200)    idle sessions against Postfix (a process each)
#   BENCH_MTA_SIDES (both)       "sesame", "postfix" or "both"
#   BENCH_MTA_MILTER_SOCKET (unix)  how Postfix reaches the milters: "unix"
#                                (Debian's default) or "inet" (TCP on
#                                loopback: each message then waits ~130 ms
#                                in Nagle/delayed-ACK stalls of the milter
#                                protocol's small writes)
#   BENCH_MTA_KEEP=1             keep the temporary directory (logs, configs)
# Human-readable progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mta=$here/mta
py=/usr/bin/python3
build=${SESAME_BUILD_DIR:-$here/../build-bench}
SESAME_BIN=${SESAME_BIN:-$build/sesame}
SESAME_TESTDNS=${SESAME_TESTDNS:-$build/tests/sesame-testdns}
SESAME_SMTP_LOAD=${SESAME_SMTP_LOAD:-$build/bench/smtp_load}
secs=${BENCH_MTA_SECONDS:-20}
warm=${BENCH_MTA_WARMUP:-3}
conns=${BENCH_MTA_CONNECTIONS:-32}
sources=${BENCH_MTA_SOURCES:-16}
idle_n=${BENCH_MTA_IDLE:-5000}
idle_peer_n=${BENCH_MTA_IDLE_PEER:-200}
sides=${BENCH_MTA_SIDES:-both}
milter_socket=${BENCH_MTA_MILTER_SOCKET:-unix}
# Idle sessions come from 125 addresses: 40 per address for 5,000, within
# sesame's default [limits] max_connections_per_ip (50).
idle_sources=125

log() { echo "bench_mta: $*" >&2; }

for p in "$SESAME_BIN" "$SESAME_TESTDNS" "$SESAME_SMTP_LOAD"; do
  [ -x "$p" ] || { log "missing program $p (build the 'benchmarks' target)"; exit 1; }
done

# ---- into a private network + mount namespace ----
if [ -z "${BENCH_MTA_IN_NETNS:-}" ]; then
  if [ "$(id -u)" = 0 ] && unshare -mn true 2>/dev/null; then
    export BENCH_MTA_IN_NETNS=1
    exec unshare -mn --propagation private bash "$0" "$@"
  fi
  BENCH_MTA_IN_NETNS=0
fi
isolated=0
if [ "$BENCH_MTA_IN_NETNS" = 1 ]; then
  ip link set lo up
  isolated=1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/sesame-mta.XXXXXX")
chmod 755 "$T" # Postfix's unprivileged processes walk into it
PIDS=()        # background processes to end, by id
PF_STARTED=0

cleanup() {
  set +e
  if [ $PF_STARTED = 1 ]; then
    postfix -c "$T/pf/etc" stop >/dev/null 2>&1
    local mpid
    mpid=$(tr -dc 0-9 < "$T/pf/spool/pid/master.pid" 2>/dev/null)
    for _ in $(seq 1 50); do
      if [ -z "$mpid" ] || ! kill -0 "$mpid" 2>/dev/null; then break; fi
      sleep 0.1
    done
    [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null && kill -9 "$mpid"
  fi
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null
  done
  if [ "${BENCH_MTA_KEEP:-0}" = 1 ]; then
    log "kept $T"
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT

# free_port: a TCP port nobody listens on (fixed ones in the namespace).
free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
if [ $isolated = 1 ]; then
  DNS_PORT=53; MX_PORT=2525; SUB_PORT=5870; HTTP_PORT=8080
  PF_PORT=2526; DKIM_PORT=8891; DMARC_PORT=8893
else
  DNS_PORT=$(free_port); MX_PORT=$(free_port); SUB_PORT=$(free_port)
  HTTP_PORT=$(free_port); PF_PORT=$(free_port); DKIM_PORT=$(free_port)
  DMARC_PORT=$(free_port)
fi

# wait_port PORT PID: until something accepts on 127.0.0.1:PORT (20 s), while
# PID lives.
wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# wait_milter PORT SOCKET PID: until the milter listens (20 s).
wait_milter() {
  if [ "$milter_socket" = inet ]; then
    wait_port "$1" "$3"
    return
  fi
  for _ in $(seq 1 200); do
    [ -S "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# render TEMPLATE OUT: fills in @NAME@ from the variables below.
render() {
  sed -e "s|@DIR@|$PF|g" -e "s|@SMTP_PORT@|$PF_PORT|g" \
      -e "s|@DKIM_PORT@|$DKIM_PORT|g" -e "s|@DMARC_PORT@|$DMARC_PORT|g" \
      -e "s|@DNS_PORT@|$DNS_PORT|g" -e "s|@MAXPROC@|$PF_MAXPROC|g" \
      -e "s|@DKIM_SOCKET@|$DKIM_SOCKET|g" -e "s|@DMARC_SOCKET@|$DMARC_SOCKET|g" \
      -e "s|@PF_DKIM@|$PF_DKIM|g" -e "s|@PF_DMARC@|$PF_DMARC|g" \
      -e "s|@MAIL_UID@|$(id -u postfix 2>/dev/null || echo 0)|g" \
      -e "s|@MAIL_GID@|$(id -g postfix 2>/dev/null || echo 0)|g" "$1" > "$2"
}

# json_get KEY < JSON
json_get() { "$py" -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(v)' "$1"; }

# ---- the message, its key and the zone ----
# The benchmarks' shared message, its domain (example.test) changed: the
# libunbound inside OpenDKIM answers .test locally as nonexistent unless
# given a configuration file, and OpenDKIM's ResolverConfiguration (which
# would give it one) crashes it under concurrent load (flex scanner error).
"$SESAME_SMTP_LOAD" --write-message "$T/shared.eml" --size 4096
sed 's/@example\.test>/@example.com>/' "$T/shared.eml" > "$T/plain.eml"
"$SESAME_BIN" dkim keygen --algorithm rsa-sha256 --bits 2048 --domain example.com \
  --selector bench --out "$T/dkim.key" --json > "$T/dkim.json"
"$SESAME_BIN" dkim sign --domain example.com --selector bench --key "$T/dkim.key" \
  < "$T/plain.eml" > "$T/signed.eml"
# The forged one: From example.com (p=reject), not signed, MAIL FROM
# another domain whose SPF passes: DMARC fails, both sides must refuse it.
cp "$T/plain.eml" "$T/forged.eml"
MSG_OCTETS=$(wc -c < "$T/signed.eml")

# make_zone EXTRA_JSON: writes $T/zone.json (EXTRA: more names, e.g. the
# sesame verification record).
make_zone() {
  "$py" - "$T/dkim.json" "$1" > "$T/zone.json.new" <<'EOF'
import json, sys
key = json.load(open(sys.argv[1]))
v = key["value"]
spf = {"type": "TXT", "value": "v=spf1 ip4:127.0.0.0/8 -all"}
zone = {
    "example.com": [spf],
    "client.example.com": [spf, {"type": "A", "value": "127.0.0.2"}],
    key["name"].rstrip("."): [{"type": "TXT", "value": [v[i:i + 255] for i in range(0, len(v), 255)]}],
    "_dmarc.example.com": [{"type": "TXT", "value": "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"}],
    "other.example.org": [spf],
    "example.net": [{"type": "MX", "value": [10, "mx.example.net"]}],
    "mx.example.net": [{"type": "A", "value": "127.0.0.1"}],
}
zone.update(json.loads(sys.argv[2]))
json.dump(zone, sys.stdout, indent=1)
EOF
  mv "$T/zone.json.new" "$T/zone.json"
}
make_zone '{}'

"$SESAME_TESTDNS" "$T/zone.json" --port "$DNS_PORT" > "$T/dns.addr" 2> "$T/dns.log" &
DNS_PID=$!
PIDS+=("$DNS_PID")
for _ in $(seq 1 100); do
  [ -s "$T/dns.addr" ] && break
  sleep 0.05
done
[ -s "$T/dns.addr" ] || { log "the test DNS server did not start"; cat "$T/dns.log" >&2; exit 1; }
if [ $isolated = 1 ]; then
  printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n' > "$T/resolv.conf"
  mount --bind "$T/resolv.conf" /etc/resolv.conf
fi
"$SESAME_BIN" dkim verify --dns "127.0.0.1:$DNS_PORT" --json < "$T/signed.eml" > "$T/verify.json"
grep -q '"result": *"pass"' "$T/verify.json" ||
  { log "the signed message does not verify: $(cat "$T/verify.json")"; exit 1; }

# ---- helpers for one side ----

# probe PORT NAME: the accepted and the refused message; sets PROBE_OK=1
# when the signed one got 250 and the forged one a 5xx, else PROBE_WHY.
probe() {
  local good bad
  good=$("$py" "$mta/probe.py" --port "$1" --source 127.0.0.2 --helo client.example.com \
          --from bounces@example.com --rcpt check@example.net "$T/signed.eml")
  bad=$("$py" "$mta/probe.py" --port "$1" --source 127.0.0.3 --helo client.example.com \
         --from bounces@other.example.org --rcpt check@example.net "$T/forged.eml")
  log "$2: signed message: $good"
  log "$2: forged message: $bad"
  PROBE_OK=0
  PROBE_WHY=""
  if [ "$(json_get code <<<"$good")" != 250 ]; then
    PROBE_WHY="the DKIM-signed, SPF- and DMARC-passing message was not accepted: $good"
  elif [ "$(json_get code <<<"$bad" | cut -c1)" != 5 ]; then
    PROBE_WHY="the DMARC-failing message (p=reject) was not refused: $bad"
  else
    PROBE_OK=1
  fi
}

# verdicts_pass FILE: the Authentication-Results text in FILE has all three.
verdicts_pass() {
  local v
  for v in spf dkim dmarc; do
    grep -qi "$v=pass" "$1" 2>/dev/null || return 1
  done
}

# load PORT NAME: runs smtp_load, leaves its JSON in $T/load-NAME.json.
load() {
  log "$2: $conns connections, ${warm} s warm-up, ${secs} s measured"
  "$SESAME_SMTP_LOAD" --port "$1" --connections "$conns" --seconds "$secs" --warmup "$warm" \
    --sources "$sources" --helo client.example.com --from bounces@example.com \
    --rcpt "user@example.net" --message "$T/signed.eml" > "$T/load-$2.json"
}

# idle PORT N NAME MEMCMD...: holds N idle sessions, with MEMCMD's output
# before and while they are open in $T/mem-NAME-{before,during}.json and
# smtp_load's in $T/idle-NAME.out.
idle() {
  local port=$1 n=$2 name=$3 lpid ok=0
  shift 3
  "$@" > "$T/mem-$name-before.json"
  "$SESAME_SMTP_LOAD" --idle "$n" --port "$port" --sources "$idle_sources" --hold 300 \
    --helo client.example.com > "$T/idle-$name.out" 2> "$T/idle-$name.err" &
  lpid=$!
  for _ in $(seq 1 1200); do
    grep -q '"ready"' "$T/idle-$name.out" 2>/dev/null && { ok=1; break; }
    kill -0 "$lpid" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1 # let the server settle what the last EHLOs allocated
  "$@" > "$T/mem-$name-during.json"
  kill -TERM "$lpid" 2>/dev/null || true
  wait "$lpid" || true
  [ $ok = 1 ] || log "$name: the idle connections were not all set up in time"
  cat "$T/idle-$name.err" >&2
}

# ---- sesame ----
SESAME_NOTE=""
run_sesame() {
  local sub
  for sub in serve account domain; do
    case "$("$SESAME_BIN" "$sub" --help 2>&1 || true)" in
      *"not built yet"*) SESAME_NOTE="sesame $sub is not built yet in this tree"; return 1 ;;
    esac
  done
  if false; then
    SESAME_NOTE="sesame serve is not built yet in this tree"
    return 1
  fi
  local conf=$T/sesame.conf
  mkdir -p "$T/sesame"
  cat > "$conf" <<EOF
[server]
hostname = mx.example.net
data_dir = $T/sesame
[listen]
mx = 127.0.0.1:$MX_PORT
submission = 127.0.0.1:$SUB_PORT
http = 127.0.0.1:$HTTP_PORT
[dns]
servers = 127.0.0.1:$DNS_PORT
[log]
level = warn
EOF
  "$SESAME_BIN" account create bench --production --config "$conf" --json > "$T/account.json" ||
    { SESAME_NOTE="sesame account create failed: $(tail -n1 "$T/account.json")"; return 1; }
  "$SESAME_BIN" domain add example.net --account bench --config "$conf" --json > "$T/domain.json" ||
    { SESAME_NOTE="sesame domain add failed"; return 1; }
  # Publish what domain add asks for (its verification record), then verify.
  local extra
  extra=$("$py" - "$T/domain.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
out = {}
for r in d.get("records", []):
    if r.get("type") == "TXT" and r.get("name", "").rstrip(".").startswith("_sesame."):
        out.setdefault(r["name"].rstrip("."), []).append({"type": "TXT", "value": r["value"]})
print(json.dumps(out))
EOF
)
  make_zone "$extra"
  kill -HUP "$DNS_PID"
  sleep 0.3
  "$SESAME_BIN" domain verify example.net --account bench --config "$conf" --json > "$T/verify-domain.json" ||
    { SESAME_NOTE="sesame domain verify failed"; return 1; }
  grep -q '"verified"' "$T/verify-domain.json" ||
    { SESAME_NOTE="example.net did not verify: $(cat "$T/verify-domain.json")"; return 1; }

  ulimit -n 20000 2>/dev/null || true
  "$SESAME_BIN" serve --config "$conf" 2> "$T/sesame.log" &
  SESAME_PID=$!
  PIDS+=("$SESAME_PID")
  wait_port "$MX_PORT" "$SESAME_PID" ||
    { SESAME_NOTE="sesame serve did not start: $(tail -n 3 "$T/sesame.log")"; return 1; }
  probe "$MX_PORT" sesame
  if [ $PROBE_OK != 1 ]; then
    SESAME_NOTE="sesame: $PROBE_WHY"
    return 1
  fi
  # The verdicts sesame stored with the accepted message (GET /v1/inbound).
  SESAME_API_KEY=$(json_get api_key < "$T/account.json") \
    "$py" - "$HTTP_PORT" > "$T/sesame-authres.txt" 2> "$T/sesame-api.err" <<'EOF' || true
import json, os, sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
req = urllib.request.Request("http://127.0.0.1:%s/v1/inbound" % sys.argv[1],
                             headers={"Authorization": "Bearer " + os.environ["SESAME_API_KEY"]})
msgs = json.load(opener.open(req, timeout=10)).get("messages", [])
print(" ".join((msgs[0].get("authentication_results") or "").split()) if msgs else "")
EOF
  log "sesame: $(cat "$T/sesame-authres.txt")"
  if ! verdicts_pass "$T/sesame-authres.txt"; then
    SESAME_NOTE="the stored Authentication-Results of the accepted message lack spf=pass, dkim=pass or dmarc=pass: [$(cat "$T/sesame-authres.txt")] $(tail -n1 "$T/sesame-api.err")"
    return 1
  fi
  idle "$MX_PORT" "$idle_n" sesame "$py" "$mta/memsum.py" "$SESAME_PID"
  load "$MX_PORT" sesame
  kill -TERM "$SESAME_PID"
  wait "$SESAME_PID" || true
  return 0
}

# ---- Postfix + OpenDKIM + OpenDMARC ----
PEER_NOTE=""
run_postfix() {
  if [ $isolated != 1 ]; then
    PEER_NOTE="peer not run: no private network namespace (needs root and unshare), and OpenDMARC can only use the system resolver"
    return 1
  fi
  local missing=""
  for p in postfix opendkim opendmarc; do
    command -v "$p" >/dev/null || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    PEER_NOTE="peer not run:$missing not installed (scripts/install-deps.sh --bench; make bench runs it)"
    return 1
  fi
  PF=$T/pf
  PF_MAXPROC=$((idle_peer_n + conns + 50))
  if [ "$milter_socket" = inet ]; then
    DKIM_SOCKET="inet:$DKIM_PORT@127.0.0.1"; PF_DKIM="inet:127.0.0.1:$DKIM_PORT"
    DMARC_SOCKET="inet:$DMARC_PORT@127.0.0.1"; PF_DMARC="inet:127.0.0.1:$DMARC_PORT"
  else
    DKIM_SOCKET="local:$PF/opendkim.sock"; PF_DKIM="unix:$PF/opendkim.sock"
    DMARC_SOCKET="local:$PF/opendmarc.sock"; PF_DMARC="unix:$PF/opendmarc.sock"
  fi
  mkdir -p "$PF/etc" "$PF/spool" "$PF/data" "$PF/mail"
  render "$mta/main.cf.in" "$PF/etc/main.cf"
  render "$mta/master.cf.in" "$PF/etc/master.cf"
  render "$mta/opendkim.conf.in" "$PF/etc/opendkim.conf"
  render "$mta/opendmarc.conf.in" "$PF/etc/opendmarc.conf"
    echo "192.0.2.1" > "$PF/etc/internal_hosts"
  echo "check@example.net virtual:" > "$PF/etc/transport"
  echo "check@example.net check/" > "$PF/etc/vmailbox"
  chown postfix:postfix "$PF/data" "$PF/mail"

  opendkim -f -x "$PF/etc/opendkim.conf" > "$PF/opendkim.log" 2>&1 &
  DKIM_PID=$!
  PIDS+=("$DKIM_PID")
  opendmarc -f -c "$PF/etc/opendmarc.conf" > "$PF/opendmarc.log" 2>&1 &
  DMARC_PID=$!
  PIDS+=("$DMARC_PID")
  wait_milter "$DKIM_PORT" "$PF/opendkim.sock" "$DKIM_PID" ||
    { PEER_NOTE="opendkim did not start: $(tail -n 3 "$PF/opendkim.log")"; return 1; }
  wait_milter "$DMARC_PORT" "$PF/opendmarc.sock" "$DMARC_PID" ||
    { PEER_NOTE="opendmarc did not start: $(tail -n 3 "$PF/opendmarc.log")"; return 1; }

  postfix -c "$PF/etc" check > "$PF/check.log" 2>&1 || true
  if ! postfix -c "$PF/etc" start > "$PF/start.log" 2>&1; then
    PEER_NOTE="postfix did not start: $(tail -n 3 "$PF/start.log")"
    return 1
  fi
  PF_STARTED=1
  local mpid=""
  for _ in $(seq 1 100); do
    mpid=$(tr -dc 0-9 < "$PF/spool/pid/master.pid" 2>/dev/null || true)
    [ -n "$mpid" ] && break
    sleep 0.1
  done
  wait_port "$PF_PORT" "${mpid:-0}" ||
    { PEER_NOTE="postfix does not listen: $(tail -n 5 "$PF/maillog" 2>/dev/null)"; return 1; }
  probe "$PF_PORT" postfix
  if [ $PROBE_OK != 1 ]; then
    PEER_NOTE="peer left out: $PROBE_WHY"
    return 1
  fi
  # What the milters added to the accepted message (delivered to a maildir).
  local f=""
  for _ in $(seq 1 50); do
    f=$(find "$PF/mail/check/new" -type f 2>/dev/null | head -n1)
    [ -n "$f" ] && break
    sleep 0.1
  done
  if [ -n "$f" ]; then
    grep -i '^Authentication-Results:' -A2 "$f" | tr -s ' \t\r\n' ' ' > "$PF/authres.txt" || true
    log "postfix: $(cat "$PF/authres.txt")"
  fi
  if ! verdicts_pass "$PF/authres.txt"; then
    PEER_NOTE="peer left out: the milters Authentication-Results on the accepted message lack spf=pass, dkim=pass or dmarc=pass: [$(cat "$PF/authres.txt" 2>/dev/null)]"
    return 1
  fi
  idle "$PF_PORT" "$idle_peer_n" postfix "$py" "$mta/memsum.py" "$mpid" "$DKIM_PID" "$DMARC_PID"
  load "$PF_PORT" postfix
  return 0
}

have_sesame=0
have_peer=0
if [ "$sides" != postfix ]; then
  if run_sesame; then have_sesame=1; else log "sesame side not measured: $SESAME_NOTE"; fi
fi
if [ "$sides" != sesame ]; then
  if run_postfix; then have_peer=1; else log "peer side not measured: $PEER_NOTE"; fi
fi

# ---- results ----
fs_type=$(findmnt -n -o FSTYPE -T "$T" 2>/dev/null || stat -f -c %T "$T")
export T have_sesame have_peer isolated conns secs warm sources idle_n idle_peer_n milter_socket fs_type \
  MSG_OCTETS SESAME_NOTE PEER_NOTE
"$py" - <<'EOF'
import json, os

T = os.environ["T"]
env = os.environ


def load(name):
    try:
        with open(os.path.join(T, name)) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        return [json.loads(l) for l in lines]
    except (OSError, ValueError):
        return None


def first(name):
    v = load(name)
    return v[0] if v else None


def readtext(name):
    try:
        with open(os.path.join(T, name)) as f:
            return f.read().strip()
    except OSError:
        return ""


ses = first("load-sesame.json") if env["have_sesame"] == "1" else None
pf = first("load-postfix.json") if env["have_peer"] == "1" else None
PEER = "postfix+opendkim+opendmarc"

common = ("%s connections (client addresses 127.0.0.2-%d), lock-step MAIL/RCPT/DATA, "
          "%s octets DKIM-signed (RSA-2048, relaxed/relaxed) message, %s s warm-up then %s s "
          "measured per side, one after the other on the same machine; latency from the final "
          "'.' to the 250. " % (env["conns"], 1 + int(env["sources"]), env["MSG_OCTETS"],
                               env["warm"], env["secs"]))
what = ("Both sides check SPF (MAIL FROM), DKIM and DMARC against the same test DNS server "
        "(example.com: SPF -all, DMARC p=reject) and answer 250 only once the message is "
        "durable: sesame after its SQLite store commit (WAL, synchronous=FULL: fsync()ed "
        "when the commit returns), Postfix after cleanup has fsync()ed the queue file with both milters "
        "done (OpenDKIM verifies, OpenDMARC checks SPF itself via libspf2 and DMARC with "
        "RejectFailures), reached over %s sockets; Postfix then delivers to discard:. "
        "sesame also checks SPF for HELO "
        "and writes Authentication-Results/Received. Before timing, each side accepted the "
        "signed message and refused a DMARC-failing one with a 5xx. " % env["milter_socket"])
fs = ("Both stores (sesame's data_dir, Postfix's queue) on the same %s file system. "
      % env["fs_type"])
iso = ("Run in a private network namespace: all DNS to the test server, nothing leaves "
       "loopback. " if env["isolated"] == "1" else "")


def side(name, r):
    if not r:
        return "%s: not measured. " % name
    s = "%s: %.0f msg/s, p50 %.2f ms, p99 %.2f ms, max %.1f ms, %d errors" % (
        name, r["msg_per_s"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["errors"])
    if r["errors"]:
        s += " (%s)" % "; ".join(r["error_samples"])
    return s + ". "


def dist(name, r):
    if not r:
        return "%s: not measured. " % name
    return "%s: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.1f ms over %d messages. " % (
        name, r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"], r["messages"])


why = ""
if env["SESAME_NOTE"]:
    why += "sesame: " + env["SESAME_NOTE"] + ". "
if env["PEER_NOTE"]:
    why += env["PEER_NOTE"] + ". "
authres = readtext("pf/authres.txt")
sauthres = readtext("sesame-authres.txt")
notes = side("sesame", ses) + side(PEER, pf) + common + what + fs + iso + why
if sauthres:
    notes += "sesame's stored Authentication-Results of the probe message: " + sauthres[:400] + " "
if authres:
    notes += "Postfix's added headers on the probe message: " + authres[:400]

out = []
if ses:
    out.append({"name": "mx_inbound_accept_4k", "unit": "msg/s",
                "value": round(ses["msg_per_s"], 1), "limit": None,
                "peers": {PEER: round(pf["msg_per_s"], 1)} if pf else {},
                "notes": notes.strip()})
    out.append({"name": "mx_inbound_p99_latency", "unit": "ms",
                "value": round(ses["p99_ms"], 2), "limit": None,
                "peers": {PEER: round(pf["p99_ms"], 2)} if pf else {},
                "notes": dist("sesame", ses) + dist(PEER, pf)
                + "Same run and conditions as mx_inbound_accept_4k."})


def mem(name):
    b, d = first("mem-%s-before.json" % name), first("mem-%s-during.json" % name)
    idle = load("idle-%s.out" % name) or []
    ready = next((x["ready"] for x in idle if "ready" in x), 0)
    held = next((x for x in idle if "held" in x), None)
    return b, d, ready, held


sb, sd, sready, sheld = mem("sesame") if ses else (None, None, 0, None)
if sb and sd and sready:
    per = (sd["rss"] - sb["rss"]) / sready
    pnotes = ""
    peers = {}
    pb, pd, pready, pheld = mem("postfix") if pf else (None, None, 0, None)
    if pb and pd and pready:
        pss = (pd["pss"] - pb["pss"]) / pready
        peers[PEER] = round(pss)
        smtpd = pd["by_name"].get("smtpd", {"procs": 0, "rss": 0, "pss": 0})
        pnotes = ("%s: %d idle sessions; the value is the growth of the summed PSS "
                  "(proportional set size, shared pages split among the processes sharing "
                  "them) of the Postfix master, all its children and both milters, per "
                  "session: %.0f bytes. The %d smtpd processes alone: RSS sum / N = %.0f "
                  "bytes, PSS sum / N = %.0f bytes (one smtpd process per session, plus "
                  "milter threads). " % (PEER, pready, pss, smtpd["procs"],
                                         smtpd["rss"] / pready, smtpd["pss"] / pready))
    out.append({"name": "mx_idle_session_memory", "unit": "bytes/session",
                "value": round(per), "limit": None, "peers": peers,
                "notes": ("sesame: %d idle sessions (banner read, EHLO answered, then "
                          "silent; client addresses 127.0.0.2-126; sesame's default [limits]), VmRSS %d -> %d bytes: "
                          "(delta / N) = %.0f bytes per session (goal <= 65536); %s "
                          "closed by the server while held. Kernel socket buffers are "
                          "counted on neither side. " % (
                              sready, sb["rss"], sd["rss"], per,
                              sheld["closed_by_server"] if sheld else "?")
                          + pnotes + why).strip()})

if not out:
    # Nothing of sesame's to report, and no number is made up: a service
    # not built yet is a skip (exit 0, nothing printed), anything else a
    # failure.
    import sys
    print("bench_mta: nothing measured: " + (why or "unknown reason"), file=sys.stderr)
    if pf:
        print("bench_mta: peer alone: " + side(PEER, pf), file=sys.stderr)
    sys.exit(0 if "not built yet" in env["SESAME_NOTE"] else 1)
for o in out:
    print(json.dumps(o))
EOF
