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

/// A fresh database directory, removed on drop (kept, with the node logs beside
/// it, when `VAST_TEST_KEEP` is set).
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
        if std::env::var_os("VAST_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
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

/// A free TCP port on loopback (bound, then released for the node to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `vast start` process, killed on drop.
pub struct NodeProc {
    pub id: String,
    pub endpoint: String,
    pub db: PathBuf,
    pub child: Option<std::process::Child>,
    pub log: PathBuf,
    /// The cluster secret file the node was started with, if any.
    pub secret: Option<String>,
}

impl NodeProc {
    /// Starts node `id` on `db` listening on `port`, joining `peers`.
    pub fn start(
        id: &str,
        db: &Path,
        port: u16,
        peers: &[&str],
        components: Option<&str>,
    ) -> NodeProc {
        Self::start_env(id, db, port, peers, components, &[])
    }

    /// `start` with extra environment variables (configuration keys).
    pub fn start_env(
        id: &str,
        db: &Path,
        port: u16,
        peers: &[&str],
        components: Option<&str>,
        env: &[(&str, &str)],
    ) -> NodeProc {
        let endpoint = format!("127.0.0.1:{port}");
        let log = db.with_extension("log");
        let mut args: Vec<String> = vec![
            "-i".into(),
            id.into(),
            "-d".into(),
            db.display().to_string(),
            "-e".into(),
            endpoint.clone(),
            "start".into(),
        ];
        for p in peers {
            args.push("--peer".into());
            args.push(p.to_string());
        }
        if let Some(c) = components {
            args.push(format!("--components={c}"));
        }
        let child = Command::new(env!("CARGO_BIN_EXE_vast"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting a node");
        let n = NodeProc {
            id: id.into(),
            endpoint,
            db: db.to_path_buf(),
            child: Some(child),
            log,
            secret: env
                .iter()
                .find(|(k, _)| *k == "VAST_CLUSTER__SECRET_FILE")
                .map(|(_, v)| v.to_string()),
        };
        n.wait_ready();
        n
    }

    /// Waits until the node answers `status`.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut args = vec!["-e", &self.endpoint];
        if let Some(s) = &self.secret {
            args.extend(["--secret-file", s.as_str()]);
        }
        args.push("status");
        loop {
            let out = vast_with(&args, None, Duration::from_secs(10));
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} never became ready: {}\nlog:\n{}",
                self.id,
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// `vast -e ENDPOINT args...`
pub fn vast_at(endpoint: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut full = vec!["-e", endpoint];
    full.extend_from_slice(args);
    vast_with(&full, stdin, Duration::from_secs(60))
}

/// Like `vast_at`, expecting success; returns stdout.
pub fn vast_ok(endpoint: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = vast_at(endpoint, args, stdin);
    assert!(
        out.status.success(),
        "vast -e {endpoint} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `f` until it returns true or `secs` pass.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the node at `ep` lists member `id` as reachable, running at least
/// `components` components.
pub fn wait_member(ep: &str, id: &str, components: usize) {
    eventually(20, &format!("{ep} sees {id}"), || {
        let p: serde_json::Value =
            serde_json::from_str(&vast_ok(ep, &["peers", "--json"], None)).unwrap();
        p.as_array().unwrap().iter().any(|m| {
            m["id"] == id
                && m["reachable"] == true
                && m["components"]
                    .as_array()
                    .is_some_and(|c| c.len() >= components)
        })
    });
}

/// The header of the small Zeek conn logs multi-node tests import.
pub const CONN_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n";

/// Zeek conn lines with uids `<prefix>0` .. `<prefix>(n-1)`.
pub fn conn_lines(prefix: &str, range: std::ops::Range<u32>) -> String {
    let mut s = String::new();
    for i in range {
        s.push_str(&format!(
            "1258531221.{:06}\t{prefix}{i}\t10.0.{}.{}\t{}\t10.1.0.1\t80\ttcp\n",
            i % 1_000_000,
            (i / 250) % 250,
            i % 250,
            1024 + i % 60000
        ));
    }
    s
}

/// A Zeek conn log of `n` events with uids `<prefix>0` .. `<prefix>(n-1)`.
pub fn conn_log(prefix: &str, n: u32) -> String {
    format!("{CONN_HEADER}{}", conn_lines(prefix, 0..n))
}
