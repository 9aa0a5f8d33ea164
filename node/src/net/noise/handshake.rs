//! The XX handshake with libp2p-noise's message flow: `-> e`, `<- e, ee, s, es` with
//! the responder's identity, `-> s, se` with the initiator's. Each message is a
//! 2-byte big-endian length and the noise message; an identity payload is the
//! protobuf-encoded libp2p public key and its signature over the sender's static DH
//! key, each behind a 2-byte length. Reads are exact, so no byte meant for the
//! transport is consumed here.

use super::keys::{AuthenticKeypair, Resolver, STATIC_KEY_DOMAIN};
use super::transport::Output;
use super::{Config, Error};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::identity;
use snow::HandshakeState;
use std::sync::LazyLock;
use zeroize::Zeroize;

static PARAMS: LazyLock<snow::params::NoiseParams> = LazyLock::new(|| {
    "Noise_XX_25519_AESGCM_SHA256"
        .parse()
        .expect("valid noise parameters")
});

/// Room a handshake message needs beyond its payload: two 32-byte keys, and a tag
/// for the encrypted static key and one for the payload.
const HANDSHAKE_OVERHEAD: usize = 32 + 32 + 16 + 16;

fn state(cfg: &Config, initiator: bool) -> Result<HandshakeState, Error> {
    let b = snow::Builder::with_resolver(PARAMS.clone(), Box::new(Resolver))
        .prologue(&cfg.prologue)
        .local_private_key(cfg.keys.keypair.secret());
    Ok(if initiator {
        b.build_initiator()?
    } else {
        b.build_responder()?
    })
}

/// Dials: returns the remote's identity and the encrypted connection.
pub(crate) async fn initiate<T>(
    cfg: Config,
    mut io: T,
) -> Result<(identity::PublicKey, Output<T>), Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut hs = state(&cfg, true)?;
    send(&mut io, &mut hs, &[]).await?;
    let remote = recv(&mut io, &mut hs).await?;
    send(&mut io, &mut hs, &identity_payload(&cfg.keys)).await?;
    finish(io, hs, &remote, true)
}

/// Accepts: returns the remote's identity and the encrypted connection.
pub(crate) async fn respond<T>(
    cfg: Config,
    mut io: T,
) -> Result<(identity::PublicKey, Output<T>), Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut hs = state(&cfg, false)?;
    if !recv(&mut io, &mut hs).await?.is_empty() {
        return Err(Error::InvalidPayload(
            "the first handshake message carries a payload",
        ));
    }
    send(&mut io, &mut hs, &identity_payload(&cfg.keys)).await?;
    let remote = recv(&mut io, &mut hs).await?;
    finish(io, hs, &remote, false)
}

fn finish<T>(
    io: T,
    mut hs: HandshakeState,
    remote: &[u8],
    initiator: bool,
) -> Result<(identity::PublicKey, Output<T>), Error> {
    if !hs.is_handshake_finished() {
        return Err(Error::AuthenticationFailed);
    }
    let (key, sig) = parse_identity(remote)?;
    let id = identity::PublicKey::try_decode_protobuf(key)?;
    let dh = hs.get_remote_static().ok_or(Error::AuthenticationFailed)?;
    if dh.len() != 32 {
        return Err(Error::InvalidLength);
    }
    if !id.verify(&[STATIC_KEY_DOMAIN, dh].concat(), sig) {
        return Err(Error::BadSignature);
    }
    // Noise's split: the first key carries initiator-to-responder traffic.
    let (mut k1, mut k2) = hs.dangerously_get_raw_split();
    let (send, recv) = if initiator { (&k1, &k2) } else { (&k2, &k1) };
    let out = Output::new(io, send, recv);
    k1.zeroize();
    k2.zeroize();
    Ok((id, out?))
}

fn identity_payload(keys: &AuthenticKeypair) -> Vec<u8> {
    let key = keys.public.encode_protobuf();
    let mut out = Vec::with_capacity(4 + key.len() + keys.signature.len());
    for part in [&key[..], &keys.signature[..]] {
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Splits an identity payload into the encoded public key and the signature; every
/// byte must belong to one of them.
fn parse_identity(p: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let mut rest = p;
    let mut part = || -> Result<&[u8], Error> {
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or(Error::InvalidPayload("identity payload cut short"))?;
        let len = u16::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(Error::InvalidPayload("identity payload cut short"));
        }
        let (part, tail) = tail.split_at(len);
        rest = tail;
        Ok(part)
    };
    let key = part()?;
    let sig = part()?;
    if !rest.is_empty() {
        return Err(Error::InvalidPayload("identity payload has trailing bytes"));
    }
    Ok((key, sig))
}

async fn send<T: AsyncWrite + Unpin>(
    io: &mut T,
    hs: &mut HandshakeState,
    payload: &[u8],
) -> Result<(), Error> {
    let mut msg = vec![0u8; 2 + payload.len() + HANDSHAKE_OVERHEAD];
    let n = hs.write_message(payload, &mut msg[2..])?;
    let len = u16::try_from(n).map_err(|_| Error::InvalidLength)?;
    msg[..2].copy_from_slice(&len.to_be_bytes());
    io.write_all(&msg[..2 + n]).await?;
    io.flush().await?;
    Ok(())
}

async fn recv<T: AsyncRead + Unpin>(io: &mut T, hs: &mut HandshakeState) -> Result<Vec<u8>, Error> {
    let mut len = [0u8; 2];
    io.read_exact(&mut len).await?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    io.read_exact(&mut msg).await?;
    let mut payload = vec![0u8; msg.len()];
    let n = hs.read_message(&msg, &mut payload)?;
    payload.truncate(n);
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_payloads_round_trip_and_reject_every_cut_and_trailing_byte() {
        let id = identity::Keypair::generate_ed25519();
        let keys = super::super::keys::Keypair::generate()
            .unwrap()
            .into_authentic(&id)
            .unwrap();
        let p = identity_payload(&keys);
        let (key, sig) = parse_identity(&p).unwrap();
        assert_eq!(
            identity::PublicKey::try_decode_protobuf(key).unwrap(),
            id.public()
        );
        assert_eq!(sig, &keys.signature[..]);
        for cut in 0..p.len() {
            assert!(parse_identity(&p[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = p.clone();
        long.push(0);
        assert!(parse_identity(&long).is_err());
    }
}
