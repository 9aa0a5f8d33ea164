//! A node's persistent libp2p identity, kept in its database directory so its
//! PeerId survives restarts.

use libp2p::identity::Keypair;
use std::path::Path;

pub fn load_or_create(db: &Path) -> Result<Keypair, String> {
    let path = db.join("node.key");
    if path.exists() {
        restrict(&path);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        return Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| format!("{}: not a valid identity key: {e}", path.display()));
    }
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| format!("encoding identity key: {e}"))?;
    std::fs::create_dir_all(db).map_err(|e| format!("{}: {e}", db.display()))?;
    crate::durable::write_private_atomic(&path, &bytes).map_err(|e| e.to_string())?;
    Ok(key)
}

/// Keys made by older versions were world-readable: narrow them to the owner.
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(path = %path.display(), error = %e, "the identity key is readable by others and cannot be narrowed to 0600");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_files_are_private() {
        let dir = std::env::temp_dir().join(format!("vast-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = load_or_create(&dir).unwrap();
        let path = dir.join("node.key");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let b = load_or_create(&dir).unwrap();
        assert_eq!(a.public(), b.public());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
