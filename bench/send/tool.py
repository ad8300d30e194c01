"""Small helpers of bench/bench_send.sh (issue 6, Performance), one
subcommand each, so the shell script stays readable:

  tool.py zone-add ZONE NAME TYPE VALUE        append a record to the zone file
  tool.py publish ZONE DOMAIN_JSON             the verification and DKIM records
                                               of `sesame domain add/show --json`
  tool.py post PORT KEY BODY                   POST /v1/messages, prints "STATUS BODY"
  tool.py dkim-check MESSAGE ZONE              dkimpy verdicts of every signature (JSON)
  tool.py strip MESSAGE OUT                    the message without the sink's envelope
                                               line and DKIM-Signature fields
  tool.py cpu PID...                           CPU ticks of each thread of PIDs and of
                                               the whole machine (JSON)
  tool.py wait-sink LOG TARGET MAX_S           until LOG has TARGET lines with a stamp
                                               (stops early after 5 s without progress)
  tool.py wait-postfix SPOOL LOG MAX_S         until Postfix's queue is empty

Nothing here is timed: the figures come from send_load, smtp_load and
send_sink; report.py turns them into results."""
import http.client
import json
import os
import re
import sys
import time


def zone_load(path):
    with open(path) as f:
        return json.load(f)


def zone_save(path, z):
    with open(path + ".new", "w") as f:
        json.dump(z, f, indent=1)
    os.replace(path + ".new", path)


def cmd_zone_add(path, name, typ, value):
    z = zone_load(path)
    z.setdefault(name.rstrip("."), []).append({"type": typ, "value": value})
    zone_save(path, z)


def cmd_publish(path, domain_json):
    z = zone_load(path)
    d = json.loads(open(domain_json).read())
    n = 0
    for r in d.get("records", []):
        if r.get("purpose") in ("verification", "dkim") and r.get("type") == "TXT":
            v = r["value"]
            z.setdefault(r["name"].rstrip("."), []).append(
                {"type": "TXT", "value": [v[i:i + 255] for i in range(0, len(v), 255)]})
            n += 1
    zone_save(path, z)
    print(n)


def cmd_post(port, key, body):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    c.request("POST", "/v1/messages", body=body,
              headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = c.getresponse()
    print(r.status, r.read().decode(errors="replace"))


def cmd_dkim_check(msg_path, zone_path):
    import dkim
    raw = open(msg_path, "rb").read()
    if raw.startswith(b"X-Sink-Envelope:"):
        raw = raw.split(b"\r\n", 1)[1]
    zone = zone_load(zone_path)

    def dnsfunc(name, timeout=5):
        recs = zone.get(name.decode().rstrip("."), [])
        txt = [r["value"] for r in recs if r["type"] == "TXT"]
        v = txt[0] if txt else ""
        return ("".join(v) if isinstance(v, list) else v).encode()

    d = dkim.DKIM(raw)
    sigs = re.findall(rb"(?im)^DKIM-Signature:(.*(?:\r\n[ \t].*)*)", raw)
    out = []
    for i, s in enumerate(sigs):
        flat = re.sub(rb"\s+", b"", s)
        a = re.search(rb"(?:^|;)a=([\w-]+)", flat)
        dom = re.search(rb"(?:^|;)d=([^;]+)", flat)
        try:
            ok = bool(d.verify(idx=i, dnsfunc=dnsfunc))
        except Exception as e:  # noqa: BLE001 - any failure is a failed check
            ok = False
            print("dkim-check: signature %d: %s" % (i, e), file=sys.stderr)
        out.append({"algorithm": a.group(1).decode() if a else "?",
                    "domain": dom.group(1).decode() if dom else "?", "pass": ok})
    print(json.dumps({"signatures": out, "octets": len(raw)}))


def cmd_strip(msg_path, out_path):
    raw = open(msg_path, "rb").read()
    if raw.startswith(b"X-Sink-Envelope:"):
        raw = raw.split(b"\r\n", 1)[1]
    head, body = raw.split(b"\r\n\r\n", 1)
    fields = re.split(rb"\r\n(?![ \t])", head)
    keep = [f for f in fields if not re.match(rb"(?i)(DKIM-Signature|Received|Subject):", f)]
    keep.append(b"Subject: bench relay")
    with open(out_path, "wb") as f:
        f.write(b"\r\n".join(keep) + b"\r\n\r\n" + body)


def cmd_cpu(*pids):
    out = {"threads": {}, "machine": None, "hz": os.sysconf("SC_CLK_TCK"), "t": time.time()}
    for pid in pids:
        try:
            tids = os.listdir("/proc/%s/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                s = open("/proc/%s/task/%s/stat" % (pid, tid)).read()
            except OSError:
                continue
            comm = s[s.index("(") + 1:s.rindex(")")]
            f = s[s.rindex(")") + 2:].split()
            out["threads"]["%s/%s" % (pid, tid)] = {"comm": comm, "ticks": int(f[11]) + int(f[12])}
    with open("/proc/stat") as f:
        cpu = f.readline().split()[1:]
    vals = [int(x) for x in cpu]
    out["machine"] = {"busy": sum(vals) - vals[3] - vals[4], "total": sum(vals)}
    print(json.dumps(out))


def stamped_lines(path):
    n = 0
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 2 and p[1] != "0":
                    n += 1
    except OSError:
        pass
    return n


def cmd_wait_sink(log, target, max_s):
    target, max_s = int(target), float(max_s)
    t0 = time.time()
    last, last_t = -1, t0
    n = 0
    while time.time() - t0 < max_s:
        n = stamped_lines(log)
        if n >= target:
            break
        if n != last:
            last, last_t = n, time.time()
        elif time.time() - last_t > 5:
            break
        time.sleep(0.2)
    print(json.dumps({"arrived": n, "target": target, "waited_s": round(time.time() - t0, 2)}))


def queue_files(spool):
    n = 0
    for d in ("maildrop", "incoming", "active", "deferred", "hold"):
        for _, _, files in os.walk(os.path.join(spool, d)):
            n += len(files)
    return n


def cmd_wait_postfix(spool, log, max_s):
    max_s = float(max_s)
    t0 = time.time()
    q = -1
    while time.time() - t0 < max_s:
        q = queue_files(spool)
        if q == 0:
            break
        time.sleep(0.2)
    time.sleep(0.3)  # the sink flushes its log every 100 ms
    print(json.dumps({"queued": q, "waited_s": round(time.time() - t0, 2)}))


def main():
    cmds = {"zone-add": cmd_zone_add, "publish": cmd_publish, "post": cmd_post,
            "dkim-check": cmd_dkim_check, "strip": cmd_strip, "cpu": cmd_cpu,
            "wait-sink": cmd_wait_sink, "wait-postfix": cmd_wait_postfix}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
