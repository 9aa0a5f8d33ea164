// Derived from libp2p-noise 0.46.1 (src/protocol.rs), Copyright 2019 Parity Technologies
// (UK) Ltd., MIT licence: the X25519 keys and the snow resolver that uses them.

//! The static X25519 keypair, signed by the node's libp2p identity, and the snow
//! resolver: x25519-dalek for the DH, ring for the hash, the cipher and randomness.

use super::Error;
use libp2p::identity;
use snow::resolvers::{CryptoResolver, RingResolver};
use x25519_dalek::{x25519, X25519_BASEPOINT_BYTES};
use zeroize::Zeroize;

/// Domain of the identity's signature over the static DH key, so the signature cannot
/// be replayed as any other statement of that key.
pub(crate) const STATIC_KEY_DOMAIN: &[u8] = b"vast-noise-static-key:";

/// A DH keypair whose public half is signed by a libp2p identity.
#[derive(Clone)]
pub(crate) struct AuthenticKeypair {
    pub(crate) keypair: Keypair,
    pub(crate) public: identity::PublicKey,
    pub(crate) signature: Vec<u8>,
}

/// X25519 keypair.
#[derive(Clone)]
pub(crate) struct Keypair {
    secret: SecretKey,
    public: [u8; 32],
}

impl Keypair {
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret.0
    }

    pub(crate) fn generate() -> Result<Keypair, Error> {
        let mut sk = [0u8; 32];
        getrandom::fill(&mut sk).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let kp = Keypair::from_secret(sk);
        sk.zeroize();
        Ok(kp)
    }

    fn from_secret(sk: [u8; 32]) -> Keypair {
        Keypair {
            public: x25519(sk, X25519_BASEPOINT_BYTES),
            secret: SecretKey(sk),
        }
    }

    /// Signs the public DH key with the identity, so the remote can bind this
    /// connection's key to our peer id.
    pub(crate) fn into_authentic(self, id: &identity::Keypair) -> Result<AuthenticKeypair, Error> {
        let signature = id.sign(&[STATIC_KEY_DOMAIN, &self.public].concat())?;
        Ok(AuthenticKeypair {
            keypair: self,
            public: id.public(),
            signature,
        })
    }
}

#[derive(Clone)]
struct SecretKey([u8; 32]);

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize()
    }
}

impl snow::types::Dh for Keypair {
    fn name(&self) -> &'static str {
        "25519"
    }
    fn pub_len(&self) -> usize {
        32
    }
    fn priv_len(&self) -> usize {
        32
    }
    fn pubkey(&self) -> &[u8] {
        &self.public
    }
    fn privkey(&self) -> &[u8] {
        &self.secret.0
    }
    fn set(&mut self, sk: &[u8]) {
        let mut secret = [0u8; 32];
        secret.copy_from_slice(sk);
        *self = Keypair::from_secret(secret);
        secret.zeroize();
    }
    fn generate(&mut self, rng: &mut dyn snow::types::Random) {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        *self = Keypair::from_secret(secret);
        secret.zeroize();
    }
    fn dh(&self, pk: &[u8], shared_secret: &mut [u8]) -> Result<(), snow::Error> {
        let p: [u8; 32] = pk
            .get(..32)
            .and_then(|p| p.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        shared_secret[..32].copy_from_slice(&x25519(self.secret.0, p));
        Ok(())
    }
}

/// x25519-dalek for Curve25519 (ring has no static-key X25519), ring for the rest.
pub(crate) struct Resolver;

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        RingResolver.resolve_rng()
    }
    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        matches!(choice, snow::params::DHChoice::Curve25519)
            .then(|| Box::new(Keypair::from_secret([0; 32])) as Box<dyn snow::types::Dh>)
    }
    fn resolve_hash(
        &self,
        choice: &snow::params::HashChoice,
    ) -> Option<Box<dyn snow::types::Hash>> {
        RingResolver.resolve_hash(choice)
    }
    fn resolve_cipher(
        &self,
        choice: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        RingResolver.resolve_cipher(choice)
    }
}
