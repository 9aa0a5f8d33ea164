//! Packet decoding: link layer (Ethernet with VLAN tags, Linux cooked capture,
//! raw IP, loopback), IPv4/IPv6 (skipping extension headers) and the transport
//! ports. Whatever cannot be decoded stays `None`; no input makes this panic.

/// Link-layer header types (the `LINKTYPE_*` values of pcap files).
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// `DLT_RAW` as some systems number it in files.
    pub const RAW_12: u32 = 12;
    /// `DLT_RAW` on OpenBSD.
    pub const RAW_14: u32 = 14;
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`-i any` before libpcap 1.10).
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (`-i any` since libpcap 1.10).
    pub const LINUX_SLL2: u32 = 276;
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// What the decoder found in one packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Source and destination addresses (4 bytes for IPv4, 16 for IPv6).
    pub addrs: Option<(IpBytes, IpBytes)>,
    /// IP protocol number (after IPv6 extension headers).
    pub proto: Option<u8>,
    /// Source and destination port; for ICMP and ICMPv6 the type and code, as Zeek does.
    pub ports: Option<(u16, u16)>,
    /// Outer and inner 802.1Q VLAN ids.
    pub vlan_outer: Option<u16>,
    pub vlan_inner: Option<u16>,
    /// Bytes of transport payload (after the TCP/UDP/ICMP header), what the
    /// flow cutoff counts; for packets without a decoded transport header, the IP payload.
    pub payload_len: usize,
    /// Whether the packet is an IP fragment other than the first.
    pub fragment: bool,
}

/// An IPv4 or IPv6 address as bytes in network order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl IpBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            IpBytes::V4(a) => a,
            IpBytes::V6(a) => a,
        }
    }

    /// The v4-mapped 16-byte form the data model stores.
    pub fn to_address(self) -> crate::data::Address {
        match self {
            IpBytes::V4(a) => {
                let mut b = [0u8; 16];
                b[10] = 0xff;
                b[11] = 0xff;
                b[12..].copy_from_slice(&a);
                crate::data::Address(b)
            }
            IpBytes::V6(a) => crate::data::Address(a),
        }
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Decodes one captured frame of link type `linktype`.
pub fn decode(linktype: u32, frame: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    match linktype {
        linktype::ETHERNET => {
            if let Some(ethertype) = be16(frame, 12) {
                ethernet_payload(&mut d, ethertype, &frame[14.min(frame.len())..]);
            }
        }
        linktype::LINUX_SLL => {
            if let Some(proto) = be16(frame, 14) {
                ethernet_payload(&mut d, proto, &frame[16.min(frame.len())..]);
            }
        }
        linktype::LINUX_SLL2 => {
            if let Some(proto) = be16(frame, 0) {
                ethernet_payload(&mut d, proto, &frame[20.min(frame.len())..]);
            }
        }
        linktype::RAW | linktype::RAW_12 | linktype::RAW_14 => ip(&mut d, frame),
        linktype::IPV4 => ipv4(&mut d, frame),
        linktype::IPV6 => ipv6(&mut d, frame),
        linktype::NULL | linktype::LOOP if frame.len() >= 4 => {
            // The family is small, so the non-zero end tells the byte order; DLT_LOOP
            // is always big-endian, DLT_NULL is the capturing host's order.
            let family = if linktype == linktype::NULL && frame[0] != 0 {
                u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]])
            } else {
                u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]])
            };
            match family {
                2 => ipv4(&mut d, &frame[4..]),
                // AF_INET6 differs by OS: BSD 24, FreeBSD 28, Darwin 30, Linux 10.
                10 | 24 | 28 | 30 => ipv6(&mut d, &frame[4..]),
                _ => {}
            }
        }
        _ => {}
    }
    d
}

/// Follows VLAN tags (outer, inner, further ones skipped) to the IP header.
fn ethernet_payload(d: &mut Decoded, mut ethertype: u16, mut rest: &[u8]) {
    let mut tags = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        let (Some(tci), Some(next)) = (be16(rest, 0), be16(rest, 2)) else {
            return;
        };
        let id = tci & 0x0fff;
        match tags {
            0 => d.vlan_outer = Some(id),
            1 => d.vlan_inner = Some(id),
            _ => {}
        }
        tags += 1;
        ethertype = next;
        rest = &rest[4..];
    }
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(d, rest),
        ETHERTYPE_IPV6 => ipv6(d, rest),
        _ => {}
    }
}

fn ip(d: &mut Decoded, b: &[u8]) {
    match b.first().map(|v| v >> 4) {
        Some(4) => ipv4(d, b),
        Some(6) => ipv6(d, b),
        _ => {}
    }
}

fn ipv4(d: &mut Decoded, b: &[u8]) {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return;
    }
    let ihl = (b[0] & 0x0f) as usize * 4;
    d.addrs = Some((
        IpBytes::V4([b[12], b[13], b[14], b[15]]),
        IpBytes::V4([b[16], b[17], b[18], b[19]]),
    ));
    d.proto = Some(b[9]);
    if ihl < 20 || ihl > b.len() {
        return;
    }
    // The total length bounds the payload when the frame has Ethernet padding.
    let total = u16::from_be_bytes([b[2], b[3]]) as usize;
    let end = if total >= ihl && total <= b.len() {
        total
    } else {
        b.len()
    };
    let frag_offset = u16::from_be_bytes([b[6], b[7]]) & 0x1fff;
    if frag_offset != 0 {
        d.fragment = true;
        d.payload_len = end - ihl;
        return;
    }
    transport(d, b[9], &b[ihl..end]);
}

fn ipv6(d: &mut Decoded, b: &[u8]) {
    if b.len() < 40 || b[0] >> 4 != 6 {
        return;
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&b[8..24]);
    dst.copy_from_slice(&b[24..40]);
    d.addrs = Some((IpBytes::V6(src), IpBytes::V6(dst)));
    let plen = u16::from_be_bytes([b[4], b[5]]) as usize;
    let end = if plen > 0 && 40 + plen <= b.len() {
        40 + plen
    } else {
        b.len()
    };
    let mut next = b[6];
    let mut at = 40;
    // Extension headers; a bounded walk so crafted chains cannot loop long.
    for _ in 0..16 {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => match b.get(at + 1) {
                Some(l) => (*l as usize + 1) * 8,
                None => break,
            },
            // Fragment header: only the first fragment carries the transport header.
            44 => {
                let Some(off) = be16(b, at + 2) else { break };
                if off >> 3 != 0 {
                    d.proto = b.get(at).copied();
                    d.fragment = true;
                    d.payload_len = end.saturating_sub(at + 8);
                    return;
                }
                8
            }
            // Authentication header: length in 4-byte units, minus 2.
            51 => match b.get(at + 1) {
                Some(l) => (*l as usize + 2) * 4,
                None => break,
            },
            _ => break,
        };
        let Some(&n) = b.get(at) else { break };
        next = n;
        at += len;
        if at > end {
            // The chain runs past the capture: protocol unknown.
            d.proto = None;
            return;
        }
    }
    d.proto = Some(next);
    if at <= end {
        transport(d, next, &b[at..end]);
    }
}

fn transport(d: &mut Decoded, proto: u8, b: &[u8]) {
    d.proto = Some(proto);
    let header = match proto {
        6 => {
            let off = b.get(12).map(|x| (x >> 4) as usize * 4).unwrap_or(20);
            off.max(20)
        }
        17 => 8,
        132 => 12,
        1 | 58 => 8,
        _ => 0,
    };
    match proto {
        6 | 17 | 132 => {
            if let (Some(s), Some(t)) = (be16(b, 0), be16(b, 2)) {
                d.ports = Some((s, t));
            }
        }
        1 | 58 if b.len() >= 2 => d.ports = Some((b[0] as u16, b[1] as u16)),
        _ => {}
    }
    d.payload_len = b.len().saturating_sub(header);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An IPv4 header (no options) carrying `l4` with protocol `proto`.
    pub fn ipv4_packet(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let total = (20 + l4.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        p
    }

    /// A UDP header plus payload.
    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// A 20-byte TCP header plus payload.
    pub fn tcp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// An Ethernet frame with the given VLAN ids (outermost first) and ethertype.
    pub fn ether(vlans: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for &(tpid, id) in vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv6_packet(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        let mut src = [0u8; 16];
        src[0] = 0x20;
        src[1] = 0x01;
        src[15] = 1;
        let mut dst = src;
        dst[15] = 2;
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(rest);
        p
    }

    fn v4() -> Vec<u8> {
        ipv4_packet([10, 0, 0, 1], [10, 0, 0, 2], 17, &udp(1234, 53, b"hello"))
    }

    fn expect_udp(d: &Decoded) {
        assert_eq!(
            d.addrs,
            Some((IpBytes::V4([10, 0, 0, 1]), IpBytes::V4([10, 0, 0, 2])))
        );
        assert_eq!(d.proto, Some(17));
        assert_eq!(d.ports, Some((1234, 53)));
        assert_eq!(d.payload_len, 5);
    }

    #[test]
    fn every_link_type() {
        let ip = v4();
        let eth = ether(&[], ETHERTYPE_IPV4, &ip);
        expect_udp(&decode(linktype::ETHERNET, &eth));

        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        sll.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        sll.extend_from_slice(&ip);
        expect_udp(&decode(linktype::LINUX_SLL, &sll));

        let mut sll2 = ETHERTYPE_IPV4.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        sll2.extend_from_slice(&ip);
        expect_udp(&decode(linktype::LINUX_SLL2, &sll2));

        for lt in [
            linktype::RAW,
            linktype::RAW_12,
            linktype::RAW_14,
            linktype::IPV4,
        ] {
            expect_udp(&decode(lt, &ip));
        }

        let mut null_le = vec![2, 0, 0, 0];
        null_le.extend_from_slice(&ip);
        expect_udp(&decode(linktype::NULL, &null_le));
        let mut null_be = vec![0, 0, 0, 2];
        null_be.extend_from_slice(&ip);
        expect_udp(&decode(linktype::NULL, &null_be));
        expect_udp(&decode(linktype::LOOP, &null_be));

        let v6 = ipv6_packet(6, &tcp(5, 80, b"xy"));
        let mut null6 = vec![30, 0, 0, 0];
        null6.extend_from_slice(&v6);
        let d = decode(linktype::NULL, &null6);
        assert_eq!((d.proto, d.ports), (Some(6), Some((5, 80))));
        let d = decode(linktype::RAW, &v6);
        assert_eq!(
            (d.proto, d.ports, d.payload_len),
            (Some(6), Some((5, 80)), 2)
        );

        assert_eq!(decode(9999, &eth), Decoded::default());
        assert_eq!(
            decode(linktype::LOOP, &[0, 0, 0, 99, 1, 2]),
            Decoded::default()
        );
    }

    #[test]
    fn vlan_and_qinq() {
        let ip = v4();
        let d = decode(
            linktype::ETHERNET,
            &ether(&[(ETHERTYPE_VLAN, 0x2064)], ETHERTYPE_IPV4, &ip),
        );
        expect_udp(&d);
        // The priority bits are not part of the id.
        assert_eq!((d.vlan_outer, d.vlan_inner), (Some(0x064), None));
        let d = decode(
            linktype::ETHERNET,
            &ether(
                &[(ETHERTYPE_QINQ, 100), (ETHERTYPE_VLAN, 200)],
                ETHERTYPE_IPV4,
                &ip,
            ),
        );
        expect_udp(&d);
        assert_eq!((d.vlan_outer, d.vlan_inner), (Some(100), Some(200)));
        let d = decode(
            linktype::ETHERNET,
            &ether(
                &[
                    (ETHERTYPE_QINQ_OLD, 1),
                    (ETHERTYPE_VLAN, 2),
                    (ETHERTYPE_VLAN, 3),
                ],
                ETHERTYPE_IPV4,
                &ip,
            ),
        );
        expect_udp(&d);
        assert_eq!((d.vlan_outer, d.vlan_inner), (Some(1), Some(2)));
        // A tag cut short leaves only what was read.
        let d = decode(linktype::ETHERNET, &ether(&[], ETHERTYPE_VLAN, &[0, 5]));
        assert_eq!(d, Decoded::default());
    }

    #[test]
    fn ipv6_extension_headers() {
        // Hop-by-hop (8 bytes) -> destination options (16 bytes) -> AH (12 bytes) -> UDP.
        let mut ext = vec![60, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&[51, 1]);
        ext.extend_from_slice(&[0; 14]);
        ext.extend_from_slice(&[17, 1, 0, 0]);
        ext.extend_from_slice(&[0; 8]);
        ext.extend_from_slice(&udp(546, 547, b"dhcp"));
        let d = decode(linktype::RAW, &ipv6_packet(0, &ext));
        assert_eq!(d.proto, Some(17));
        assert_eq!(d.ports, Some((546, 547)));
        assert_eq!(d.payload_len, 4);
        // ICMPv6 neighbor solicitation: type and code as ports.
        let d = decode(linktype::RAW, &ipv6_packet(58, &[135, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!((d.proto, d.ports), (Some(58), Some((135, 0))));
        // A chain that runs past the capture.
        let d = decode(linktype::RAW, &ipv6_packet(0, &[17, 200, 0, 0]));
        assert!(d.addrs.is_some());
        assert_eq!((d.proto, d.ports), (None, None));
    }

    #[test]
    fn fragments_keep_addresses_only() {
        // IPv4: a later fragment has no transport header.
        let mut p = v4();
        p[6] = 0x00;
        p[7] = 0x10;
        let d = decode(linktype::RAW, &p);
        assert!(d.fragment);
        assert_eq!(d.proto, Some(17));
        assert_eq!(d.ports, None);
        assert!(d.addrs.is_some());
        // The first fragment (MF set, offset 0) does.
        let mut p = v4();
        p[6] = 0x20;
        expect_udp(&decode(linktype::RAW, &p));
        // IPv6 fragment header with a non-zero offset.
        let mut frag = vec![17, 0, 0, 0x08, 0, 0, 0, 1];
        frag.extend_from_slice(&[0xab; 16]);
        let d = decode(linktype::RAW, &ipv6_packet(44, &frag));
        assert!(d.fragment);
        assert_eq!((d.proto, d.ports), (Some(17), None));
        // Offset zero: the UDP header follows.
        let mut frag = vec![17, 0, 0, 0x01, 0, 0, 0, 1];
        frag.extend_from_slice(&udp(1, 2, b""));
        let d = decode(linktype::RAW, &ipv6_packet(44, &frag));
        assert_eq!((d.proto, d.ports), (Some(17), Some((1, 2))));
    }

    #[test]
    fn truncated_packets_decode_what_is_there() {
        let frame = ether(&[], ETHERTYPE_IPV4, &v4());
        for n in 0..frame.len() {
            let d = decode(linktype::ETHERNET, &frame[..n]);
            if n < 34 {
                assert_eq!(d.addrs, None, "{n} bytes");
            } else {
                assert!(d.addrs.is_some(), "{n} bytes");
            }
            assert_eq!(d.ports.is_some(), n >= 38, "{n} bytes");
        }
        // A header length beyond the frame.
        let mut p = v4();
        p[0] = 0x4f;
        let d = decode(linktype::RAW, &p[..30]);
        assert!(d.addrs.is_some());
        assert_eq!(d.ports, None);
    }
}
