//! The cluster secret: who holds it is admitted, everyone else is refused in the
//! noise handshake. The secret never travels: both sides hash it into the noise
//! prologue, and a peer with another prologue cannot complete the handshake (its
//! transcript hash differs, so the first authenticated message fails to decrypt).
//! That costs nothing per byte, unlike a second stream cipher (libp2p `pnet`); see
//! BENCHMARKS.md for the measurement behind the choice.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Fewest characters a secret file must hold: `vast secret` writes 64 hex digits
/// (256 bits); anything much shorter could be guessed offline from one handshake.
pub const MIN_SECRET_CHARS: usize = 32;

/// A loaded cluster secret, kept only as the prologue derived from it.
#[derive(Clone)]
pub struct Secret {
    prologue: Vec<u8>,
    /// Where it came from, for messages.
    pub path: PathBuf,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(from {})", self.path.display())
    }
}

/// Why a secret file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cluster secret file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cluster secret file {path} holds {chars} characters; a secret needs at least {MIN_SECRET_CHARS} (make one with `vast secret`)")]
    TooShort { path: PathBuf, chars: usize },
}

impl Secret {
    /// Reads a secret file: one line, surrounding whitespace ignored.
    pub fn load(path: &Path) -> Result<Secret, SecretError> {
        let io = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        let raw = std::fs::read(path).map_err(io)?;
        let text = String::from_utf8_lossy(&raw);
        let secret = text.trim();
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(SecretError::TooShort {
                path: path.to_path_buf(),
                chars: secret.chars().count(),
            });
        }
        warn_if_readable_by_others(path);
        Ok(Secret::from_bytes(secret.as_bytes(), path))
    }

    fn from_bytes(secret: &[u8], path: &Path) -> Secret {
        let mut h = Sha256::new();
        h.update(b"vast/cluster-secret/v1\0");
        h.update(secret);
        let mut prologue = b"vast/1 ".to_vec();
        prologue.extend_from_slice(&h.finalize());
        Secret {
            prologue,
            path: path.to_path_buf(),
        }
    }

    /// The noise prologue both sides must share.
    pub fn prologue(&self) -> Vec<u8> {
        self.prologue.clone()
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", m.permissions().mode() & 0o777), "the cluster secret file is readable by other users; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// A new random secret: 256 bits as 64 lowercase hex digits.
pub fn generate() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_and_derive_stable_prologues() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        let p = Path::new("x");
        assert_eq!(
            Secret::from_bytes(a.as_bytes(), p).prologue(),
            Secret::from_bytes(a.as_bytes(), p).prologue()
        );
        assert_ne!(
            Secret::from_bytes(a.as_bytes(), p).prologue(),
            Secret::from_bytes(b.as_bytes(), p).prologue()
        );
    }

    #[test]
    fn short_and_missing_files_are_named() {
        let dir = std::env::temp_dir().join(format!("vast-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s");
        std::fs::write(&f, "hunter2\n").unwrap();
        let e = Secret::load(&f).unwrap_err().to_string();
        assert!(
            e.contains("at least 32") && e.contains(f.to_str().unwrap()),
            "{e}"
        );
        let e = Secret::load(&dir.join("nope")).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        std::fs::write(&f, format!("{}\n", generate().unwrap())).unwrap();
        Secret::load(&f).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
