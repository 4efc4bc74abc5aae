#!/usr/bin/env python3
"""The rtpengine side of the bridged-call benchmark (issue #12): a minimal SIP answerer that
puts every call through rtpengine, controlled by its ng protocol (bencode over UDP).

For each INVITE from the callers' sipp it sends rtpengine an `offer` with the caller's SDP,
then an `answer` with the agents' SDP (the sipp UAS echoing RTP at AGENT_MEDIA), and answers
the caller 200 OK with the SDP rtpengine gave back, so the caller's RTP goes
caller -> rtpengine -> agents' echo -> rtpengine -> caller, the same path as through Callguard.
ACK is ignored; BYE gets 200 OK and a `delete`. Only what sipp's caller.xml sends is handled.

  ngpeer.py SIP_PORT NG_ADDR AGENT_MEDIA        e.g. 5064 127.0.0.1:2223 127.0.0.1:8000
Prints "calls N answered, M deleted, E errors" on SIGTERM."""
import os
import signal
import socket
import sys


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in sorted(v.items())) + b"e"
    raise TypeError(type(v))


def bdecode(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l" or c == b"d":
        i, items = i + 1, []
        while b[i:i + 1] != b"e":
            x, i = bdecode(b, i)
            items.append(x)
        if c == b"l":
            return items, i + 1
        return {items[k].decode(): items[k + 1] for k in range(0, len(items), 2)}, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


class Ng:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.connect((host, int(port)))
        self.s.settimeout(5)
        self.n = 0

    def __call__(self, command, **kw):
        self.n += 1
        cookie = b"%d_%d" % (os.getpid(), self.n)
        kw["command"] = command
        self.s.send(cookie + b" " + bencode(kw))
        while True:
            data = self.s.recv(65536)
            got, rest = data.split(b" ", 1)
            if got == cookie:
                reply, _ = bdecode(rest)
                if reply.get("result") != b"ok":
                    raise RuntimeError(f"ng {command}: {reply}")
                return reply


def headers(msg):
    head, _, body = msg.partition("\r\n\r\n")
    lines = head.split("\r\n")
    return lines[0], lines[1:], body


def get(lines, name):
    for line in lines:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return ""


def response(lines, code, reason, to_tag=None, sdp=""):
    out = [f"SIP/2.0 {code} {reason}"]
    for line in lines:
        k = line.partition(":")[0].strip().lower()
        if k in ("via", "from", "call-id", "cseq"):
            out.append(line)
        elif k == "to":
            out.append(line + (f";tag={to_tag}" if to_tag and "tag=" not in line else ""))
    out.append("Contact: <sip:ngpeer@127.0.0.1>")
    if sdp:
        out.append("Content-Type: application/sdp")
    out.append(f"Content-Length: {len(sdp)}")
    return ("\r\n".join(out) + "\r\n\r\n" + sdp).encode()


def main():
    sip_port, ng_addr, agent_media = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    agent_ip, agent_port = agent_media.rsplit(":", 1)
    ng = Ng(ng_addr)
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sip.bind(("127.0.0.1", sip_port))
    counts = {"answered": 0, "deleted": 0, "errors": 0}
    answered = {}

    def report(*_):
        print(f"calls {counts['answered']} answered, {counts['deleted']} deleted, "
              f"{counts['errors']} errors", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, report)
    agent_sdp = (f"v=0\r\no=agent 1 1 IN IP4 {agent_ip}\r\ns=-\r\nc=IN IP4 {agent_ip}\r\nt=0 0\r\n"
                 f"m=audio {agent_port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
                 f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")
    while True:
        data, peer = sip.recvfrom(65536)
        first, lines, body = headers(data.decode(errors="replace"))
        method = first.split(" ", 1)[0]
        call_id = get(lines, "Call-ID")
        from_tag = get(lines, "From").partition("tag=")[2].split(";")[0]
        try:
            if method == "INVITE":
                if call_id not in answered:
                    to_tag = f"ng{len(answered)}"
                    ng("offer", **{"call-id": call_id, "from-tag": from_tag, "sdp": body})
                    got = ng("answer", **{"call-id": call_id, "from-tag": from_tag,
                                          "to-tag": to_tag, "sdp": agent_sdp})
                    answered[call_id] = (to_tag, got["sdp"].decode())
                    counts["answered"] += 1
                to_tag, sdp = answered[call_id]
                sip.sendto(response(lines, 200, "OK", to_tag, sdp), peer)
            elif method == "BYE":
                if call_id in answered:
                    ng("delete", **{"call-id": call_id, "from-tag": from_tag})
                    del answered[call_id]
                    counts["deleted"] += 1
                sip.sendto(response(lines, 200, "OK"), peer)
        except (RuntimeError, OSError, KeyError) as e:
            counts["errors"] += 1
            print(f"{method} {call_id}: {e}", file=sys.stderr, flush=True)
            if method in ("INVITE", "BYE"):
                sip.sendto(response(lines, 500, "Server Error"), peer)


if __name__ == "__main__":
    main()
