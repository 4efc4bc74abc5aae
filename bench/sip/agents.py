#!/usr/bin/env python3
"""Agents for the bridged-call benchmark (issue #12), made through the server's own API as a
real admin and real agents would, against a running `callguard serve`:

  agents.py setup DATA_DIR BIN N OUT.csv   one admin (`callguard user add --role admin`, set up
      with password + TOTP), then N agents: POST /api/v1/users, first-time setup (password,
      TOTP), POST /api/v1/me/sip-credentials (the session is fresh, so no re-authentication),
      PUT /api/v1/agents/me/state ready. Writes sipp's -inf file (SEQUENTIAL; username;password).
  agents.py register SIP_HOST:PORT CONTACT_HOST:PORT AGENTS.csv   each agent's softphone
      registers (REGISTER, 401 challenge, REGISTER with an MD5 digest answer, qop=auth; Expires
      3600) with the Contact sip:USER@CONTACT_HOST:PORT, one after the other from one UDP socket.
  agents.py metric DATA_DIR NAME            prints the value of one line of /metrics, e.g.
      'callguard_sip_registrations' or 'callguard_agents{state="on_call"}'
Everything goes over HTTPS to data/run/address, trusting only data/tls/cert.pem."""
import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import ssl
import struct
import subprocess
import sys
import threading
import time


class Http:
    def __init__(self, data_dir):
        addr = open(os.path.join(data_dir, "run", "address")).read().strip()
        self.port = int(addr.rsplit(":", 1)[1])
        self.ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "tls", "cert.pem"))
        self.local = threading.local()

    def call(self, method, path, body=None, token=None, want=200):
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPSConnection("localhost", self.port, context=self.ctx, timeout=60)
                self.local.conn = conn
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                conn.request(method, path, body=json.dumps(body) if body is not None else None,
                             headers=headers)
                r = conn.getresponse()
                text = r.read().decode()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                continue
            if r.status != want:
                raise RuntimeError(f"{method} {path}: {r.status} {text[:300]}")
            return json.loads(text) if text.startswith("{") else text
        raise RuntimeError("unreachable")


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def set_up(h, setup_token, password):
    started = h.call("POST", "/api/v1/auth/setup", {"token": setup_token, "password": password})
    step = int(time.time() // 30)
    code = totp(started["totp_secret"], step)
    confirmed = h.call("POST", "/api/v1/auth/setup/confirm",
                       {"challenge": started["challenge"], "code": code})
    return confirmed["token"]


def setup(data_dir, binary, n, out):
    h = Http(data_dir)
    env = {"PATH": os.environ["PATH"], "CALLGUARD_DATA_DIR": data_dir}
    made = subprocess.run([binary, "user", "add", "benchadmin", "--role", "admin"], env=env,
                          capture_output=True, text=True, check=True)
    admin = set_up(h, made.stdout.strip().split()[-1], "bench admin password 7f3a9c2e for sipp load")

    def agent(i):
        name = f"agent{i:04d}"
        created = h.call("POST", "/api/v1/users", {"username": name, "role": "agent"}, admin, 201)
        token = set_up(h, created["setup_token"], f"bench agent {i:04d} password 9b1d44e0 for sipp")
        sip = h.call("POST", "/api/v1/me/sip-credentials", {}, token)
        h.call("PUT", "/api/v1/agents/me/state", {"state": "ready"}, token)
        return sip["sip_username"], sip["password"]

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        creds = list(pool.map(agent, range(1, n + 1)))
    with open(out, "w") as f:
        f.write("SEQUENTIAL\n")
        for user, password in creds:
            f.write(f"{user};{password}\n")
    print(f"{n} agents set up, SIP credentials issued, ready, in {time.time() - t0:.1f} s")


def metric(data_dir, name):
    text = Http(data_dir).call("GET", "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            print(line.split()[-1])
            return
    print(0)


def register(sip_addr, contact, csv):
    import random
    import re
    import socket
    host, port = sip_addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    local = "127.0.0.1:%d" % s.getsockname()[1]
    creds = [line.strip().split(";") for line in open(csv) if ";" in line]

    def exchange(user, cseq, auth):
        msg = (f"REGISTER sip:{host}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {local};branch=z9hG4bK-{user}-{cseq}\r\n"
               f"From: <sip:{user}@{host}>;tag=r{user}\r\nTo: <sip:{user}@{host}>\r\n"
               f"Call-ID: reg-{user}@{local}\r\nCSeq: {cseq} REGISTER\r\n"
               f"Contact: <sip:{user}@{contact}>\r\nExpires: 3600\r\nMax-Forwards: 70\r\n"
               f"{auth}Content-Length: 0\r\n\r\n")
        s.sendto(msg.encode(), (host, int(port)))
        while True:
            data = s.recv(65536).decode(errors="replace")
            if f"branch=z9hG4bK-{user}-{cseq}" in data and not data.startswith("SIP/2.0 100"):
                return data

    t0, ok = time.time(), 0
    for user, password in creds:
        got = exchange(user, 1, "")
        m = re.search(r'WWW-Authenticate:\s*Digest\s+(.*)', got, re.I)
        if not got.startswith("SIP/2.0 401") or not m:
            raise RuntimeError(f"{user}: expected a challenge, got {got[:200]}")
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', m.group(1)))
        uri, cnonce = f"sip:{host}:{port}", "%016x" % random.getrandbits(64)
        md5 = lambda t: hashlib.md5(t.encode()).hexdigest()
        ha1, ha2 = md5(f"{user}:{params['realm']}:{password}"), md5(f"REGISTER:{uri}")
        resp = md5(f"{ha1}:{params['nonce']}:00000001:{cnonce}:auth:{ha2}")
        auth = (f'Authorization: Digest username="{user}", realm="{params["realm"]}", '
                f'nonce="{params["nonce"]}", uri="{uri}", response="{resp}", algorithm=MD5, '
                f'qop=auth, nc=00000001, cnonce="{cnonce}"\r\n')
        got = exchange(user, 2, auth)
        if not got.startswith("SIP/2.0 200"):
            raise RuntimeError(f"{user}: registration refused: {got[:200]}")
        ok += 1
    print(f"{ok} softphones registered in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif sys.argv[1] == "register":
        register(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        metric(sys.argv[2], sys.argv[3])
