//! Community ID v1 flow hashing (<https://github.com/corelight/community-id-spec>):
//! SHA-1 over seed, ordered addresses, protocol and ports, rendered as base64.

use crate::data::value::push_base64;

/// IP protocol numbers the algorithm treats specially.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMP6: u8 = 58;
pub const SCTP: u8 = 132;

/// ICMP types that pair up into request/response "flows" (Zeek's mapping).
fn icmp_counterpart(proto: u8, ty: u8) -> Option<u8> {
    let pairs: &[(u8, u8)] = if proto == ICMP {
        &[(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)]
    } else {
        &[
            (128, 129),
            (130, 131),
            (133, 134),
            (135, 136),
            (139, 140),
            (144, 145),
        ]
    };
    pairs.iter().find_map(|&(a, b)| {
        if a == ty {
            Some(b)
        } else if b == ty {
            Some(a)
        } else {
            None
        }
    })
}

/// Appends `1:<base64 of SHA-1>` for the flow to `out`. Addresses are 4 or 16 bytes
/// in network order (both the same length); `ports` are (source, destination), or
/// ICMP (type, code), or `None` when the transport header is missing (fragments,
/// truncated packets, protocols without ports).
pub fn community_id_v1(
    out: &mut Vec<u8>,
    seed: u16,
    src: &[u8],
    dst: &[u8],
    proto: u8,
    ports: Option<(u16, u16)>,
) {
    let mut ports = ports.filter(|_| matches!(proto, TCP | UDP | SCTP | ICMP | ICMP6));
    let mut one_way = false;
    if let Some((ty, code)) = ports.filter(|_| matches!(proto, ICMP | ICMP6)) {
        // ICMP types and codes are bytes; larger "ports" cannot be ICMP.
        match icmp_counterpart(proto, ty as u8) {
            Some(other) => ports = Some((ty, other as u16)),
            None => {
                ports = Some((ty, code));
                one_way = true;
            }
        }
    }
    let (sp, dp) = ports.unwrap_or((0, 0));
    let ordered = one_way || src < dst || (src == dst && ports.is_some() && sp < dp);
    let (a, b, pa, pb) = if ordered {
        (src, dst, sp, dp)
    } else {
        (dst, src, dp, sp)
    };
    let mut input = [0u8; 2 + 16 + 16 + 2 + 4];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        input[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(&seed.to_be_bytes());
    put(a);
    put(b);
    put(&[proto, 0]);
    if ports.is_some() {
        put(&pa.to_be_bytes());
        put(&pb.to_be_bytes());
    }
    let digest = sha1(&input[..n]);
    out.extend_from_slice(b"1:");
    push_base64(out, &digest);
}

/// SHA-1 of a short message. The flow tuple is at most 40 bytes, so this is one or
/// two compressions; a crate would add a dependency for ~40 lines.
pub fn sha1(msg: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let bit_len = (msg.len() as u64).wrapping_mul(8);
    let mut tail = [0u8; 128];
    let full = msg.len() / 64 * 64;
    for block in msg[..full].chunks_exact(64) {
        compress(&mut h, block);
    }
    let rest = &msg[full..];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let tail_len = if rest.len() + 9 <= 64 { 64 } else { 128 };
    tail[tail_len - 8..tail_len].copy_from_slice(&bit_len.to_be_bytes());
    for block in tail[..tail_len].chunks_exact(64) {
        compress(&mut h, block);
    }
    let mut out = [0u8; 20];
    for (o, w) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

fn compress(h: &mut [u32; 5], block: &[u8]) {
    let mut w = [0u32; 80];
    for (i, c) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for (i, wi) in w.iter().enumerate() {
        let (f, k) = match i {
            0..=19 => ((b & c) | (!b & d), 0x5A827999),
            20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
            _ => (b ^ c ^ d, 0xCA62C1D6),
        };
        let t = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(*wi);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
        *x = x.wrapping_add(y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha1_known_answers() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 1000])),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
    }

    fn id(src: &str, dst: &str, proto: u8, ports: Option<(u16, u16)>) -> String {
        let octets = |s: &str| match s.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mut out = Vec::new();
        community_id_v1(&mut out, 0, &octets(src), &octets(dst), proto, ports);
        String::from_utf8(out).unwrap()
    }

    /// The published vectors of the spec's README (seed 0, base64), in both
    /// directions: a flow and its reply share one id.
    #[test]
    fn spec_vectors() {
        let cases = [
            (
                "128.232.110.120",
                "66.35.250.204",
                TCP,
                Some((34855, 80)),
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                "192.168.1.52",
                "8.8.8.8",
                UDP,
                Some((54585, 53)),
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
            (
                "192.168.0.89",
                "192.168.0.1",
                ICMP,
                Some((8, 0)),
                "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=",
            ),
            (
                "fe80::200:86ff:fe05:80da",
                "fe80::260:97ff:fe07:69ea",
                ICMP6,
                Some((135, 0)),
                "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            ),
            (
                "192.168.170.8",
                "192.168.170.56",
                SCTP,
                Some((7, 80)),
                "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=",
            ),
            (
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                "2607:f8b0:400c:c03::1a",
                TCP,
                Some((63943, 25)),
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
        ];
        for (s, d, p, ports, want) in cases {
            assert_eq!(id(s, d, p, ports), want, "{s} -> {d}");
            let back = ports.map(|(a, b)| (b, a));
            if !matches!(p, ICMP | ICMP6) {
                assert_eq!(id(d, s, p, back), want, "{d} -> {s}");
            }
        }
        // Without ports (GRE here), only addresses and protocol count; the value
        // comes from the `communityid` Python package.
        assert_eq!(
            id("10.0.0.1", "10.0.0.2", 47, None),
            "1:+KlEHDT0vJgzs/eNmzHq0aSpRYw="
        );
        // An echo reply pairs with its request.
        assert_eq!(
            id("192.168.0.1", "192.168.0.89", ICMP, Some((0, 0))),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
        );
    }
}
