#!/usr/bin/python3
"""DKIM interop driver for tests/e2e_dkim_interop.sh (Debian's python3, so
that python3-dkim and python3-dnspython are importable).

  dkim_interop.py SESAME_BIN DNS_ADDR WORKDIR

WORKDIR holds rsa.pem and ed.pem (sesame keygen, published in the test DNS
server as rsa._domainkey.example.test and ed._domainkey.example.test).

1. A corpus of awkward messages is signed by `sesame dkim sign` with both
   keys in relaxed/relaxed and simple/simple; every signed message must pass
   in dkimpy, in Perl Mail::DKIM (RSA: Debian's Mail::DKIM has no Ed25519),
   and in `sesame dkim verify`.
2. Messages signed by dkimpy (RSA and Ed25519, both canonicalizations) and
   by Mail::DKIM (RSA) must pass in sesame, and fail once a signed header or
   the body is altered.
Prints one line per failed check and a summary; exits 1 on any failure."""
import json
import os
import re
import subprocess
import sys
import base64

import dkim
import dns.resolver

SESAME, DNS_ADDR, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))
HOST, PORT = DNS_ADDR.rsplit(":", 1)
DOMAIN = "example.test"
failures = 0
checks = 0


def check(ok, what):
    global failures, checks
    checks += 1
    if not ok:
        failures += 1
        print("FAIL: " + what, flush=True)


resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [HOST]
resolver.port = int(PORT)
resolver.lifetime = 5


def dnsfunc(name, timeout=5):
    try:
        ans = resolver.resolve(name.decode().rstrip("."), "TXT")
    except Exception:
        return None
    return b"".join(b"".join(r.strings) for r in ans)


def lines(*ls, eol=b"\r\n"):
    return eol.join(l if isinstance(l, bytes) else l.encode() for l in ls)


HDR = [b"From: Alice <alice@example.test>", b"To: Bob <bob@example.net>",
       b"Subject: interop", b"Date: Mon, 1 Jan 2024 10:00:00 +0000",
       b"Message-ID: <interop@example.test>"]


def corpus():
    c = {}
    c["plain"] = lines(*HDR, b"", b"Hello.", b"")
    c["folded"] = lines(b"From: Alice", b"  <alice@example.test>", b"To: a@example.net,",
                        b"\tb@example.net,", b"    c@example.net",
                        b"Subject: a subject that is folded", b" over\t two lines",
                        b"Date: Mon, 1 Jan 2024 10:00:00 +0000", b"", b"body", b"")
    c["duplicates"] = lines(b"Received: from a by b", b"Received: from c by d",
                            *HDR, b"To: second@example.net", b"Comments: one",
                            b"Comments: two", b"", b"x", b"")
    c["trailing-ws"] = lines(b"From: alice@example.test   ", b"Subject:  spaced\t out  ",
                             b"To:bob@example.net", b"", b"line with trailing   ",
                             b"tabs\t\t", b"  leading", b"mid  dle \t space", b"")
    c["empty-body"] = lines(*HDR, b"", b"")
    c["no-body-no-blank"] = lines(*HDR, b"")
    c["blank-lines-at-end"] = lines(*HDR, b"", b"text", b"", b"", b"", b"  ", b"")
    c["only-blank-lines"] = lines(*HDR, b"", b"", b"", b"")
    c["lf-only"] = lines(*HDR, b"", b"LF only", b"", b"lines", b"", b"", eol=b"\n")
    c["8bit"] = lines(*HDR, b"Content-Type: text/plain; charset=utf-8",
                      b"Content-Transfer-Encoding: 8bit", b"",
                      "Grüße, ça va? — 日本語".encode(), b"latin1 \xe9\xe8", b"")
    c["long-lines"] = lines(*HDR, b"", b"x" * 5000, b"y " * 3000, b"z" * 998, b"")
    c["no-final-crlf"] = lines(*HDR, b"", b"no newline at the end")
    c["mixed-case"] = lines(b"fRoM: alice@example.test", b"SUBJECT: caps", b"to: b@example.net",
                            b"", b"x", b"")
    c["mime"] = lines(*HDR, b"MIME-Version: 1.0",
                      b'Content-Type: multipart/alternative; boundary="b1"', b"",
                      b"--b1", b"Content-Type: text/plain", b"", b"plain", b"--b1",
                      b"Content-Type: text/html", b"", b"<p>html</p>", b"--b1--", b"")
    big_line = (b"The quick brown fox jumps over the lazy dog.  0123456789 \t end" + b"\r\n")
    body = big_line * ((10 * 1024 * 1024) // len(big_line) + 1)
    c["10mib"] = lines(*HDR, b"") + b"\r\n" + body
    return c


def run(args, data=None):
    return subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def sesame_sign(msg, sel, canon):
    p = run([SESAME, "dkim", "sign", "--domain", DOMAIN, "--selector", sel,
             "--key", os.path.join(WORK, sel + ".pem"), "--canonicalization", canon], msg)
    return p


def sesame_verify(msg):
    p = run([SESAME, "dkim", "verify", "--dns", DNS_ADDR, "--json"], msg)
    if p.returncode != 0:
        return None, p.stderr.decode(errors="replace")
    return json.loads(p.stdout)["signatures"], ""


def dkimpy_verify(msg):
    d = dkim.DKIM(msg)
    try:
        return d.verify(dnsfunc=dnsfunc), ""
    except Exception as e:   # dkimpy raises on some failures
        return False, repr(e)


# ---- 1. sesame signs, everyone verifies ----
msgs = corpus()
signed_files = []   # (path, description) for Mail::DKIM
for name, msg in msgs.items():
    for sel in ("rsa", "ed"):
        for canon in ("relaxed/relaxed", "simple/simple"):
            if name == "10mib" and (sel, canon) not in (("rsa", "relaxed/relaxed"),
                                                        ("ed", "simple/simple")):
                continue
            what = "%s %s %s" % (name, sel, canon)
            p = sesame_sign(msg, sel, canon)
            check(p.returncode == 0, "sesame sign %s: exit %d %s" % (what, p.returncode,
                                                                      p.stderr.decode()))
            if p.returncode != 0:
                continue
            out = p.stdout
            check(out.endswith(msg) and out.startswith(b"DKIM-Signature: "),
                  "sesame sign %s: output is not signature + message" % what)
            if name == "lf-only":
                check(b"\r" not in out, "sesame sign lf-only kept LF line ends")
            ok, why = dkimpy_verify(out)
            check(ok, "dkimpy rejects sesame's %s %s" % (what, why))
            sigs, err = sesame_verify(out)
            check(sigs is not None and len(sigs) == 1 and sigs[0]["result"] == "pass",
                  "sesame verify of its own %s: %s %s" % (what, sigs, err))
            if sel == "rsa":
                path = os.path.join(WORK, "signed-%s-%s.eml" % (name, canon.replace("/", "-")))
                with open(path, "wb") as f:
                    f.write(out)
                signed_files.append(path)

p = run(["perl", os.path.join(HERE, "dkim_mail_dkim.pl"), "verify", DNS_ADDR] + signed_files)
check(p.returncode == 0, "Mail::DKIM verify ran: %s" % p.stderr.decode())
seen = {}
for line in p.stdout.decode().splitlines():
    f, result, detail = (line.split(" ", 2) + ["", ""])[:3]
    seen[f] = (result, detail)
for f in signed_files:
    r = seen.get(f, ("missing", ""))
    check(r[0] == "pass", "Mail::DKIM rejects %s: %s %s" % (os.path.basename(f), r[0], r[1]))

# ---- 2. dkimpy and Mail::DKIM sign, sesame verifies ----
with open(os.path.join(WORK, "rsa.pem"), "rb") as f:
    rsa_pem = f.read()
with open(os.path.join(WORK, "ed.pem"), "rb") as f:
    pem = f.read()
# A PKCS#8 Ed25519 key is a fixed 16-octet prefix and the 32-octet seed;
# dkimpy wants the seed in base64.
der = base64.b64decode(b"".join(l for l in pem.splitlines() if not l.startswith(b"-----")))
ed_seed = base64.b64encode(der[-32:])


def tamper_header(m):
    return re.sub(rb"(?m)^(Subject:[ \t]*)", rb"\1Re: ", m, count=1) if re.search(
        rb"(?mi)^subject:", m) else m.replace(b"\nFrom:", b"\nFrom: x", 1)


def tamper_body(m):
    """Adds a word at the start of the body (or a body when there is none)."""
    i = m.find(b"\r\n\r\n")
    if i >= 0:
        p = i + 4
    else:
        j = m.find(b"\n\n")
        p = j + 2 if j >= 0 else None
    if p is None:
        return m + b"\r\n\r\nadded\r\n"
    return m[:p] + b"tampered " + m[p:]


for name in ("plain", "folded", "duplicates", "trailing-ws", "8bit", "blank-lines-at-end",
             "empty-body", "long-lines", "mime", "10mib"):
    msg = msgs[name]
    for algo, sel, key in ((b"rsa-sha256", b"rsa", rsa_pem), (b"ed25519-sha256", b"ed", ed_seed)):
        for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple")):
            if name == "10mib" and canon[0] == b"simple":
                continue
            what = "%s dkimpy %s %s" % (name, algo.decode(), b"/".join(canon).decode())
            sig = dkim.sign(msg, sel, DOMAIN.encode(), key, canonicalize=canon,
                            signature_algorithm=algo)
            signed = sig + msg
            sigs, err = sesame_verify(signed)
            check(sigs is not None and len(sigs) == 1 and sigs[0]["result"] == "pass",
                  "sesame rejects %s: %s %s" % (what, sigs, err))
            for how, alt in (("header", tamper_header(signed)), ("body", tamper_body(signed))):
                check(alt != signed, "tampering %s changed nothing in %s" % (how, what))
                sigs, err = sesame_verify(alt)
                check(sigs is not None and len(sigs) == 1 and sigs[0]["result"] == "fail",
                      "sesame accepts %s with the %s altered: %s %s" % (what, how, sigs, err))

# Debian's Mail::DKIM reads PKCS#1 ("RSA PRIVATE KEY") PEM only.
pkcs1 = os.path.join(WORK, "rsa-pkcs1.pem")
p = run(["openssl", "rsa", "-in", os.path.join(WORK, "rsa.pem"), "-traditional", "-out", pkcs1])
check(p.returncode == 0, "openssl rsa -traditional: %s" % p.stderr.decode())
for name in ("plain", "folded", "trailing-ws", "8bit", "blank-lines-at-end"):
    for canon in ("relaxed", "simple"):
        p = run(["perl", os.path.join(HERE, "dkim_mail_dkim.pl"), "sign",
                 pkcs1, DOMAIN, "rsa", canon], msgs[name])
        check(p.returncode == 0, "Mail::DKIM sign %s: %s" % (name, p.stderr.decode()))
        if p.returncode:
            continue
        sigs, err = sesame_verify(p.stdout)
        check(sigs is not None and len(sigs) == 1 and sigs[0]["result"] == "pass",
              "sesame rejects Mail::DKIM's %s %s: %s %s" % (name, canon, sigs, err))
        sigs, err = sesame_verify(tamper_body(p.stdout))
        check(sigs is not None and sigs and sigs[0]["result"] == "fail",
              "sesame accepts Mail::DKIM's %s %s with the body altered" % (name, canon))

print("dkim interop: %d checks, %d failed" % (checks, failures))
sys.exit(1 if failures else 0)
