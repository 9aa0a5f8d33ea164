//! The encrypted connection after the handshake: noise transport messages (a 2-byte
//! big-endian length, then AES-256-GCM ciphertext and its 16-byte tag, nonce = the
//! message counter), sealed and opened in place in one fixed buffer per direction.
//! libp2p-noise copies each outgoing byte three times (its frame buffer, snow's
//! output, the codec's buffer) and each incoming byte twice plus a zeroed buffer per
//! message; here each byte is copied once each way, from or to the muxer's buffer.

use futures::{ready, AsyncRead, AsyncWrite};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The largest noise message, tag included.
const MAX_MSG: usize = 65_535;
const TAG: usize = 16;
/// The largest payload of one message.
pub const MAX_PAYLOAD: usize = MAX_MSG - TAG;
/// One message on the wire at most: the length prefix and the message.
const WIRE_MAX: usize = 2 + MAX_MSG;
/// Two whole messages: a stream of full messages fills it exactly, so bulk
/// transfers never move a partial message to the front.
const READ_BUF: usize = 2 * WIRE_MAX;

/// One direction's key and message counter.
struct Cipher {
    key: LessSafeKey,
    counter: u64,
}

impl Cipher {
    fn new(key: &[u8; 32]) -> io::Result<Cipher> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| io::Error::other("noise: bad transport key"))?;
        Ok(Cipher {
            key: LessSafeKey::new(key),
            counter: 0,
        })
    }

    /// Noise's AESGCM nonce: 32 zero bits, then the counter big-endian. 2^64-1 is
    /// reserved, so a connection that used every nonce before it ends.
    fn next_nonce(&mut self) -> io::Result<Nonce> {
        if self.counter == u64::MAX {
            return Err(io::Error::other("noise: message counter exhausted"));
        }
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        self.counter += 1;
        Ok(Nonce::assume_unique_for_key(n))
    }
}

/// An encrypted connection to a remote over `T`.
pub struct Output<T> {
    io: T,
    seal: Cipher,
    open: Cipher,
    /// Bytes read from `io`; `[start, end)` is not yet opened, `plain` is opened
    /// payload not yet handed out. Allocated on the first read.
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    plain: std::ops::Range<usize>,
    /// The message being filled: payload at `[2, 2 + fill)`; once sealed,
    /// `[sent, sealed)` is what `io` has yet to take.
    wbuf: Vec<u8>,
    fill: usize,
    sent: usize,
    sealed: usize,
}

impl<T> std::fmt::Debug for Output<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseOutput").finish_non_exhaustive()
    }
}

fn bad_data(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl<T> Output<T> {
    pub(crate) fn new(io: T, seal: &[u8; 32], open: &[u8; 32]) -> io::Result<Output<T>> {
        Ok(Output {
            io,
            seal: Cipher::new(seal)?,
            open: Cipher::new(open)?,
            rbuf: Vec::new(),
            start: 0,
            end: 0,
            plain: 0..0,
            wbuf: Vec::new(),
            fill: 0,
            sent: 0,
            sealed: 0,
        })
    }

    /// Opens the message at `start` if it is all here; false when more bytes are needed.
    fn open_next(&mut self) -> io::Result<bool> {
        let avail = self.end - self.start;
        if avail < 2 {
            return Ok(false);
        }
        let len = u16::from_be_bytes([self.rbuf[self.start], self.rbuf[self.start + 1]]) as usize;
        if len < TAG {
            return Err(bad_data("noise: message shorter than its tag"));
        }
        if avail < 2 + len {
            return Ok(false);
        }
        let at = self.start + 2;
        let nonce = self.open.next_nonce()?;
        let plain = self
            .open
            .key
            .open_in_place(nonce, Aad::empty(), &mut self.rbuf[at..at + len])
            .map_err(|_| {
                bad_data("noise: decrypt error (message forged, corrupted or out of order)")
            })?
            .len();
        self.plain = at..at + plain;
        self.start = at + len;
        Ok(true)
    }

    fn seal_message(&mut self) -> io::Result<()> {
        let n = self.fill;
        let nonce = self.seal.next_nonce()?;
        let tag = self
            .seal
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut self.wbuf[2..2 + n])
            .map_err(|_| io::Error::other("noise: encryption failed"))?;
        self.wbuf[2 + n..2 + n + TAG].copy_from_slice(tag.as_ref());
        self.wbuf[..2].copy_from_slice(&((n + TAG) as u16).to_be_bytes());
        self.sent = 0;
        self.sealed = 2 + n + TAG;
        self.fill = 0;
        Ok(())
    }
}

impl<T: AsyncWrite + Unpin> Output<T> {
    /// Writes out the sealed message, if any.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.sealed {
            let n =
                ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.sent..self.sealed]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.sent = 0;
        self.sealed = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Output<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if !this.plain.is_empty() {
                let n = this.plain.len().min(buf.len());
                buf[..n].copy_from_slice(&this.rbuf[this.plain.start..this.plain.start + n]);
                this.plain.start += n;
                return Poll::Ready(Ok(n));
            }
            if this.open_next()? {
                // An empty message is legal; read on.
                continue;
            }
            if this.rbuf.is_empty() {
                this.rbuf = vec![0; READ_BUF];
            }
            if this.start == this.end {
                this.start = 0;
                this.end = 0;
            } else if this.start + WIRE_MAX > READ_BUF {
                // A partial message near the end might not fit: move it to the front.
                this.rbuf.copy_within(this.start..this.end, 0);
                this.end -= this.start;
                this.start = 0;
            }
            let n = ready!(Pin::new(&mut this.io).poll_read(cx, &mut this.rbuf[this.end..]))?;
            if n == 0 {
                return Poll::Ready(if this.start == this.end {
                    Ok(0)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "noise: connection closed inside a message",
                    ))
                });
            }
            this.end += n;
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Output<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.poll_drain(cx))?;
        if this.wbuf.is_empty() {
            this.wbuf = vec![0; WIRE_MAX];
        }
        let n = buf.len().min(MAX_PAYLOAD - this.fill);
        this.wbuf[2 + this.fill..2 + this.fill + n].copy_from_slice(&buf[..n]);
        this.fill += n;
        if this.fill == MAX_PAYLOAD {
            this.seal_message()?;
            // Start writing now; whatever the socket does not take waits for the next
            // write or flush, which drain it first.
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        if this.fill > 0 {
            this.seal_message()?;
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.io).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::test_io::pattern;
    use futures::{AsyncReadExt, AsyncWriteExt};

    /// Our messages are noise transport messages: snow, handed the same handshake,
    /// opens what we seal and we open what it seals, in both directions.
    #[test]
    fn messages_are_those_of_snow_after_the_same_handshake() {
        let params: snow::params::NoiseParams = "Noise_XX_25519_AESGCM_SHA256".parse().unwrap();
        let keys: Vec<_> = (0..2)
            .map(|_| {
                snow::Builder::with_resolver(params.clone(), Box::new(super::super::keys::Resolver))
                    .generate_keypair()
                    .unwrap()
            })
            .collect();
        fn build<'a>(
            params: &snow::params::NoiseParams,
            k: &'a snow::Keypair,
        ) -> snow::Builder<'a> {
            snow::Builder::with_resolver(params.clone(), Box::new(super::super::keys::Resolver))
                .prologue(b"p")
                .local_private_key(&k.private)
        }
        let mut i = build(&params, &keys[0]).build_initiator().unwrap();
        let mut r = build(&params, &keys[1]).build_responder().unwrap();
        let (mut m, mut p) = (vec![0u8; 1024], vec![0u8; 1024]);
        for turn in 0..3 {
            let (w, rd) = if turn % 2 == 0 {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let n = w.write_message(&[], &mut m).unwrap();
            rd.read_message(&m[..n], &mut p).unwrap();
        }
        let (k1, k2) = i.dangerously_get_raw_split();
        let mut snow_i = i.into_transport_mode().unwrap();
        // Ours plays the responder: it seals with the second key, opens with the first.
        let mut ours = Output::new(futures::io::Cursor::new(Vec::new()), &k2, &k1).unwrap();
        for round in 0..3 {
            let text = pattern(1000 + round, round as u32);
            // ours -> snow's initiator
            futures::executor::block_on(async {
                ours.write_all(&text).await.unwrap();
                ours.flush().await.unwrap();
            });
            let wire = std::mem::take(ours.io.get_mut());
            ours.io.set_position(0);
            assert_eq!(
                u16::from_be_bytes([wire[0], wire[1]]) as usize,
                wire.len() - 2
            );
            let mut out = vec![0u8; wire.len()];
            let n = snow_i.read_message(&wire[2..], &mut out).unwrap();
            assert_eq!(&out[..n], &text[..]);
            // snow's initiator -> ours
            let mut msg = vec![0u8; text.len() + 16];
            let n = snow_i.write_message(&text, &mut msg).unwrap();
            let mut framed = (n as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&msg[..n]);
            let mut reader = Output::new(futures::io::Cursor::new(framed), &[0; 32], &k1).unwrap();
            reader.open.counter = round as u64;
            let mut got = Vec::new();
            futures::executor::block_on(reader.read_to_end(&mut got)).unwrap();
            assert_eq!(got, text);
        }
    }
}
