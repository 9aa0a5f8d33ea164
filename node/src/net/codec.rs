//! The data-plane codec: one length-prefixed frame of raw bytes per request and
//! per response. The bytes are rkyv envelopes, validated by the receiver.
//!
//! A peer's claimed length is never trusted for memory: frames over the cap are
//! refused outright, and a frame's buffer reserves at most 16 times the bytes
//! that arrived (64 KiB before any), untouched until they come; a large frame
//! may instead fill a kept buffer (`data::pool`), which costs no new memory. Inbound
//! requests also take permits from a node-wide byte budget as they are read, so
//! the sum of what all peers can make a node hold is bounded; a reader waits (and
//! yamux stops the sender) while the budget is spent.

use async_trait::async_trait;
use futures::prelude::*;
use libp2p::StreamProtocol;
use std::io;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::data::pool::{self, Pool};

/// Protocol name of the data plane.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/vast/data/4");

/// Bytes read between budget checks.
const CHUNK: usize = 64 << 10;
/// How far ahead of the bytes that arrived a frame's buffer may reach.
const GROWTH: usize = 16;

/// A data-plane request: sent as `body` then `head` (so a payload is written
/// from where it lies, not copied into the frame); received as one buffer in
/// `head`, with the share of the node's byte budget it holds until answered.
pub struct Frame {
    /// Sent first, as it is; empty on receipt.
    pub body: bytes::Bytes,
    /// Sent after `body`; on receipt, the whole frame.
    pub head: Vec<u8>,
    /// On receipt, the frame's share of the byte budget.
    pub permit: Option<OwnedSemaphorePermit>,
}

impl Frame {
    pub fn new(body: bytes::Bytes, head: Vec<u8>) -> Frame {
        Frame {
            body,
            head,
            permit: None,
        }
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.body.len() + self.head.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame's bytes in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        v.extend_from_slice(&self.body);
        v.extend_from_slice(&self.head);
        v
    }

    /// Another frame of the same bytes, sharing the body (to send again).
    pub fn share(&self) -> Frame {
        Frame::new(self.body.clone(), self.head.clone())
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({} bytes)", self.len())
    }
}

impl From<Vec<u8>> for Frame {
    fn from(head: Vec<u8>) -> Self {
        Frame::new(bytes::Bytes::new(), head)
    }
}

#[derive(Clone)]
pub struct RawCodec {
    /// Largest frame accepted or sent.
    pub max_frame: usize,
    /// Node-wide budget for inbound request bytes (`None` for a CLI).
    pub budget: Option<Arc<Semaphore>>,
    /// Where large frames are read into and their payloads go once written.
    pub pool: &'static Pool,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
    budget: Option<&Arc<Semaphore>>,
    pool: &Pool,
) -> io::Result<Frame> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer sent a frame of {len} bytes (limit {max})"),
        ));
    }
    // A claim is honoured in proportion to the bytes behind it: the buffer
    // grows to at most GROWTH times what has arrived (address space, touched
    // only as bytes come). Growing from empty by doubling copied a 0.5 MiB frame
    // about three times over, a tenth of a receiving node's CPU on the data plane.
    // A kept buffer is reused whole (it costs no new memory; small frames get
    // none); a new one starts at one chunk.
    let mut buf = pool.take(len);
    if buf.capacity() == 0 {
        buf.reserve_exact(len.min(CHUNK));
    }
    let mut permit: Option<OwnedSemaphorePermit> = None;
    while buf.len() < len {
        let n = CHUNK.min(len - buf.len());
        if buf.len() + n > buf.capacity() {
            let want = len.min(buf.len().max(CHUNK).saturating_mul(GROWTH));
            // The last step reserves a little past the claim, so the buffer
            // fits the next frame too once it is kept for reuse.
            let want = if want == len {
                pool::rounded(len)
            } else {
                want
            };
            buf.reserve_exact(want - buf.len());
        }
        if let Some(b) = budget {
            let p = b
                .clone()
                .acquire_many_owned(n as u32)
                .await
                .map_err(|_| io::Error::other("node is shutting down"))?;
            match permit.as_mut() {
                Some(held) => held.merge(p),
                None => permit = Some(p),
            }
        }
        let at = buf.len();
        buf.resize(at + n, 0);
        io.read_exact(&mut buf[at..]).await?;
    }
    Ok(Frame {
        body: bytes::Bytes::new(),
        head: buf,
        permit,
    })
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    parts: [&[u8]; 2],
    max: usize,
) -> io::Result<()> {
    let len = parts[0].len() + parts[1].len();
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {len} bytes exceeds the limit of {max}"),
        ));
    }
    io.write_all(&(len as u32).to_le_bytes()).await?;
    for p in parts {
        io.write_all(p).await?;
    }
    io.close().await
}

#[async_trait]
impl libp2p::request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Frame> {
        read_frame(io, self.max_frame, self.budget.as_ref(), self.pool).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        // Answers to our own requests: capped, but not charged to the budget.
        read_frame(io, self.max_frame, None, self.pool)
            .await
            .map(|f| f.head)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Frame,
    ) -> io::Result<()> {
        write_frame(io, [&req.body, &req.head], self.max_frame).await?;
        // The batch is on the wire: its buffer can take the next one.
        self.pool.put_bytes(req.body);
        Ok(())
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, [&[], &res], self.max_frame).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_lengths_allocate_nothing_and_budgets_hold() {
        // A pool that keeps nothing: every buffer here is new.
        let none = Pool::new(0, 0);
        futures::executor::block_on(async {
            // A claim over the cap is refused before any allocation.
            let mut huge = futures::io::Cursor::new((u32::MAX).to_le_bytes().to_vec());
            let e = read_frame(&mut huge, 1 << 20, None, &none)
                .await
                .err()
                .unwrap();
            assert!(e.to_string().contains("limit"), "{e}");
            // A claim under the cap with few bytes behind it fails on the short read
            // having allocated only what arrived (one chunk at most).
            let mut short = (1u32 << 20).to_le_bytes().to_vec();
            short.extend_from_slice(&[1, 2, 3]);
            let mut short = futures::io::Cursor::new(short);
            assert!(read_frame(&mut short, 1 << 20, None, &none).await.is_err());
            // Permits are held while the frame is, and returned after.
            let budget = Arc::new(Semaphore::new(1 << 20));
            let mut ok = 100_000u32.to_le_bytes().to_vec();
            ok.extend(vec![9u8; 100_000]);
            let f = read_frame(
                &mut futures::io::Cursor::new(ok),
                1 << 20,
                Some(&budget),
                &none,
            )
            .await
            .unwrap();
            assert_eq!(f.head.len(), 100_000);
            assert_eq!(budget.available_permits(), (1 << 20) - 100_000);
            drop(f);
            assert_eq!(budget.available_permits(), 1 << 20);
            // Frames end in a buffer of their length, rounded up past 1 MiB
            // (grown at most twice past the first chunk, never by more than
            // the rounding beyond the claim).
            for (len, cap) in [
                (70_000usize, 70_000),
                (574_456, 574_456),
                (5 << 20, 6 << 20),
                ((4 << 20) + 1, 6 << 20),
            ] {
                let mut framed = (len as u32).to_le_bytes().to_vec();
                framed.extend((0..len).map(|i| i as u8));
                let f = read_frame(&mut futures::io::Cursor::new(framed), 8 << 20, None, &none)
                    .await
                    .unwrap();
                assert_eq!(f.head.len(), len);
                assert_eq!(f.head.capacity(), cap);
                assert!(f.head.iter().enumerate().all(|(i, &b)| b == i as u8));
            }
        });
    }

    #[test]
    fn large_frames_fill_kept_buffers_and_small_ones_new_ones() {
        futures::executor::block_on(async {
            let pool = Pool::new(2, 64 << 20);
            let len = 3 << 20;
            let mut framed = (len as u32).to_le_bytes().to_vec();
            framed.extend((0..len).map(|i| (i % 251) as u8));
            // A kept buffer, larger than the frame and full of other bytes.
            let mut kept = vec![0xEEu8; 4 << 20];
            let at = kept.as_ptr();
            kept.truncate(10);
            pool.put(kept);
            let f = read_frame(
                &mut futures::io::Cursor::new(framed.clone()),
                8 << 20,
                None,
                &pool,
            )
            .await
            .unwrap();
            assert!(pool.is_empty());
            assert_eq!((f.head.as_ptr(), f.head.len()), (at, len));
            assert!(f
                .head
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8));
            // Small frames take nothing from the pool.
            pool.put(f.head);
            let small = read_frame(
                &mut futures::io::Cursor::new(vec![1, 0, 0, 0, 9]),
                8 << 20,
                None,
                &pool,
            )
            .await
            .unwrap();
            assert_eq!((small.head, pool.len()), (vec![9], 1));
        });
    }

    #[test]
    fn a_written_payload_goes_back_to_the_pool_unless_shared() {
        use libp2p::request_response::Codec;
        futures::executor::block_on(async {
            let pool: &'static Pool = Box::leak(Box::new(Pool::new(4, 64 << 20)));
            let mut codec = RawCodec {
                max_frame: 8 << 20,
                budget: None,
                pool,
            };
            let body = bytes::Bytes::from(vec![5u8; 2 << 20]);
            let at = body.as_ptr();
            let mut wire = futures::io::Cursor::new(Vec::new());
            // Shared with a frame kept for sending again: left alone.
            let again = body.clone();
            codec
                .write_request(&PROTOCOL, &mut wire, Frame::new(body, vec![1, 2]))
                .await
                .unwrap();
            assert!(pool.is_empty());
            // The last holder's bytes are kept once written, and the frame on
            // the wire is whole.
            codec
                .write_request(&PROTOCOL, &mut wire, Frame::new(again, vec![3]))
                .await
                .unwrap();
            let kept = pool.take(2 << 20);
            assert_eq!((kept.as_ptr(), kept.capacity()), (at, 2 << 20));
            let wire = wire.into_inner();
            assert_eq!(wire.len(), 2 * (4 + (2 << 20)) + 3);
            let mut r = futures::io::Cursor::new(wire);
            let first = read_frame(&mut r, 8 << 20, None, pool).await.unwrap();
            assert!(first.head[..2 << 20].iter().all(|&b| b == 5));
            assert_eq!(&first.head[2 << 20..], &[1, 2]);
        });
    }
}
