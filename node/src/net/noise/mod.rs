//! Our libp2p security upgrade, `/vast/noise/1`: noise XX with AES-256-GCM
//! (`Noise_XX_25519_AESGCM_SHA256`), the cluster secret in its prologue.
//!
//! Why not libp2p-noise: it fixes the cipher to ChaCha20-Poly1305, and on the data
//! plane the cipher was 28% of all CPU (BENCHMARKS.md). On the benchmark machine
//! (AES-NI and VAES) ring seals 64 KiB messages at about 1.9 GB/s with
//! ChaCha20-Poly1305 and 7.9 GB/s with AES-256-GCM; ring picks a constant-time
//! software AES where the CPU has none. Its transport also copied every byte three
//! times on the way out; ours seals and opens in place (`transport`).
//!
//! The handshake keeps libp2p-noise's design (`handshake`): each side's static DH key
//! is signed by its libp2p identity and checked before the connection is used, so
//! the peer id is authenticated as with `/noise`. Both ends of every connection are
//! `vast`, so the protocol name is our own and nothing else is offered.

mod handshake;
mod keys;
mod transport;

pub use transport::{Output, MAX_PAYLOAD};

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncWrite, FutureExt};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::{identity, PeerId};

/// The protocol name negotiated on each new connection.
pub const PROTOCOL: &str = "/vast/noise/1";

/// A handshake's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("noise handshake: {0}")]
    Io(#[from] std::io::Error),
    /// Includes a remote with another prologue (cluster secret): its messages fail to decrypt.
    #[error("noise handshake: {0}")]
    Noise(#[from] snow::Error),
    #[error("noise handshake: invalid public key: {0}")]
    InvalidKey(#[from] identity::DecodingError),
    #[error("noise handshake: only 32-byte DH keys are supported")]
    InvalidLength,
    #[error("noise handshake: the signature over the remote's DH key does not verify")]
    BadSignature,
    #[error("noise handshake: authentication failed")]
    AuthenticationFailed,
    #[error("noise handshake: {0}")]
    InvalidPayload(&'static str),
    #[error("noise handshake: signing: {0}")]
    Signing(#[from] identity::SigningError),
}

/// The upgrade: one per swarm, cloned for each connection.
#[derive(Clone)]
pub struct Config {
    keys: keys::AuthenticKeypair,
    prologue: Vec<u8>,
}

impl Config {
    /// A fresh static DH key for this process, signed by its identity.
    pub fn new(id: &identity::Keypair) -> Result<Config, Error> {
        Ok(Config {
            keys: keys::Keypair::generate()?.into_authentic(id)?,
            prologue: Vec::new(),
        })
    }

    /// Bytes both sides must share for the handshake to complete (the cluster secret's hash).
    pub fn with_prologue(mut self, prologue: Vec<u8>) -> Config {
        self.prologue = prologue;
        self
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = std::iter::Once<&'static str>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once(PROTOCOL)
    }
}

impl<T> InboundConnectionUpgrade<T> for Config
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = (PeerId, Output<T>);
    type Error = Error;
    type Future = BoxFuture<'static, Result<Self::Output, Error>>;

    fn upgrade_inbound(self, socket: T, _: Self::Info) -> Self::Future {
        async move {
            let (id, io) = handshake::respond(self, socket).await?;
            Ok((id.to_peer_id(), io))
        }
        .boxed()
    }
}

impl<T> OutboundConnectionUpgrade<T> for Config
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = (PeerId, Output<T>);
    type Error = Error;
    type Future = BoxFuture<'static, Result<Self::Output, Error>>;

    fn upgrade_outbound(self, socket: T, _: Self::Info) -> Self::Future {
        async move {
            let (id, io) = handshake::initiate(self, socket).await?;
            Ok((id.to_peer_id(), io))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::test_io::{pattern, tcp_pair, wire, Wire};
    use futures::{AsyncReadExt, AsyncWriteExt};
    use libp2p::tcp::tokio::TcpStream;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const T: Duration = Duration::from_secs(20);

    type Pair = (
        Result<(PeerId, Output<Wire<TcpStream>>), Error>,
        Result<(PeerId, Output<TcpStream>), Error>,
    );

    async fn connect(
        a: &identity::Keypair,
        pa: &[u8],
        b: &identity::Keypair,
        pb: &[u8],
        flip_at: Option<usize>,
    ) -> (Pair, Arc<Mutex<Vec<usize>>>) {
        let (c, s) = tcp_pair().await;
        let (c, writes) = wire(c, flip_at);
        let ca = Config::new(a).unwrap().with_prologue(pa.to_vec());
        let cb = Config::new(b).unwrap().with_prologue(pb.to_vec());
        let pair = tokio::time::timeout(T, async {
            tokio::join!(
                ca.upgrade_outbound(c, PROTOCOL),
                cb.upgrade_inbound(s, PROTOCOL)
            )
        })
        .await
        .expect("handshake ends");
        (pair, writes)
    }

    /// Both directions at once, writes of many sizes: every byte arrives, each side
    /// learns the other's peer id, and full messages are one 65,537-byte write.
    #[tokio::test]
    async fn peers_authenticate_and_bytes_cross_both_ways_in_full_messages() {
        let (a, b) = (
            identity::Keypair::generate_ed25519(),
            identity::Keypair::generate_ed25519(),
        );
        let ((ra, rb), writes) = connect(&a, b"cluster", &b, b"cluster", None).await;
        let (a_sees, mut ao) = ra.unwrap();
        let (b_sees, mut bo) = rb.unwrap();
        assert_eq!(a_sees, b.public().to_peer_id());
        assert_eq!(b_sees, a.public().to_peer_id());
        let (to_b, to_a) = (pattern(1_500_000, 1), pattern(700_001, 2));
        let run = async {
            let (ar, aw) = (&mut ao).split();
            let (br, bw) = (&mut bo).split();
            async fn send(mut w: impl futures::AsyncWrite + Unpin, data: &[u8]) {
                // Sizes from one byte to several messages, and a flush now and then.
                let mut at = 0;
                for (i, size) in [1usize, 12, 65_507, 300_000, 7, 65_519, 65_520, 4096]
                    .iter()
                    .cycle()
                    .enumerate()
                {
                    if at == data.len() {
                        break;
                    }
                    let end = (at + size).min(data.len());
                    w.write_all(&data[at..end]).await.unwrap();
                    at = end;
                    if i % 3 == 0 {
                        w.flush().await.unwrap();
                    }
                }
                w.close().await.unwrap();
            }
            async fn recv(mut r: impl futures::AsyncRead + Unpin) -> Vec<u8> {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            }
            tokio::join!(send(aw, &to_b), send(bw, &to_a), recv(br), recv(ar))
        };
        let ((), (), b_got, a_got) = tokio::time::timeout(T, run).await.expect("transfer ends");
        assert!(
            b_got == to_b,
            "a to b: {} of {} bytes, or corrupted",
            b_got.len(),
            to_b.len()
        );
        assert!(
            a_got == to_a,
            "b to a: {} of {} bytes, or corrupted",
            a_got.len(),
            to_a.len()
        );
        let largest = writes.lock().unwrap().iter().copied().max().unwrap();
        assert_eq!(largest, 2 + 65_535, "a full message is one write");
    }

    #[tokio::test]
    async fn another_prologue_fails_the_handshake_on_both_sides() {
        let (a, b) = (
            identity::Keypair::generate_ed25519(),
            identity::Keypair::generate_ed25519(),
        );
        let ((ra, rb), _) = connect(&a, b"secret one", &b, b"secret two", None).await;
        let ea = ra.expect_err("the dialer refuses").to_string();
        let eb = rb.expect_err("the listener refuses").to_string();
        // `describe_dial_error` tells a refused secret by these words.
        assert!(ea.contains("noise") && eb.contains("noise"), "{ea} / {eb}");
        assert!(
            ea.contains("decrypt") || eb.contains("decrypt"),
            "{ea} / {eb}"
        );
    }

    /// A byte changed on the wire after the handshake: the reader gets an error,
    /// never the altered bytes.
    #[tokio::test]
    async fn a_tampered_message_is_an_error_not_data() {
        let (a, b) = (
            identity::Keypair::generate_ed25519(),
            identity::Keypair::generate_ed25519(),
        );
        // The handshake's two messages from the dialer are well under 1,000 bytes.
        let ((ra, rb), _) = connect(&a, b"", &b, b"", Some(1_000 + 70_000)).await;
        let (_, mut ao) = ra.unwrap();
        let (_, mut bo) = rb.unwrap();
        let data = pattern(200_000, 3);
        let run = async {
            let w = async {
                let _ = ao.write_all(&data).await;
                let _ = ao.close().await;
            };
            let r = async {
                let mut got = Vec::new();
                let e = bo
                    .read_to_end(&mut got)
                    .await
                    .expect_err("tampering is noticed");
                (got, e)
            };
            tokio::join!(w, r).1
        };
        let (got, e) = tokio::time::timeout(T, run).await.expect("ends");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("decrypt"), "{e}");
        assert!(
            got.len() < 70_000 && data.starts_with(&got),
            "only bytes before the altered message arrive"
        );
    }

    /// Bytes from a peer that holds the keys but breaks the framing.
    #[tokio::test]
    async fn short_and_cut_messages_are_errors() {
        for (raw, kind) in [
            (vec![0u8, 5, 1, 2, 3, 4, 5], std::io::ErrorKind::InvalidData),
            (vec![1u8, 0, 9, 9, 9], std::io::ErrorKind::UnexpectedEof),
        ] {
            let (mut c, s) = tcp_pair().await;
            let mut o = Output::new(s, &[1; 32], &[2; 32]).unwrap();
            c.write_all(&raw).await.unwrap();
            c.close().await.unwrap();
            let mut got = Vec::new();
            let e = tokio::time::timeout(T, o.read_to_end(&mut got))
                .await
                .unwrap()
                .expect_err("framing error");
            assert_eq!(e.kind(), kind, "{raw:?}: {e}");
            assert!(got.is_empty());
        }
    }
}
