//! A node's persistent libp2p identity, kept in its database directory so its
//! PeerId survives restarts.

use libp2p::identity::Keypair;
use std::path::Path;

pub fn load_or_create(db: &Path) -> Result<Keypair, String> {
    let path = db.join("node.key");
    if path.exists() {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        return Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| format!("{}: not a valid identity key: {e}", path.display()));
    }
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| format!("encoding identity key: {e}"))?;
    std::fs::create_dir_all(db).map_err(|e| format!("{}: {e}", db.display()))?;
    crate::durable::write_raw_atomic(&path, &bytes).map_err(|e| e.to_string())?;
    Ok(key)
}
