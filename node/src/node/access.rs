//! Every access decision of a node, in one place: who is asking, and may they.
//!
//! Who can ask at all is settled before any of this runs: the noise handshake
//! admits only holders of the cluster secret (or, without a secret, only local
//! processes, since the node then listens on loopback). Everyone admitted is
//! trusted as an operator with full rights; there are no per-user roles. Inside
//! that perimeter:
//!
//! - a caller is identified by the PeerId its connection authenticated, never by
//!   a name inside a message;
//! - a *member* is a peer that introduced itself with a node id pinned to that
//!   PeerId; only members may send the requests nodes send each other (store and
//!   seal partitions, relayed ingest and flush);
//! - an export cursor belongs to the peer that opened it;
//! - sources spawned inside a node read only regular files under
//!   `source.read-dirs` (never the database or key files) and capture only on
//!   `source.interfaces`.
//!
//! The control plane (kameo remote messages: status, spawn, kill, stop, peers,
//! count) does not tell a handler who sent a message, so every control operation
//! is open to every admitted peer, and none is member-only.

use crate::proto::DataRequest;
use libp2p::PeerId;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Who sent a data-plane request, as the connection authenticated them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// An admitted peer that is not a member: an operator's CLI.
    Operator(PeerId),
    /// A cluster member: a node whose id is pinned to this PeerId.
    Member { id: String, peer: PeerId },
}

impl Caller {
    pub fn peer(&self) -> PeerId {
        match self {
            Caller::Operator(p) | Caller::Member { peer: p, .. } => *p,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Denied {
    #[error("{what} is accepted only from cluster members; peer {peer} is not one")]
    MembersOnly { what: &'static str, peer: PeerId },
    #[error("export cursor {cursor} belongs to another client")]
    NotYourCursor { cursor: String },
    #[error("node {node} refuses remote file reads: set source.read-dirs (env VAST_SOURCE__READ_DIRS) to the directories spawned sources may read")]
    NoReadDirs { node: String },
    #[error("{path} is outside source.read-dirs ({dirs})")]
    OutsideReadDirs { path: String, dirs: String },
    #[error("{path} is inside the database directory or a key file, which sources never read")]
    Protected { path: String },
    #[error("{path} is {kind}; spawned sources read regular files only")]
    NotRegular { path: String, kind: &'static str },
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("interface {iface} is not in source.interfaces ({allowed})")]
    Interface { iface: String, allowed: String },
}

/// May `caller` send `req`?
pub fn data_request(caller: &Caller, req: &DataRequest) -> Result<(), Denied> {
    let members_only = match req {
        DataRequest::Store { .. } => Some("store"),
        DataRequest::Seal { .. } => Some("seal"),
        DataRequest::Commit { .. } => Some("commit"),
        DataRequest::AbortTxn { .. } => Some("a transaction abort"),
        DataRequest::Outcome { .. } => Some("a transaction outcome query"),
        DataRequest::LiveOpen { .. } => Some("a live tap"),
        DataRequest::LiveNext { .. } => Some("a live tap pull"),
        DataRequest::LiveClose { .. } => Some("a live tap close"),
        DataRequest::Abort {
            forwarded: true, ..
        } => Some("a forwarded abort"),
        DataRequest::Ingest {
            forwarded: true, ..
        } => Some("a forwarded ingest"),
        DataRequest::Flush {
            forwarded: true, ..
        } => Some("a forwarded flush"),
        DataRequest::Hello { .. }
        | DataRequest::Ingest { .. }
        | DataRequest::Flush { .. }
        | DataRequest::Abort { .. }
        | DataRequest::Lookup { .. }
        | DataRequest::Schemas
        | DataRequest::Held
        | DataRequest::Fetch { .. }
        | DataRequest::ExportOpen { .. }
        | DataRequest::ExportNext { .. }
        | DataRequest::ExportClose { .. }
        | DataRequest::Discard { .. } => None,
    };
    match (members_only, caller) {
        (Some(what), Caller::Operator(peer)) => Err(Denied::MembersOnly { what, peer: *peer }),
        _ => Ok(()),
    }
}

/// May `caller` use the cursor `owner` opened?
pub fn cursor(caller: &Caller, owner: PeerId, cursor: &str) -> Result<(), Denied> {
    if caller.peer() == owner {
        Ok(())
    } else {
        Err(Denied::NotYourCursor {
            cursor: cursor.to_string(),
        })
    }
}

/// What spawned sources may read and capture on one node.
#[derive(Clone, Debug)]
pub struct SourcePolicy {
    /// The node, for messages.
    pub node: String,
    /// `source.read-dirs`, resolved; directories that do not exist are left out.
    pub read_dirs: Vec<PathBuf>,
    /// Paths never read: the database directory and key files, resolved.
    pub protected: Vec<PathBuf>,
    /// `source.interfaces`; `*` allows any.
    pub interfaces: Vec<String>,
}

impl SourcePolicy {
    /// Resolves the configured directories and protected paths once at start.
    pub fn new(
        node: &str,
        read_dirs: &[PathBuf],
        protected: &[PathBuf],
        interfaces: &[String],
    ) -> SourcePolicy {
        let resolve = |p: &PathBuf| match p.canonicalize() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "ignoring a path of the source policy that cannot be resolved");
                None
            }
        };
        SourcePolicy {
            node: node.to_string(),
            read_dirs: read_dirs.iter().filter_map(resolve).collect(),
            protected: protected
                .iter()
                .filter_map(|p| p.canonicalize().ok())
                .collect(),
            interfaces: interfaces.to_vec(),
        }
    }

    /// May a source capture on `iface`?
    pub fn capture(&self, iface: &str) -> Result<(), Denied> {
        if self.interfaces.iter().any(|i| i == "*" || i == iface) {
            Ok(())
        } else {
            Err(Denied::Interface {
                iface: iface.to_string(),
                allowed: self.interfaces.join(", "),
            })
        }
    }

    fn check_path(&self, shown: &str, real: &Path) -> Result<(), Denied> {
        if self.protected.iter().any(|p| real.starts_with(p)) {
            return Err(Denied::Protected {
                path: shown.to_string(),
            });
        }
        if !self.read_dirs.iter().any(|d| real.starts_with(d)) {
            return Err(Denied::OutsideReadDirs {
                path: shown.to_string(),
                dirs: self
                    .read_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(())
    }

    /// Opens `path` for a spawned source, or says why not. Blocking: call it off
    /// the async runtime. The path is resolved first (so `..` and symlinks cannot
    /// leave the allowed directories), opened without blocking (so a FIFO cannot
    /// hang the caller), and the opened file is checked again: it must be a
    /// regular file, and what the descriptor really points at must still be
    /// allowed (so a path swapped between the check and the open is caught).
    pub fn open_file(&self, path: &str) -> Result<File, Denied> {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        if self.read_dirs.is_empty() {
            return Err(Denied::NoReadDirs {
                node: self.node.clone(),
            });
        }
        let unreadable = |e: std::io::Error| Denied::Unreadable {
            path: path.to_string(),
            reason: e.to_string(),
        };
        let real = Path::new(path).canonicalize().map_err(unreadable)?;
        self.check_path(path, &real)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_flags::O_NONBLOCK | libc_flags::O_NOCTTY | libc_flags::O_NOFOLLOW)
            .open(&real)
            .map_err(unreadable)?;
        let ft = file.metadata().map_err(unreadable)?.file_type();
        if !ft.is_file() {
            let kind = if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_dir() {
                "a directory"
            } else if ft.is_char_device() || ft.is_block_device() {
                "a device"
            } else if ft.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            };
            return Err(Denied::NotRegular {
                path: path.to_string(),
                kind,
            });
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            if let Ok(now) = std::fs::read_link(&fd_path) {
                self.check_path(path, &now)?;
            }
        }
        Ok(file)
    }
}

/// The open(2) flags we need, without a libc dependency (Linux values).
mod libc_flags {
    pub const O_NONBLOCK: i32 = 0o4000;
    pub const O_NOCTTY: i32 = 0o400;
    pub const O_NOFOLLOW: i32 = 0o400000;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    #[test]
    fn member_only_requests() {
        let op = Caller::Operator(peer());
        let member = Caller::Member {
            id: "n2".into(),
            peer: peer(),
        };
        let store = DataRequest::Seal {
            partition: [0; 16],
            txn: [0; 16],
        };
        assert!(data_request(&op, &store).is_err());
        assert!(data_request(&member, &store).is_ok());
        let fwd = DataRequest::Flush {
            node: String::new(),
            session: [0; 16],
            forwarded: true,
        };
        assert!(data_request(&op, &fwd).is_err());
        let flush = DataRequest::Flush {
            node: String::new(),
            session: [0; 16],
            forwarded: false,
        };
        assert!(data_request(&op, &flush).is_ok());
        let owner = peer();
        assert!(cursor(&Caller::Operator(owner), owner, "c").is_ok());
        assert!(cursor(&op, owner, "c").is_err());
    }

    #[test]
    fn files_are_confined() {
        let root = std::env::temp_dir().join(format!("vast-access-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let allowed = root.join("allowed");
        let db = allowed.join("vast.db");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::create_dir_all(root.join("secret")).unwrap();
        std::fs::write(allowed.join("ok.log"), "x").unwrap();
        std::fs::write(root.join("secret/s"), "x").unwrap();
        std::fs::write(db.join("node.key"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("secret/s"), allowed.join("link")).unwrap();
        let p = SourcePolicy::new(
            "n1",
            std::slice::from_ref(&allowed),
            std::slice::from_ref(&db),
            &["*".into()],
        );
        let s = |x: &Path| x.display().to_string();
        assert!(p.open_file(&s(&allowed.join("ok.log"))).is_ok());
        let e = p.open_file(&s(&root.join("secret/s"))).unwrap_err();
        assert!(matches!(e, Denied::OutsideReadDirs { .. }), "{e}");
        let e = p.open_file(&s(&allowed.join("../secret/s"))).unwrap_err();
        assert!(matches!(e, Denied::OutsideReadDirs { .. }), "{e}");
        let e = p.open_file(&s(&allowed.join("link"))).unwrap_err();
        assert!(matches!(e, Denied::OutsideReadDirs { .. }), "{e}");
        let e = p.open_file(&s(&db.join("node.key"))).unwrap_err();
        assert!(matches!(e, Denied::Protected { .. }), "{e}");
        let e = p.open_file(&s(&allowed)).unwrap_err();
        assert!(
            matches!(
                e,
                Denied::NotRegular {
                    kind: "a directory",
                    ..
                }
            ),
            "{e}"
        );
        let none = SourcePolicy::new("n1", &[], &[], &["*".into()]);
        let e = none.open_file(&s(&allowed.join("ok.log"))).unwrap_err();
        assert!(e.to_string().contains("source.read-dirs"), "{e}");
        let only = SourcePolicy::new("n1", &[], &[], &["eth0".into()]);
        assert!(only.capture("eth0").is_ok());
        assert!(only.capture("lo").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
