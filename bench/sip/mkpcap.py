#!/usr/bin/env python3
"""Writes the caller's RTP for the bridged-call benchmark (issue #12) as a pcap for sipp's
play_pcap_audio: PCMA 20 ms frames of a quiet 440 Hz tone, RFC 4733 keys on PT 101 (160 ms each,
the final packet three times, 20 ms apart), one SSRC and sequence space. sipp replaces addresses and ports.

  mkpcap.py OUT.pcap PART...    PART is a number of milliseconds of audio or k:KEYS (keys, each
                                followed by 300 ms of audio), e.g. 5000 k:1 1000 'k:#' 30000
Prints the pcap's length in milliseconds."""
import math
import struct
import sys


def alaw(v):
    """ITU-T G.711 A-law of a 16-bit linear sample."""
    sign = 0x80 if v >= 0 else 0
    if v < 0:
        v = -v - 1 if v > -32768 else 32767
    v >>= 3  # 13-bit magnitude
    if v < 32:
        code = v >> 1
    else:
        seg = v.bit_length() - 5
        code = (seg << 4) | ((v >> seg) & 0x0F)
    return (sign | code) ^ 0x55


def main():
    out, parts = sys.argv[1], sys.argv[2:]
    packets, t_us = [], 0
    seq, ts, ssrc, phase = 1000, 5000, 0x12345678, 0.0

    def rtp(pt, payload, marker=False, rts=None):
        nonlocal seq
        head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                           (ts if rts is None else rts) & 0xFFFFFFFF, ssrc)
        seq += 1
        return head + payload

    def audio(ms):
        nonlocal t_us, ts, phase
        for _ in range(ms // 20):
            frame = bytearray()
            for _ in range(160):
                phase += 2 * math.pi * 440 / 8000
                frame.append(alaw(int(math.sin(phase) * 3000)))
            packets.append((t_us, rtp(8, bytes(frame))))
            ts += 160
            t_us += 20_000

    for part in parts:
        if part.startswith("k:"):
            for key in part[2:]:
                ev = "0123456789*#ABCD".index(key)
                for k in range(1, 9):
                    packets.append((t_us, rtp(101, struct.pack("!BBH", ev, 10, k * 160), k == 1, ts)))
                    t_us += 20_000
                for _ in range(3):  # the end packet three times, 20 ms apart
                    packets.append((t_us, rtp(101, struct.pack("!BBH", ev, 0x80 | 10, 1280), False, ts)))
                    t_us += 20_000
                ts += 1280
                audio(300)
        else:
            audio(int(part))
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, payload in packets:
            udp = struct.pack("!HHHH", 20000, 30000, 8 + len(payload), 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
            frame = b"\0" * 12 + b"\x08\x00" + ip
            f.write(struct.pack("<IIII", 1_000_000 + t // 1_000_000, t % 1_000_000, len(frame), len(frame)))
            f.write(frame)
    print(t_us // 1000)


if __name__ == "__main__":
    main()
