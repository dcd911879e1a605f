#!/usr/bin/python3
"""A real SMTP server for xenraid's alert tests: aiosmtpd (Debian's python3-aiosmtpd).

Saves each accepted message as OUT/<n>.eml, with OUT/<n>.json holding the envelope and the
receive time (Unix seconds, float), and prints "READY <port>" once it listens.
Modes: plain, starttls (STARTTLS required), tls (implicit TLS). --user/--password require AUTH.
Runs until its stdin closes or it is killed.
"""
import argparse
import json
import logging
import os
import ssl
import sys
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, out):
        self.out = out
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        received = time.time()
        with self.lock:
            self.n += 1
            n = self.n
        base = os.path.join(self.out, str(n))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "received": received,
                       "tls": server.transport.get_extra_info("ssl_object") is not None,
                       "auth": session.authenticated}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        os.rename(base + ".json.tmp", base + ".json")
        return "250 OK saved"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    # The server's own log (a refused handshake is a traceback by design in the tests that
    # expect one) goes to OUT/server.log, not into the test run's output where it reads
    # like a failure.
    logging.basicConfig(filename=os.path.join(a.out, "server.log"), level=logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    ctx = None
    if a.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    kwargs = {}
    if a.user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login.decode() == a.user
                  and auth_data.password.decode() == a.password)
            return AuthResult(success=ok, handled=False)
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=a.mode != "plain")
    if a.mode == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    elif a.mode == "tls":
        kwargs.update(ssl_context=ctx)
    port = a.port
    if port == 0:
        import socket
        s = socket.socket()
        s.bind((a.host, 0))
        port = s.getsockname()[1]
        s.close()
    controller = Controller(Saver(a.out), hostname=a.host, port=port,
                            server_hostname="localhost", **kwargs)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    controller.stop()


if __name__ == "__main__":
    main()
