#!/usr/bin/python3
"""dkimpy peer for bench_dkim (not a benchmark itself: bench/run.sh runs only
bench_*): signs and verifies the same 4 KiB message with the same keys for
SECONDS each and prints {"rsa_sign": N, "rsa_verify": N, "ed_sign": N,
"ed_verify": N} in operations per second.
  dkimpy_peer.py SECONDS MESSAGE RSA_PEM RSA_RECORD ED_SEED_B64 ED_RECORD"""
import json
import sys
import time

import dkim

secs = float(sys.argv[1])
msg = open(sys.argv[2], "rb").read()
rsa_pem = open(sys.argv[3], "rb").read()
records = {b"rsa._domainkey.example.test.": open(sys.argv[4], "rb").read().strip(),
           b"ed._domainkey.example.test.": open(sys.argv[6], "rb").read().strip()}
ed_seed = open(sys.argv[5], "rb").read().strip()


def dnsfunc(name, timeout=5):
    return records.get(name)


def rate(fn):
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        t = time.perf_counter() - start
        if t >= secs:
            return n / t


out = {}
for tag, sel, key, alg in (("rsa", b"rsa", rsa_pem, b"rsa-sha256"),
                           ("ed", b"ed", ed_seed, b"ed25519-sha256")):
    def sign():
        return dkim.sign(msg, sel, b"example.test", key, canonicalize=(b"relaxed", b"relaxed"),
                         signature_algorithm=alg)
    signed = sign() + msg
    assert dkim.verify(signed, dnsfunc=dnsfunc), tag
    out[tag + "_sign"] = rate(sign)
    out[tag + "_verify"] = rate(lambda: dkim.verify(signed, dnsfunc=dnsfunc))
print(json.dumps(out))
