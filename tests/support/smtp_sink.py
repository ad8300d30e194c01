#!/usr/bin/python3
"""SMTP sinks for the outbound end-to-end tests: "remote" mail servers on
127.0.0.x, one per behaviour, all on the same port (sesame dials one
delivery port). Each received message is written to OUTDIR as
N.eml with a first line "X-Sink-Envelope: MAIL FROM RCPT,... IP" .

  smtp_sink.py PORT OUTDIR IP=BEHAVIOUR [IP=BEHAVIOUR ...]

BEHAVIOUR: accept | tempfail-once (451 to the first DATA of each
recipient, then accept) | reject (550 5.1.1 at RCPT) | tempfail (always
451 at RCPT) | tls (offers STARTTLS with $SINK_CERT/$SINK_KEY and records
"tls" in the envelope line) | tls-broken (offers STARTTLS, says 220, then
answers the handshake with garbage; accepts mail in the clear). Prints
"ready" when listening. Runs until killed.
"""
import os, socket, ssl, sys, threading

port, outdir = int(sys.argv[1]), sys.argv[2]
behaviours = dict(a.split("=", 1) for a in sys.argv[3:])
lock = threading.Lock()
counter = [0]
seen = set()


def serve(conn, ip, beh):
    f = conn.makefile("rb")
    state = {"conn": conn, "tls": False}
    def send(s):
        state["conn"].sendall(s.encode() + b"\r\n")
    send(f"220 sink-{ip} ESMTP")
    mail, rcpts = None, []
    try:
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            up = cmd.upper()
            if up.startswith("EHLO"):
                tls_offer = "250-STARTTLS\r\n" if beh in ("tls", "tls-broken") and not state["tls"] else ""
                send(f"250-sink-{ip}\r\n{tls_offer}250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10000000\r\n250 ENHANCEDSTATUSCODES")
            elif up == "STARTTLS" and beh in ("tls", "tls-broken"):
                send("220 2.0.0 Ready to start TLS")
                if beh == "tls-broken":
                    conn.sendall(b"this is not a TLS record\r\n" * 4)
                    return
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(os.environ["SINK_CERT"], os.environ["SINK_KEY"])
                tconn = ctx.wrap_socket(conn, server_side=True)
                state["conn"], state["tls"] = tconn, True
                f = tconn.makefile("rb")
                mail, rcpts = None, []
            elif up.startswith("HELO"):
                send(f"250 sink-{ip}")
            elif up.startswith("MAIL FROM:"):
                mail, rcpts = cmd[10:].strip(), []
                send("250 2.1.0 Ok")
            elif up.startswith("RCPT TO:"):
                r = cmd[8:].strip()
                if beh == "reject":
                    send("550 5.1.1 No such user here")
                elif beh == "tempfail":
                    send("451 4.3.0 Try again later")
                else:
                    rcpts.append(r)
                    send("250 2.1.5 Ok")
            elif up == "DATA":
                if not rcpts:
                    send("554 5.5.1 No valid recipients")
                    continue
                send("354 go ahead")
                data = b""
                while True:
                    l = f.readline()
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    data += l
                key = ",".join(rcpts)
                if beh == "tempfail-once":
                    with lock:
                        first = key not in seen
                        seen.add(key)
                    if first:
                        send("451 4.7.1 Greylisted, try again")
                        continue
                with lock:
                    counter[0] += 1
                    n = counter[0]
                    path = os.path.join(outdir, f"{n}.eml")
                    with open(path + ".tmp", "wb") as out:
                        out.write(f"X-Sink-Envelope: {mail} {key} {ip}{' tls' if state['tls'] else ''}\r\n".encode() + data)
                    os.rename(path + ".tmp", path)
                send(f"250 2.0.0 Ok: queued as SINK{n}")
            elif up == "RSET":
                mail, rcpts = None, []
                send("250 2.0.0 Ok")
            elif up == "NOOP":
                send("250 2.0.0 Ok")
            elif up == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 Command not recognized")
    except OSError:
        pass
    finally:
        state["conn"].close()


def listen(ip, beh):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, ip, beh), daemon=True).start()


for ip, beh in behaviours.items():
    threading.Thread(target=listen, args=(ip, beh), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
