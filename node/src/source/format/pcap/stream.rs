//! A pcap and pcapng stream parser over any `BufRead`: libpcap only reads from a
//! `FILE*`, and stdin (possibly gunzipped) is a Rust stream. Several files may be
//! concatenated; a file header in the middle starts the next file.

use std::io::{self, BufRead, Read};

/// pcap magic numbers as they read in little-endian order.
const MAGIC_MICRO: u32 = 0xa1b2c3d4;
const MAGIC_NANO: u32 = 0xa1b23c4d;
/// The pcapng section header block type (a palindrome, same in both orders).
const PCAPNG_SHB: u32 = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b3c4d;

/// No sane record is larger; libpcap's own limit is 256 KiB for most link types.
/// A larger length means the stream is corrupt and record boundaries are lost.
pub const MAX_RECORD: u32 = 16 << 20;

/// One packet as read from the stream; `data` is valid until the next call.
#[derive(Debug)]
pub struct RawPacket<'a> {
    /// Nanoseconds since the epoch.
    pub time: i64,
    /// The link type of the interface (file) the packet came from.
    pub linktype: u32,
    /// Captured bytes.
    pub data: &'a [u8],
    /// Length on the wire (may exceed `data.len()` when the capture was truncated).
    pub orig_len: u32,
}

/// Why the stream cannot be read further.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The first bytes are not a pcap or pcapng header.
    #[error("input is not a pcap or pcapng stream: bad magic 0x{0:08x}")]
    BadMagic(u32),
    /// A length field that cannot be right: record boundaries are lost.
    #[error("corrupt {what} at byte {offset}: {detail}")]
    Corrupt {
        what: &'static str,
        offset: u64,
        detail: String,
    },
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

#[derive(Clone, Copy, Debug)]
struct PcapFile {
    swapped: bool,
    nanos: bool,
    linktype: u32,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second as a power: (base 10 or 2, exponent).
    ts_units: (bool, u8),
}

#[derive(Debug)]
enum State {
    /// Before the first header, or right after a file ended.
    Start,
    Pcap(PcapFile),
    Pcapng {
        swapped: bool,
        ifaces: Vec<Interface>,
    },
}

/// Reads packets from concatenated pcap and pcapng files.
pub struct PcapStream<R> {
    input: R,
    state: State,
    buf: Vec<u8>,
    offset: u64,
    /// Records dropped because they were truncated at the end of the input or
    /// referred to an unknown interface.
    pub skipped: u64,
    /// Files (headers) seen so far.
    pub files: u64,
}

/// What one pcapng block turned out to be.
enum Block {
    /// A packet: (time, link type, original length, data range in `buf`).
    Packet(i64, u32, u32, usize, usize),
    /// A header, interface description, statistics or unknown block.
    Other,
    End,
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn pad4(b: &[u8]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out[..b.len().min(4)].copy_from_slice(&b[..b.len().min(4)]);
    out
}

/// Whether the first four bytes (read little-endian) start a pcap or pcapng file.
fn is_magic(m: u32) -> bool {
    matches!(m, MAGIC_MICRO | MAGIC_NANO | PCAPNG_SHB)
        || matches!(m.swap_bytes(), MAGIC_MICRO | MAGIC_NANO)
}

/// Nanoseconds for a pcapng timestamp in the interface's units.
fn pcapng_nanos(ts: u64, (base2, exp): (bool, u8)) -> i64 {
    let ts = ts as u128;
    let ns = if base2 {
        (ts * 1_000_000_000) >> exp.min(127)
    } else if exp <= 9 {
        ts * 10u128.pow(9 - exp as u32)
    } else {
        ts / 10u128.pow((exp as u32 - 9).min(38))
    };
    ns.min(i64::MAX as u128) as i64
}

impl<R: BufRead> PcapStream<R> {
    pub fn new(input: R) -> Self {
        PcapStream {
            input,
            state: State::Start,
            buf: Vec::with_capacity(1 << 16),
            offset: 0,
            skipped: 0,
            files: 0,
        }
    }

    /// Reads `n` bytes into `buf` (replacing its content); returns how many bytes
    /// were there (less than `n` only at the end of the input).
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        self.buf.clear();
        let got = (&mut self.input)
            .take(n as u64)
            .read_to_end(&mut self.buf)?;
        self.offset += got as u64;
        Ok(got)
    }

    fn corrupt(&self, what: &'static str, detail: String) -> StreamError {
        StreamError::Corrupt {
            what,
            offset: self.offset,
            detail,
        }
    }

    /// Starts a new file whose first four bytes (`magic`, read little-endian) and
    /// then `have` were already consumed.
    fn start_file(&mut self, magic: u32, have: &[u8]) -> Result<(), StreamError> {
        if magic == PCAPNG_SHB {
            // Block length and byte-order magic, then the rest of the block.
            let mut hdr = have.to_vec();
            if hdr.len() < 8 {
                let need = 8 - hdr.len();
                if self.fill(need)? < need {
                    return Err(self.corrupt("pcapng section header", "truncated".into()));
                }
                hdr.extend_from_slice(&self.buf);
            }
            let swapped = match le32(&hdr[4..]) {
                PCAPNG_BYTE_ORDER => false,
                m if m.swap_bytes() == PCAPNG_BYTE_ORDER => true,
                m => {
                    return Err(self.corrupt(
                        "pcapng section header",
                        format!("bad byte-order magic 0x{m:08x}"),
                    ))
                }
            };
            let len = if swapped {
                le32(&hdr).swap_bytes()
            } else {
                le32(&hdr)
            };
            if !(28..=MAX_RECORD).contains(&len) {
                return Err(self.corrupt("pcapng section header", format!("length {len}")));
            }
            let rest = (len as usize).saturating_sub(4 + hdr.len());
            if self.fill(rest)? < rest {
                return Err(self.corrupt("pcapng section header", "truncated".into()));
            }
            self.state = State::Pcapng {
                swapped,
                ifaces: Vec::new(),
            };
            self.files += 1;
            return Ok(());
        }
        let (swapped, nanos) = match magic {
            MAGIC_MICRO => (false, false),
            MAGIC_NANO => (false, true),
            m if m.swap_bytes() == MAGIC_MICRO => (true, false),
            m if m.swap_bytes() == MAGIC_NANO => (true, true),
            m => return Err(StreamError::BadMagic(m.swap_bytes())),
        };
        let mut hdr = have.to_vec();
        let need = 20usize.saturating_sub(hdr.len());
        if self.fill(need)? < need {
            return Err(self.corrupt("pcap file header", "truncated".into()));
        }
        hdr.extend_from_slice(&self.buf);
        let lt = le32(&hdr[16..]);
        let lt = if swapped { lt.swap_bytes() } else { lt };
        self.state = State::Pcap(PcapFile {
            swapped,
            nanos,
            // The upper bits carry FCS information, not the link type.
            linktype: lt & 0xffff,
        });
        self.files += 1;
        Ok(())
    }

    /// Reads one pcapng block into `buf`.
    fn pcapng_block(&mut self) -> Result<Block, StreamError> {
        let got = self.fill(8)?;
        if got == 0 {
            return Ok(Block::End);
        }
        if got < 8 {
            self.skipped += 1;
            return Ok(Block::End);
        }
        let raw_type = le32(&self.buf);
        if is_magic(raw_type) {
            let have = self.buf[4..8].to_vec();
            self.start_file(raw_type, &have)?;
            return Ok(Block::Other);
        }
        let State::Pcapng { swapped, .. } = self.state else {
            unreachable!("pcapng_block runs in a pcapng section")
        };
        let rd = |b: &[u8], i: usize| {
            let v = le32(&b[i..]);
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let btype = rd(&self.buf, 0);
        let len = rd(&self.buf, 4);
        if !(12..=MAX_RECORD).contains(&len) || len % 4 != 0 {
            return Err(self.corrupt("pcapng block", format!("block length {len}")));
        }
        let rest = len as usize - 8;
        if self.fill(rest)? < rest {
            self.skipped += 1;
            return Ok(Block::End);
        }
        let body_len = rest - 4;
        let State::Pcapng { ifaces, .. } = &mut self.state else {
            unreachable!()
        };
        let body = &self.buf[..body_len];
        match btype {
            // Interface description.
            1 if body.len() >= 8 => {
                let rd16 = |i: usize| {
                    let v = u16::from_le_bytes([body[i], body[i + 1]]);
                    if swapped {
                        v.swap_bytes()
                    } else {
                        v
                    }
                };
                let linktype = rd16(0) as u32;
                let snaplen = rd(body, 4);
                let mut ts_units = (false, 6);
                let mut at = 8;
                while at + 4 <= body.len() {
                    let (code, olen) = (rd16(at), rd16(at + 2) as usize);
                    if code == 0 {
                        break;
                    }
                    // if_tsresol: one byte, base 2 when the high bit is set.
                    if code == 9 && olen >= 1 && at + 4 < body.len() {
                        let v = body[at + 4];
                        ts_units = (v & 0x80 != 0, v & 0x7f);
                    }
                    at += 4 + olen.div_ceil(4) * 4;
                }
                ifaces.push(Interface {
                    linktype,
                    snaplen,
                    ts_units,
                });
                Ok(Block::Other)
            }
            // Enhanced packet, or the obsolete packet block (16-bit interface id).
            6 | 2 if body.len() >= 20 => {
                let iface = if btype == 6 {
                    rd(body, 0)
                } else {
                    let b = [body[0], body[1]];
                    (if swapped {
                        u16::from_be_bytes(b)
                    } else {
                        u16::from_le_bytes(b)
                    }) as u32
                };
                let ts = (rd(body, 4) as u64) << 32 | rd(body, 8) as u64;
                let caplen = rd(body, 12) as usize;
                let orig_len = rd(body, 16);
                let Some(ifc) = ifaces.get(iface as usize).copied() else {
                    self.skipped += 1;
                    return Ok(Block::Other);
                };
                if caplen > body.len() - 20 {
                    self.skipped += 1;
                    return Ok(Block::Other);
                }
                Ok(Block::Packet(
                    pcapng_nanos(ts, ifc.ts_units),
                    ifc.linktype,
                    orig_len,
                    20,
                    20 + caplen,
                ))
            }
            // Simple packet: interface 0, no timestamp.
            3 if body.len() >= 4 => {
                let Some(ifc) = ifaces.first().copied() else {
                    self.skipped += 1;
                    return Ok(Block::Other);
                };
                let orig_len = rd(body, 0);
                let mut caplen = (orig_len as usize).min(body.len() - 4);
                if ifc.snaplen > 0 {
                    caplen = caplen.min(ifc.snaplen as usize);
                }
                Ok(Block::Packet(0, ifc.linktype, orig_len, 4, 4 + caplen))
            }
            _ => Ok(Block::Other),
        }
    }

    /// The next packet, `Ok(None)` at the end of the input.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, StreamError> {
        loop {
            match self.state {
                State::Start => {
                    let got = self.fill(4)?;
                    if got == 0 {
                        // Empty input: no packets, as for an empty log file.
                        return Ok(None);
                    }
                    if got < 4 {
                        return Err(StreamError::BadMagic(u32::from_be_bytes(pad4(&self.buf))));
                    }
                    let magic = le32(&self.buf);
                    if !is_magic(magic) {
                        return Err(StreamError::BadMagic(magic.swap_bytes()));
                    }
                    self.start_file(magic, &[])?;
                }
                State::Pcap(f) => {
                    let got = self.fill(16)?;
                    if got == 0 {
                        return Ok(None);
                    }
                    if got < 16 {
                        self.skipped += 1;
                        return Ok(None);
                    }
                    let magic = le32(&self.buf);
                    if is_magic(magic) {
                        // Another file follows: its header replaces the record
                        // header just read.
                        let rest = self.buf[4..].to_vec();
                        self.start_file(magic, &rest)?;
                        continue;
                    }
                    let rd = |b: &[u8], i: usize| {
                        let v = le32(&b[i..]);
                        if f.swapped {
                            v.swap_bytes()
                        } else {
                            v
                        }
                    };
                    let b = &self.buf;
                    let (secs, frac, caplen, orig_len) = (rd(b, 0), rd(b, 4), rd(b, 8), rd(b, 12));
                    if caplen > MAX_RECORD {
                        return Err(self.corrupt(
                            "pcap record",
                            format!("captured length {caplen} exceeds {MAX_RECORD}"),
                        ));
                    }
                    if self.fill(caplen as usize)? < caplen as usize {
                        self.skipped += 1;
                        return Ok(None);
                    }
                    let frac_ns = if f.nanos {
                        frac as i64
                    } else {
                        frac as i64 * 1000
                    };
                    return Ok(Some(RawPacket {
                        time: secs as i64 * 1_000_000_000 + frac_ns,
                        linktype: f.linktype,
                        data: &self.buf,
                        orig_len,
                    }));
                }
                State::Pcapng { .. } => match self.pcapng_block()? {
                    Block::Packet(time, linktype, orig_len, a, b) => {
                        return Ok(Some(RawPacket {
                            time,
                            linktype,
                            data: &self.buf[a..b],
                            orig_len,
                        }))
                    }
                    Block::Other => continue,
                    Block::End => return Ok(None),
                },
            }
        }
    }
}
