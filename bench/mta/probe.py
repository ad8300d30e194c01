"""One SMTP transaction for bench/bench_mta.sh's checks before timing.

    probe.py --port N --source IP --helo NAME --from ADDR --rcpt ADDR MESSAGE_FILE

Sends MESSAGE_FILE (CRLF line ends) from IP and prints one JSON line
{"stage": "mail|rcpt|data|done|connect", "code": N, "reply": "..."}: the
first refused stage, or "done" with the reply to the final dot. Exit 0 when
it could talk to the server, 1 when it could not connect. Does not judge
the reply: the harness does."""
import argparse
import json
import smtplib
import sys


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--source", "--helo", "--from", "--rcpt"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("message")
    a = ap.parse_args()
    with open(a.message, "rb") as f:
        msg = f.read()
    out = {"stage": "connect", "code": 0, "reply": ""}
    try:
        s = smtplib.SMTP(a.host, a.port, local_hostname=a.helo,
                         source_address=(a.source, 0), timeout=30)
    except OSError as e:
        out["reply"] = str(e)
        print(json.dumps(out))
        return 1
    try:
        s.ehlo()
        for stage, cmd in (("mail", "MAIL FROM:<%s>" % getattr(a, "from")),
                           ("rcpt", "RCPT TO:<%s>" % a.rcpt)):
            code, text = s.docmd(cmd)
            if code != 250:
                out.update(stage=stage, code=code, reply=text.decode("utf-8", "replace"))
                break
        else:
            code, text = s.data(msg)
            out.update(stage="done", code=code, reply=text.decode("utf-8", "replace"))
    except smtplib.SMTPDataError as e:
        out.update(stage="data", code=e.smtp_code,
                   reply=e.smtp_error.decode("utf-8", "replace"))
    except (smtplib.SMTPException, OSError) as e:
        out.update(stage="data", code=0, reply=str(e))
    try:
        s.quit()
    except (smtplib.SMTPException, OSError):
        pass
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
