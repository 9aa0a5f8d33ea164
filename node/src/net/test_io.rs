//! Test helpers for the transport layers: a loopback TCP pair, a connection that
//! records its writes and can tamper with them, and deterministic bytes.

use libp2p::tcp::tokio::TcpStream;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Two ends of one loopback TCP connection: (dialer, listener).
pub(crate) async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
    (TcpStream(c.unwrap()), TcpStream(s.unwrap().0))
}

/// Records the size of each write and, where `flip_at` is set, flips one byte at
/// that offset of everything written (a tampering network).
pub(crate) struct Wire<S> {
    inner: S,
    writes: Arc<Mutex<Vec<usize>>>,
    written: usize,
    flip_at: Option<usize>,
}

/// Wraps `s`; the vector fills with the size of each write.
pub(crate) fn wire<S>(s: S, flip_at: Option<usize>) -> (Wire<S>, Arc<Mutex<Vec<usize>>>) {
    let writes = Arc::new(Mutex::new(Vec::new()));
    let w = Wire {
        inner: s,
        writes: writes.clone(),
        written: 0,
        flip_at,
    };
    (w, writes)
}

impl<S: futures::AsyncRead + Unpin> futures::AsyncRead for Wire<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: futures::AsyncWrite + Unpin> futures::AsyncWrite for Wire<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut data = buf.to_vec();
        if let Some(at) = self.flip_at {
            if (self.written..self.written + data.len()).contains(&at) {
                data[at - self.written] ^= 0x40;
            }
        }
        let n = futures::ready!(Pin::new(&mut self.inner).poll_write(cx, &data))?;
        self.written += n;
        self.writes.lock().unwrap().push(n);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// `n` deterministic bytes that repeat only after a long stretch.
pub(crate) fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}
