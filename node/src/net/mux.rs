//! The stream multiplexer: yamux 0.13, as libp2p-yamux sets it up, with data
//! frames as large as one noise message. libp2p-yamux 0.47 offers no way to set
//! yamux 0.13's frame size (16 KiB, and setting any option falls back to yamux
//! 0.12), and every frame becomes one noise message, one seal and one socket
//! write. With 64 KiB frames a node spent 12% less CPU receiving the data plane
//! and the rate rose 12-16% (BENCHMARKS.md, "Cluster"). The wire protocol is the
//! same `/yamux/1.0.0`, so peers with libp2p's own yamux understand it.

use futures::prelude::*;
use futures::ready;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The largest noise message's payload (65,535 bytes less the 16-byte tag), less
/// yamux's 12-byte frame header: one yamux frame, one noise message.
pub const FRAME: usize = super::noise::MAX_PAYLOAD - 12;

/// Inbound streams held for the swarm to take, as libp2p-yamux does.
const MAX_BUFFERED_INBOUND_STREAMS: usize = 256;

/// The upgrade that negotiates `/yamux/1.0.0` and builds a [`Muxer`].
#[derive(Clone, Debug)]
pub struct Config(yamux::Config);

impl Default for Config {
    fn default() -> Self {
        let mut cfg = yamux::Config::default();
        // As libp2p-yamux: no reads after a stream's close.
        cfg.set_read_after_close(false);
        cfg.set_split_send_size(FRAME);
        Config(cfg)
    }
}

impl Config {
    /// Both upgrades: yamux needs nothing negotiated beyond the side it is on.
    fn muxer<C>(self, io: C, mode: yamux::Mode) -> future::Ready<io::Result<Muxer<C>>>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        future::ready(Ok(Muxer::new(yamux::Connection::new(io, self.0, mode))))
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = std::iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once("/yamux/1.0.0")
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = future::Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, io: C, _: Self::Info) -> Self::Future {
        self.muxer(io, yamux::Mode::Server)
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = future::Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, io: C, _: Self::Info) -> Self::Future {
        self.muxer(io, yamux::Mode::Client)
    }
}

/// A yamux connection as libp2p's `StreamMuxer`.
pub struct Muxer<C> {
    connection: yamux::Connection<C>,
    inbound: VecDeque<Stream>,
    inbound_waker: Option<Waker>,
}

impl<C> Muxer<C> {
    fn new(connection: yamux::Connection<C>) -> Self {
        Muxer {
            connection,
            inbound: VecDeque::new(),
            inbound_waker: None,
        }
    }
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<Stream, Error>> {
        match ready!(self.connection.poll_next_inbound(cx)) {
            Some(Ok(s)) => Poll::Ready(Ok(Stream(s))),
            Some(Err(e)) => Poll::Ready(Err(Error(e))),
            None => Poll::Ready(Err(Error(yamux::ConnectionError::Closed))),
        }
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    type Substream = Stream;
    type Error = Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        if let Some(s) = self.inbound.pop_front() {
            return Poll::Ready(Ok(s));
        }
        if let Poll::Ready(r) = self.poll_inner(cx) {
            return Poll::Ready(r);
        }
        self.inbound_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let s = ready!(self.connection.poll_new_outbound(cx)).map_err(Error)?;
        Poll::Ready(Ok(Stream(s)))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.connection.poll_close(cx).map_err(Error)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let s = ready!(this.poll_inner(cx))?;
        if this.inbound.len() >= MAX_BUFFERED_INBOUND_STREAMS {
            tracing::warn!(stream = %s.0, "dropping an inbound stream: too many wait to be taken");
            drop(s);
        } else {
            this.inbound.push_back(s);
            if let Some(w) = this.inbound_waker.take() {
                w.wake()
            }
        }
        // More inbound streams may be ready; poll again.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One yamux stream.
#[derive(Debug)]
pub struct Stream(yamux::Stream);

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read_vectored(cx, bufs)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// A yamux connection error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(yamux::ConnectionError);

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e.0 {
            yamux::ConnectionError::Io(e) => e,
            e => io::Error::other(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Polls a muxer for good, handing its inbound streams to `tx`.
    async fn drive<C>(mut m: Muxer<C>, tx: futures::channel::mpsc::UnboundedSender<Stream>)
    where
        C: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        future::poll_fn(move |cx| {
            loop {
                match Pin::new(&mut m).poll_inbound(cx) {
                    Poll::Ready(Ok(s)) => {
                        let _ = tx.unbounded_send(s);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            match Pin::new(&mut m).poll(cx) {
                Poll::Ready(Err(_)) => Poll::Ready(()),
                _ => Poll::Pending,
            }
        })
        .await
    }

    /// A stream's bytes arrive whole, in data frames that fill one noise message
    /// (libp2p-yamux's would be 16 KiB).
    #[tokio::test]
    async fn data_frames_fill_a_noise_message_and_bytes_arrive_whole() {
        let t = Duration::from_secs(20);
        let (client, server) = crate::net::test_io::tcp_pair().await;
        let (client, writes) = crate::net::test_io::wire(client, None);
        let mut client = Config::default()
            .upgrade_outbound(client, "/yamux/1.0.0")
            .await
            .unwrap();
        let server = Config::default()
            .upgrade_inbound(server, "/yamux/1.0.0")
            .await
            .unwrap();
        let mut out = future::poll_fn(|cx| Pin::new(&mut client).poll_outbound(cx))
            .await
            .unwrap();
        let (ctx, _crx) = futures::channel::mpsc::unbounded();
        let (stx, mut srx) = futures::channel::mpsc::unbounded();
        tokio::spawn(drive(client, ctx));
        tokio::spawn(drive(server, stx));
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let send = async {
            out.write_all(&sent).await.unwrap();
            out.close().await.unwrap();
        };
        let receive = async {
            let mut inbound = srx.next().await.unwrap();
            let mut got = Vec::new();
            inbound.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::time::timeout(t, future::join(send, receive))
            .await
            .expect("the stream's bytes arrive");
        assert_eq!(got, sent);
        let largest = writes.lock().unwrap().iter().copied().max().unwrap();
        assert_eq!(largest, FRAME, "the largest write is one full data frame");
    }
}
