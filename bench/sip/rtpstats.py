#!/usr/bin/env python3
"""Reads a tcpdump capture of lo (Ethernet framing, -s 60 is enough) and reports, per RTP
stream (source port, destination port, SSRC): packets, lost (sequence numbers never seen
between the first and the last), reordered (arrived after a later one), duplicated; and the
packets that arrived within a time window.

  rtpstats.py CAPTURE.pcap T0 T1 [DST_PORT...]   T0, T1: Unix times of the window
Prints one JSON object: streams, packets, in_window, lost, reordered, duplicated, worst streams."""
import json
import struct
import sys


def main():
    path, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    ports = {int(p) for p in sys.argv[4:]}
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    nano = magic == 0xA1B23C4D
    link = struct.unpack("<I", data[20:24])[0]
    l2 = {1: 14, 113: 16, 0: 4}.get(link, 14)
    streams, at, in_window, total = {}, 24, 0, 0
    while at + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack("<IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + caplen]
        at += 16 + caplen
        t = sec + frac / (1e9 if nano else 1e6)
        if len(frame) < l2 + 20 + 8 + 12 or frame[l2 + 9] != 17:
            continue
        ihl = (frame[l2] & 0x0F) * 4
        udp = frame[l2 + ihl:]
        sport, dport = struct.unpack("!HH", udp[:4])
        rtp = udp[8:]
        if (ports and dport not in ports) or len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        seq, ssrc = struct.unpack("!H", rtp[2:4])[0], struct.unpack("!I", rtp[8:12])[0]
        total += 1
        if t0 <= t <= t1:
            in_window += 1
        s = streams.setdefault((sport, dport, ssrc), {"n": 0, "seen": set(), "top": None,
                                                       "base": None, "reord": 0, "dup": 0})
        s["n"] += 1
        if s["top"] is None:
            ext = seq
            s["base"] = ext
        else:
            # extend the 16-bit number to the one nearest the highest seen
            top = s["top"]
            ext = top + ((seq - top) & 0xFFFF)
            if ext - top >= 0x8000:
                ext -= 0x10000
        if ext in s["seen"]:
            s["dup"] += 1
            continue
        s["seen"].add(ext)
        if s["top"] is not None and ext < s["top"]:
            s["reord"] += 1
        s["top"] = ext if s["top"] is None else max(s["top"], ext)
        s["base"] = min(s["base"], ext)
    lost = reord = dup = 0
    worst = []
    for key, s in streams.items():
        expected = s["top"] - s["base"] + 1
        lo = expected - len(s["seen"])
        lost, reord, dup = lost + lo, reord + s["reord"], dup + s["dup"]
        if lo or s["reord"]:
            worst.append({"stream": f"{key[0]}->{key[1]} ssrc {key[2]:08x}", "packets": s["n"],
                          "lost": lo, "reordered": s["reord"]})
    worst.sort(key=lambda w: -(w["lost"] + w["reordered"]))
    print(json.dumps({"streams": len(streams), "packets": total, "in_window": in_window,
                      "lost": lost, "reordered": reord, "duplicated": dup, "worst": worst[:5]}))


if __name__ == "__main__":
    main()
