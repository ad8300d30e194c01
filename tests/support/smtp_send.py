#!/usr/bin/python3
"""Test SMTP client for the e2e tests of `sesame serve`.

  smtp_send.py send PORT FROM TO[,TO...] MSGFILE [--src IP] [--helo NAME]
      [--auth USER PASS] [--starttls]
      One transaction; prints the final reply as "CODE TEXT" (the RCPT
      refusal when every recipient was refused, the DATA reply otherwise).
  smtp_send.py raw PORT [--src IP] < SCRIPT
      Sends SCRIPT (Python string literal escapes allowed, e.g. \\r\\n) as is,
      after the greeting, then reads every reply until the server closes or
      2 s of silence; prints the replies, one per line.
"""
import smtplib, socket, ssl, sys, time


def opt(args, name, n=1):
    if name in args:
        i = args.index(name)
        v = args[i + 1:i + 1 + n]
        del args[i:i + 1 + n]
        return v if n > 1 else v[0]
    return None


def send(args):
    src = opt(args, "--src")
    helo = opt(args, "--helo") or "client.test"
    auth = opt(args, "--auth", 2)
    starttls = "--starttls" in args
    if starttls:
        args.remove("--starttls")
    port, mfrom, rcpts, path = args
    msg = open(path, "rb").read()
    s = smtplib.SMTP("127.0.0.1", int(port), local_hostname=helo, timeout=30,
                     source_address=(src, 0) if src else None)
    s.ehlo(helo)
    if starttls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo(helo)
    if auth:
        s.login(auth[0], auth[1])
    code, text = s.mail(mfrom)
    if code != 250:
        print(code, text.decode())
        return
    ok = 0
    last = None
    for r in rcpts.split(","):
        code, text = s.rcpt(r)
        last = (code, text)
        ok += code == 250
    if not ok:
        print(last[0], last[1].decode())
        return
    code, text = s.data(msg)
    print(code, text.decode())
    try:
        s.quit()
    except Exception:
        pass


def raw(args):
    src = opt(args, "--src")
    port = int(args[0])
    script = sys.stdin.read().encode().decode("unicode_escape").encode("latin-1")
    sock = socket.create_connection(("127.0.0.1", port), timeout=2,
                                    source_address=(src, 0) if src else None)
    data = b""
    def read_some():
        nonlocal data
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            return False
        data += chunk
        return True
    read_some()  # greeting
    sock.sendall(script)
    end = time.time() + 10
    while time.time() < end and read_some():
        pass
    sock.close()
    for line in data.decode("latin-1").split("\r\n"):
        if line:
            print(line)


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    {"send": send, "raw": raw}[cmd](rest)
