//! Helpers for tests that run the real `vast` binary.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `../shared/data`, or `None` (the caller skips with a message) when absent.
pub fn data_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    if d.is_dir() {
        Some(d.canonicalize().unwrap())
    } else {
        eprintln!("skipping: ../shared/data is not present beside the repository");
        None
    }
}

/// A fresh database directory, removed on drop.
pub struct TempDb(pub PathBuf);

impl TempDb {
    pub fn new(name: &str) -> TempDb {
        let d = std::env::temp_dir().join(format!(
            "vast-test-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&d);
        TempDb(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `vast` with `args`, feeding `stdin` bytes, killed after `timeout`.
pub fn vast_with(args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vast"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting vast");
    let pid = child.id();
    let feeder = stdin.map(|bytes| {
        let mut s = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = s.write_all(&bytes);
        })
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(timeout).is_err() {
            // Still running: kill it so the test fails instead of hanging.
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let out = child.wait_with_output().expect("waiting for vast");
    let _ = tx.send(());
    if let Some(f) = feeder {
        let _ = f.join();
    }
    out
}

/// `vast -N -d DB args...`, expecting success; returns stdout.
pub fn vast_n(db: &TempDb, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut full = vec!["-N", "-d", db.path().to_str().unwrap()];
    full.extend_from_slice(args);
    let out = vast_with(&full, stdin, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "vast {full:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Pipes a data file into `vast -N import FORMAT`.
pub fn import(db: &TempDb, format: &str, file: &Path) -> String {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut full = vec!["-N", "-d", db.path().to_str().unwrap(), "import", format];
    let out = vast_with(&full, Some(&bytes), Duration::from_secs(120));
    full.truncate(5);
    assert!(
        out.status.success(),
        "import {} failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn count(db: &TempDb, args: &[&str]) -> u64 {
    let mut a = vec!["count"];
    a.extend_from_slice(args);
    let out = vast_n(db, &a, None);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("count printed {out:?}"))
}

/// Exported JSON lines, parsed.
pub fn export_json(db: &TempDb, query: &str) -> Vec<serde_json::Value> {
    vast_n(db, &["export", "json", query], None)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad json line {l:?}: {e}")))
        .collect()
}
