#!/usr/bin/python3
"""Python peer for bench_check (not a benchmark itself: bench/run.sh runs only
bench_*): the receiving-side check of one message with Debian's packages,
  SPF   pyspf (python3-spf): a fresh spf.query per message (its DNS cache
        lives in the query object), spf.DNSLookup replaced by a lookup in
        the zone dict, as pyspf's own testspf.py does;
  DKIM  dkimpy (python3-dkim): dkim.DKIM(msg).verify(dnsfunc=...) with the
        key record from the same dict (what dkim.verify does, keeping the
        object to read d=);
  DMARC a small step written here: the From domain (dkimpy's parsed header
        fields + email.utils.getaddresses), _dmarc TXT from the same dict
        (then at the organizational domain), p=, adkim/aspf, relaxed
        alignment with the registrable domain taken as the last two labels
        (right for the .test names used here, not a Public Suffix List);
  and an Authentication-Results string formatted from the three results.
Runs for SECONDS after checking that SPF, DKIM and DMARC pass, and prints
{"rate": messages per second, "pass": true}.
  check_peer.py SECONDS MESSAGE ZONE_JSON IP SENDER HELO AUTHSERV_ID
ZONE_JSON maps names to one TXT string each."""
import email.utils
import json
import sys
import time

import dkim
import spf

secs = float(sys.argv[1])
msg = open(sys.argv[2], "rb").read()
zone_text = json.load(open(sys.argv[3], encoding="utf-8"))
ip, sender, helo, authserv = sys.argv[4:8]


def split255(s):
    b = s.encode()
    return tuple(b[i:i + 255] for i in range(0, len(b), 255)) or (b"",)


# name (lower case, no trailing dot) -> TXT strings, as the DNS would split them
zone = {name.lower().rstrip("."): split255(txt) for name, txt in zone_text.items()}


def spf_lookup(name, qtype, strict=True, timeout=None, level=0):
    """spf.DNSLookup: [((name, type), value), ...]; TXT values are tuples of bytes."""
    name = name.lower().rstrip(".")
    if qtype == "TXT" and name in zone:
        return [((name, "TXT"), zone[name])]
    return []


spf.DNSLookup = spf_lookup


def txt(name):
    v = zone.get(name.lower().rstrip("."))
    return b"".join(v).decode() if v is not None else None


def dkim_dnsfunc(name, timeout=5):
    v = zone.get(name.decode().lower().rstrip("."))
    return b"".join(v) if v is not None else None


def org_domain(d):
    return ".".join(d.lower().rstrip(".").split(".")[-2:])


def aligned(a, b, mode):
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b if mode == "s" else org_domain(a) == org_domain(b)


def dmarc_record(domain):
    t = txt("_dmarc." + domain)
    if t is None or not t.startswith("v=DMARC1"):
        return None
    tags = {}
    for part in t.split(";"):
        k, eq, v = part.strip().partition("=")
        if eq:
            tags[k.strip().lower()] = v.strip()
    if tags.get("p", "").lower() not in ("none", "quarantine", "reject"):
        return None
    return tags


def check():
    # SPF, MAIL FROM identity
    q = spf.query(i=ip, s=sender, h=helo, receiver=authserv)
    spf_res, _, _ = q.check()
    spf_domain = q.o

    # DKIM, the topmost signature
    d = dkim.DKIM(msg)
    try:
        dkim_ok = d.verify(dnsfunc=dkim_dnsfunc)
    except dkim.DKIMException:
        dkim_ok = False
    dkim_domain = d.domain.decode() if dkim_ok else None

    # the From domain (RFC 7489 §6.6.1: one From field, one domain)
    froms = [v for k, v in d.headers if k.lower() == b"from"]
    from_domain = None
    if len(froms) == 1:
        addrs = email.utils.getaddresses([froms[0].decode("utf-8", "replace")])
        doms = {a.rpartition("@")[2].lower() for _, a in addrs if "@" in a}
        if len(doms) == 1:
            from_domain = doms.pop()

    # DMARC
    dmarc_res, policy = "none", None
    if from_domain:
        rec = dmarc_record(from_domain)
        if rec is None and org_domain(from_domain) != from_domain:
            rec = dmarc_record(org_domain(from_domain))
            if rec is not None and "sp" in rec:
                rec["p"] = rec["sp"]
        if rec is not None:
            policy = rec["p"].lower()
            spf_al = spf_res == "pass" and aligned(spf_domain, from_domain,
                                                   rec.get("aspf", "r").lower())
            dkim_al = dkim_ok and aligned(dkim_domain, from_domain,
                                          rec.get("adkim", "r").lower())
            dmarc_res = "pass" if spf_al or dkim_al else "fail"

    ar = "%s; spf=%s smtp.mailfrom=%s; dkim=%s header.d=%s; dmarc=%s (p=%s) header.from=%s" % (
        authserv, spf_res, sender, "pass" if dkim_ok else "fail", dkim_domain,
        dmarc_res, policy, from_domain)
    return spf_res, q.mechanism, dkim_ok, dmarc_res, policy, ar


spf_res, mech, dkim_ok, dmarc_res, policy, ar = check()
if not (spf_res == "pass" and "include:_spf.example.test" in str(mech) and dkim_ok
        and dmarc_res == "pass" and policy == "reject"):
    print("check_peer: verdict is not a pass: spf=%s (%s) dkim=%s dmarc=%s p=%s"
          % (spf_res, mech, dkim_ok, dmarc_res, policy), file=sys.stderr)
    sys.exit(1)
print("check_peer: " + ar, file=sys.stderr)

for _ in range(3):   # warm up
    check()
n, start = 0, time.perf_counter()
while True:
    check()
    n += 1
    t = time.perf_counter() - start
    if t >= secs:
        break
print(json.dumps({"rate": n / t, "pass": True}))
