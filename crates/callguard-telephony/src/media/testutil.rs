//! Test helpers: a tiny pcap reader for the captures the tests replay.

/// One captured UDP datagram: capture time in microseconds, destination port, payload.
pub struct Datagram {
    pub time_us: u64,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

/// The UDP datagrams of a classic pcap file (Ethernet or Linux cooked, IPv4).
pub fn read_pcap(path: &str) -> Vec<Datagram> {
    let d = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let le = match &d[..4] {
        [0xD4, 0xC3, 0xB2, 0xA1] => true,
        [0xA1, 0xB2, 0xC3, 0xD4] => false,
        _ => panic!("{path}: not a classic pcap file"),
    };
    let u32_at = |o: usize| {
        let b = [d[o], d[o + 1], d[o + 2], d[o + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let link = u32_at(20);
    let link_len = match link {
        1 => 14,
        113 => 16,
        other => panic!("{path}: link type {other} not handled"),
    };
    let mut out = Vec::new();
    let mut o = 24;
    while o + 16 <= d.len() {
        let time_us = u64::from(u32_at(o)) * 1_000_000 + u64::from(u32_at(o + 4));
        let len = u32_at(o + 8) as usize;
        let frame = &d[o + 16..o + 16 + len];
        o += 16 + len;
        let ip = &frame[link_len..];
        if ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let udp = &ip[usize::from(ip[0] & 0x0F) * 4..];
        let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        out.push(Datagram {
            time_us,
            dst_port,
            payload: udp[8..udp_len].to_vec(),
        });
    }
    out
}
