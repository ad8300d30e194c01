"""The results of bench/bench_send.sh (SPEC.md §5 objects, one per line on
stdout) from the files the run left in $T: send_load's and smtp_load's
JSON, the sink logs ("ARRIVAL_NS STAMP_NS" per message), the drain waits
and the CPU snapshots. Every figure printed is one measured in this run;
what could not be measured is said in the notes, never filled in."""
import json
import os
import sys

T = os.environ["T"]
env = os.environ
secs = float(env["secs"])
warm = float(env["warm"])
PEER = "postfix relay (smtp in, smtp out)"
PEER_DKIM = "postfix+opendkim relay (smtp in, rsa2048+ed25519 signing, smtp out)"


def path(name):
    return os.path.join(T, name)


def jload(name):
    try:
        with open(path(name)) as f:
            text = f.read().strip()
        return json.loads(text.splitlines()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


def arrivals(name):
    out = []
    try:
        with open(path(name)) as f:
            for line in f:
                p = line.split()
                if len(p) == 2:
                    out.append((int(p[0]), int(p[1])))
    except OSError:
        pass
    return out


def pct(xs, p):
    if not xs:
        return 0.0
    return xs[min(len(xs) - 1, int(p * (len(xs) - 1) + 0.5))]


def cpu_note(name):
    a, b = jload("cpu-%s-0.json" % name), jload("cpu-%s-1.json" % name)
    if not a or not b:
        return ""
    hz, dt = a["hz"], b["t"] - a["t"]
    if dt <= 0:
        return ""
    per = []
    total = 0.0
    for k, v in b["threads"].items():
        d = (v["ticks"] - a["threads"].get(k, {"ticks": 0})["ticks"]) / hz / dt
        total += d
        per.append((d, k.split("/")[1]))
    per.sort(reverse=True)
    mb = (b["machine"]["busy"] - a["machine"]["busy"]) / max(1, b["machine"]["total"] - a["machine"]["total"])
    top = ", ".join("thread %s %.0f%%" % (tid, 100 * d) for d, tid in per[:4] if d >= 0.02)
    return ("sesame CPU over the measured window: %.0f%% of one core in all (busiest: %s); "
            "the machine's %s cores %.0f%% busy (everything on it: load generator, sink, other users). "
            % (100 * total, top or "none", os.cpu_count(), 100 * mb))


def sink_summary(name):
    try:
        with open(path("sink-%s.out" % name)) as f:
            for line in f:
                if line.startswith("{"):
                    return json.loads(line)
    except (OSError, ValueError):
        pass
    return None


# ---- sesame ----
ses = None
if env["have_sesame"] == "1":
    ld = jload("load-sesame.json")
    arr = arrivals("sink-sesame.log")
    if ld:
        ws, we = ld["window_start_ns"], ld["window_end_ns"]
        try:
            tc = int(open(path("t-cont")).read().strip())
        except (OSError, ValueError):
            tc = 0
        # the main load's arrivals; those after tc are the backlog phase's
        stamped = [(a, s) for a, s in arr if s and not (tc and a >= tc)]
        in_window = sum(1 for a, s in stamped if ws <= a < we)
        lat = sorted((a - s) / 1e6 for a, s in stamped if ws <= s < we)
        posted_in_window = ld["accepted"]
        drain = jload("drain-sesame.json") or {}
        last = max((a for a, s in stamped), default=0)
        first_post = ws - int(warm * 1e9)
        ses = {
            "accepted_per_s": ld["accepted_per_s"],
            "delivered_per_s": in_window / secs,
            "delivered_window": in_window,
            "accepted_window": ld["accepted"],
            "accepted_total": ld["accepted_total"],
            "arrived_total": len(stamped),
            "lat": lat, "lat_n": len(lat), "posted_in_window": posted_in_window,
            "http_p50": ld["p50_ms"], "http_p99": ld["p99_ms"],
            "errors": ld["errors"], "samples": ld["error_samples"], "status": ld["status"],
            "drain_s": drain.get("waited_s"),
            "overall_per_s": len(stamped) / ((last - first_post) / 1e9) if last > first_post else 0,
            "sink": sink_summary("sesame"),
        }
        bl = jload("load-backlog.json")
        after = [a for a, st in arr if st and tc and a >= tc]
        if bl and after and max(after) > tc:
            ses["backlog"] = {"queued": bl["accepted_total"], "accepted_per_s": bl["accepted_per_s"],
                              "delivered": len(after),
                              "per_s": len(after) / ((max(after) - tc) / 1e9)}


def postfix_side(name):
    if env["have_" + name.replace("-", "_")] != "1":
        return None
    ld = jload("load-%s.json" % name)
    try:
        t0 = int(open(path("t0-" + name)).read().strip())
    except (OSError, ValueError):
        return None
    arr = arrivals("sink-%s.log" % name)
    ws = t0 + int(warm * 1e9)
    we = ws + int(secs * 1e9)
    n = sum(1 for a, s in arr if ws <= a < we)
    drain = jload("drain-%s.json" % name) or {}
    return {"delivered_per_s": n / secs, "delivered_window": n, "arrived_total": len(arr) - 1,
            "load": ld, "drain_s": drain.get("waited_s"), "left_queued": drain.get("queued"),
            "sink": sink_summary(name)}


pf = postfix_side("postfix")
pfd = postfix_side("postfix-dkim")
sink_alone = jload("load-sinkalone.json")
rsa = float(env["RSA_SIGN"])

notes = []
if ses:
    s = ses
    notes.append(
        "sesame: %.0f msg/s delivered at the sink during the %g s window = %.2f of the "
        "single-core openssl rsa2048 sign rate (%.0f/s; goal >= 0.80); %.0f msg/s accepted "
        "(202) in the same window (HTTP p50 %.2f ms, p99 %.2f ms); end to end (POST -> "
        "arrival at the sink) p50 %.1f ms, p99 %.1f ms over %d messages posted in the window; "
        "overall %d accepted, %d arrived, %.0f msg/s from the first POST to the last arrival "
        "(queue drained %s s after the load ended); %d HTTP errors%s. "
        % (s["delivered_per_s"], secs, s["delivered_per_s"] / rsa, rsa, s["accepted_per_s"],
           s["http_p50"], s["http_p99"], pct(s["lat"], 0.5), pct(s["lat"], 0.99), s["lat_n"],
           s["accepted_total"], s["arrived_total"], s["overall_per_s"], s["drain_s"],
           s["errors"], (" (%s)" % "; ".join(s["samples"])) if s["errors"] else ""))
    if s.get("backlog"):
        b = s["backlog"]
        notes.append(
            "Delivery alone: %d messages queued while the sink was stopped (accepted at %.0f/s "
            "while deliveries hung), then %d delivered at %.0f msg/s with no API load (SMTP "
            "exchanges and outcome writes; they had been claimed meanwhile). "
            % (b["queued"], b["accepted_per_s"], b["delivered"], b["per_s"]))
    if s.get("sink"):
        k = s["sink"]
        notes.append("The sink saw %d SMTP connections from sesame for %d messages over the "
                     "whole run (%.1f messages per connection). "
                     % (k["connections"], k["messages"], k["messages"] / max(1, k["connections"])))
    notes.append(cpu_note("sesame"))
else:
    notes.append("sesame: not measured: %s. " % (env.get("SESAME_NOTE") or "not run"))
notes.append(
    "What sesame does per message: POST /v1/messages with the JSON structured form "
    "(%s octets of text, one recipient, one account with a verified domain) -> "
    "MIME built (Date, Message-ID, text/plain) -> two DKIM signatures (RSA-2048 and "
    "Ed25519, relaxed/relaxed) -> durable queue (SQLite WAL, synchronous=FULL, group "
    "commit) and Send event -> 202; the delivery thread claims the recipient, resolves "
    "the MX through the test DNS server, and sends it (VERP MAIL FROM, one recipient per "
    "transaction, connections reused, at most %s to the domain) to the sink, then records "
    "the outcome and a Delivery event. Before timing, one message was checked at the sink: "
    "both signatures verify (dkimpy). " % (env["size"], env["out_conns"]))
for name, label, r, why in (("postfix", PEER, pf, env.get("PF_NOTE_postfix")),
                            ("postfix-dkim", PEER_DKIM, pfd, env.get("PF_NOTE_postfix_dkim"))):
    if r:
        ld = r["load"] or {}
        notes.append(
            "%s: %.0f msg/s delivered at the sink in its %g s window; %.0f msg/s accepted by "
            "smtpd (250 after the queue file is fsync()ed; smtp_load p50 %.2f ms, p99 %.2f ms, "
            "%s errors); queue empty %s s after the load; %d relayed in all over %s SMTP "
            "connections to the sink. "
            % (label, r["delivered_per_s"], secs, ld.get("msg_per_s", 0), ld.get("p50_ms", 0),
               ld.get("p99_ms", 0), ld.get("errors", "?"), r["drain_s"], r["arrived_total"],
               r["sink"]["connections"] if r.get("sink") else "?"))
    else:
        notes.append("%s: not measured: %s. " % (label, why or "not run"))
notes.append(
    "What Postfix does per message: smtpd on loopback takes the message over SMTP from "
    "bench/smtp_load (%s connections, lock-step MAIL/RCPT/DATA, from 127.0.0.2, a "
    "mynetworks client; the same warm-up and measured time as sesame's load, smtp_load being "
    "time-based, so the message counts differ and are given) - the same %s-octet message "
    "sesame built, its signatures removed - "
    "cleanup fsync()s the queue file before the 250, qmgr and the smtp client relay it to "
    "the same sink through transport_maps (no DNS), at most %s connections, reused; "
    "without a milter in the first peer, with OpenDKIM signing RSA-2048 + Ed25519 in the "
    "second (its probe's two signatures verified at the sink). Postfix's end-to-end latency "
    "is not measured (smtp_load sends one fixed message, no stamp). "
    % (env["conns"], env["RELAY_OCTETS"], env["out_conns"]))
if sink_alone:
    notes.append("The sink alone (smtp_load, %s connections, lock-step): %.0f msg/s, p99 %.2f ms, "
                 "so it is not the bottleneck. " % (env["out_conns"], sink_alone["msg_per_s"],
                                                    sink_alone["p99_ms"]))
notes.append("sesame: %s HTTP keep-alive connections (bench/send_load.c), %g s warm-up then %g s "
             "measured; each side one after the other on the same machine, stores on the same %s "
             "file system. " % (env["conns"], warm, secs, env["fs_type"]))
if env["isolated"] == "1":
    notes.append("Run in a private network namespace: nothing leaves loopback. ")

peers = {}
if pf:
    peers[PEER] = round(pf["delivered_per_s"], 1)
if pfd:
    peers[PEER_DKIM] = round(pfd["delivered_per_s"], 1)

if not ses:
    print("bench_send: nothing measured for sesame: " + (env.get("SESAME_NOTE") or "?"),
          file=sys.stderr)
    for n in notes:
        print("bench_send: " + n, file=sys.stderr)
    sys.exit(1)

out = [
    {"name": "send_api_to_sink_rsa2048", "unit": "msg/s",
     "value": round(ses["delivered_per_s"], 1),
     "limit": {"what": "openssl speed rsa2048 sign (1 core)", "value": round(rsa, 1)},
     "peers": peers, "notes": "".join(notes).strip()},
    {"name": "send_api_to_sink_e2e_p99_latency", "unit": "ms",
     "value": round(pct(ses["lat"], 0.99), 2), "limit": None, "peers": {},
     "notes": ("sesame, POST handed to the kernel -> the final '.' read by the sink (the send "
               "time stamped in the Subject, CLOCK_REALTIME on both ends, same machine): p50 "
               "%.2f ms, p90 %.2f ms, p99 %.2f ms, max %.1f ms over %d messages posted in the "
               "measured window (%d were accepted in it) while the load ran at %.0f accepted/s. "
               "Same run and conditions as send_api_to_sink_rsa2048; no peer figure (Postfix "
               "is fed a fixed message without a stamp)."
               % (pct(ses["lat"], 0.5), pct(ses["lat"], 0.9), pct(ses["lat"], 0.99),
                  ses["lat"][-1] if ses["lat"] else 0, ses["lat_n"], ses["accepted_window"],
                  ses["accepted_per_s"]))},
]
for o in out:
    print(json.dumps(o))
