//! Cluster security with real processes: admission by the cluster secret,
//! protected mode, a hostile peer on the data plane, stolen node ids, confined
//! spawned sources, abandoned exports and key file modes.

mod common;

use common::*;
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vast_node::net::noise;
use vast_node::proto::{DataRequest, DataResponse, Member};

/// Multi-node tests start several debug-build processes each; one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new secret file made by `vast secret`, 0600.
fn secret_file(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let out = vast_with(&["secret"], None, Duration::from_secs(10));
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(s.trim().len(), 64, "{s:?}");
    assert!(s.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// `vast --secret-file S -e EP args...`
fn vast_s(ep: &str, secret: &Path, args: &[&str]) -> std::process::Output {
    let mut full = vec!["--secret-file", secret.to_str().unwrap()];
    full.extend_from_slice(args);
    vast_at(ep, &full, None)
}

fn ok_s(ep: &str, secret: &Path, args: &[&str]) -> String {
    let out = vast_s(ep, secret, args);
    assert!(
        out.status.success(),
        "vast {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The node answers `status` (and quickly).
fn still_answers(ep: &str, secret: &Path) {
    let t = Instant::now();
    ok_s(ep, secret, &["status"]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "status took {:?}",
        t.elapsed()
    );
}

fn count_s(ep: &str, secret: &Path, q: &str) -> u64 {
    ok_s(ep, secret, &["count", q]).trim().parse().unwrap()
}

// ------------------------------------------------------------ a hostile peer

/// What a hostile peer writes: a frame, or a length prefix that lies.
#[derive(Debug)]
enum Raw {
    Frame(Vec<u8>),
    Lie { claim: u32, body: Vec<u8> },
}

#[derive(Clone, Default)]
struct HostileCodec;

#[async_trait::async_trait]
impl request_response::Codec for HostileCodec {
    type Protocol = StreamProtocol;
    type Request = Raw;
    type Response = Vec<u8>;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<Raw> {
        Err(std::io::Error::other("a hostile peer serves nothing"))
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        use futures::AsyncReadExt;
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
        io.read_exact(&mut buf).await?;
        Ok(buf)
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Raw,
    ) -> std::io::Result<()> {
        use futures::AsyncWriteExt;
        let (claim, body) = match req {
            Raw::Frame(b) => (b.len() as u32, b),
            Raw::Lie { claim, body } => (claim, body),
        };
        io.write_all(&claim.to_le_bytes()).await?;
        io.write_all(&body).await?;
        io.close().await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

type Hostile = Swarm<request_response::Behaviour<HostileCodec>>;

/// A peer of our own making: tcp, our noise upgrade with the given prologue, yamux,
/// and the data-plane protocol with a codec that writes whatever it is told.
fn hostile(prologue: Option<Vec<u8>>) -> Hostile {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            move |k: &libp2p::identity::Keypair| {
                noise::Config::new(k).map(|c| c.with_prologue(prologue.clone().unwrap_or_default()))
            },
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                HostileCodec,
                [(StreamProtocol::new("/vast/data/4"), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

async fn dial(s: &mut Hostile, ep: &str) -> Result<PeerId, String> {
    let addr: Multiaddr = vast_node::net::parse_endpoint(ep).unwrap();
    s.dial(addr).map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, s.select_next_some()).await {
            Err(_) => return Err("dial timed out".into()),
            Ok(SwarmEvent::ConnectionEstablished { peer_id, .. }) => return Ok(peer_id),
            Ok(SwarmEvent::OutgoingConnectionError { error, .. }) => return Err(error.to_string()),
            Ok(_) => {}
        }
    }
}

/// Sends one raw request; the node's answer, or why there was none.
async fn send(s: &mut Hostile, peer: PeerId, raw: Raw) -> Result<DataResponse, String> {
    let id = s.behaviour_mut().send_request(&peer, raw);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, s.select_next_some()).await {
            Err(_) => return Err("no answer in time".into()),
            Ok(SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) if request_id == id => {
                return DataResponse::decode(&response).map_err(|e| e.to_string())
            }
            Ok(SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            })) if request_id == id => return Err(format!("stream failed: {error}")),
            Ok(_) => {}
        }
    }
}

/// The node still answers a data-plane request, within a second.
async fn alive(s: &mut Hostile, peer: PeerId, after: &str) {
    let t = Instant::now();
    let ping = DataRequest::Lookup {
        expr: "#type == \"nothing\"".into(),
    }
    .encode();
    match send(s, peer, Raw::Frame(ping)).await {
        Ok(DataResponse::Hits(_)) => {}
        other => panic!("after {after}: the node did not answer a lookup: {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "after {after}: answered in {:?}",
        t.elapsed()
    );
}

/// Sends `raw`, expects it refused (an error containing `needle`, or a reset
/// stream when `needle` is empty), and checks that the node still answers.
async fn refused(s: &mut Hostile, peer: PeerId, raw: Raw, what: &str, needle: &str) {
    expect_error(send(s, peer, raw).await, what, needle);
    alive(s, peer, what).await;
}

fn expect_error(r: Result<DataResponse, String>, what: &str, needle: &str) {
    match r {
        Ok(DataResponse::Error(e) | DataResponse::NotMember(e)) => {
            assert!(e.contains(needle), "{what}: {e}")
        }
        // Refused at the frame: the stream is reset, which is also a refusal.
        Err(e) if needle.is_empty() => eprintln!("{what}: refused ({e})"),
        other => panic!("{what}: expected an error containing {needle:?}, got {other:?}"),
    }
}

/// A batch whose schema nests a record `depth` deep, serialized on a big stack as
/// an attacker's own tooling would.
fn deep_batch(depth: usize) -> Vec<u8> {
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(move || {
            use vast_node::data::{Batch, Field, Schema, Type};
            let mut t = Type::Count;
            for _ in 0..depth {
                t = Type::Record(vec![Field::new("x", t)]);
            }
            let b = Batch {
                schema: Schema {
                    name: "deep".into(),
                    fields: vec![Field::new("x", t)],
                },
                rows: 0,
                columns: vec![],
            };
            let bytes = b.to_bytes();
            std::mem::forget(b); // dropping recurses as deep as building did
            bytes
        })
        .unwrap()
        .join()
        .unwrap()
}

fn dir_digest(dir: &Path) -> Vec<(String, u64, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (
                p.display().to_string(),
                b.len() as u64,
                b[..b.len().min(4096)].to_vec(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn admission_needs_the_cluster_secret() {
    let _serial = serial();
    let root = TempDb::new("admission");
    std::fs::create_dir_all(root.path()).unwrap();
    let secret = secret_file(root.path(), "cluster.secret");
    let wrong = secret_file(root.path(), "other.secret");
    let s = secret.to_str().unwrap();
    let n1 = NodeProc::start_env(
        "n1",
        &root.path().join("n1"),
        free_port(),
        &[],
        None,
        &[("VAST_CLUSTER__SECRET_FILE", s)],
    );
    let ep = n1.endpoint.clone();
    still_answers(&ep, &secret);
    // The identity key is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(root.path().join("n1/node.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "node.key mode {mode:o}");

    // No secret, a wrong secret: refused in the handshake, with one clear line.
    let out = vast_at(&ep, &["status"], None);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("secret") && e.lines().count() == 1, "{e}");
    let out = vast_s(&ep, &wrong, &["stop"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("secret differs"), "{e}");
    // A node with another secret cannot join either.
    let n2 = TempDb::new("admission-n2");
    let port2 = free_port();
    let mut bad = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args(["-i", "n2", "-d", n2.path().to_str().unwrap(), "-e"])
        .arg(format!("127.0.0.1:{port2}"))
        .args([
            "--secret-file",
            wrong.to_str().unwrap(),
            "start",
            "--peer",
            &ep,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let peers: serde_json::Value = serde_json::from_str(&ok_s(&ep, &secret, &["peers"])).unwrap();
    assert_eq!(peers.as_array().unwrap().len(), 1, "{peers}");
    let _ = bad.kill();
    let _ = bad.wait();
    // Raw peers of our own: no prologue, another prologue.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut nosecret = hostile(None);
        assert!(dial(&mut nosecret, &ep).await.is_err());
        let other = vast_node::net::Secret::load(&wrong).unwrap().prologue();
        let mut other_peer = hostile(Some(other));
        assert!(dial(&mut other_peer, &ep).await.is_err());
    });
    // The node logged the refusals with the remote address, and still works.
    let log = std::fs::read_to_string(&n1.log).unwrap();
    assert!(
        log.contains("refused a peer in the connection handshake"),
        "{log}"
    );
    assert!(log.contains("127.0.0.1"), "{log}");
    still_answers(&ep, &secret);
    // The node stops only for a holder of the secret.
    ok_s(&ep, &secret, &["stop"]);
}

#[test]
fn protected_mode_without_a_secret() {
    let _serial = serial();
    let root = TempDb::new("protected");
    std::fs::create_dir_all(root.path()).unwrap();
    let port = free_port();
    for ep in [format!("0.0.0.0:{port}"), format!("[::]:{port}")] {
        let t = Instant::now();
        let out = vast_with(
            &[
                "-d",
                root.path().join("db").to_str().unwrap(),
                "-e",
                &ep,
                "start",
            ],
            None,
            Duration::from_secs(20),
        );
        assert!(!out.status.success(), "{ep} started without a secret");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("--secret-file"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
    // Loopback without a secret works, with a warning.
    let n = NodeProc::start("n1", &root.path().join("db"), port, &[], None);
    vast_ok(&n.endpoint, &["status"], None);
    let log = std::fs::read_to_string(&n.log).unwrap();
    assert!(log.contains("loopback only"), "{log}");
    drop(n);
    // With a secret, a wildcard address is fine.
    let secret = secret_file(root.path(), "s");
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args(["-d", root.path().join("db2").to_str().unwrap(), "-e"])
        .arg(format!("0.0.0.0:{port}"))
        .args(["--secret-file", secret.to_str().unwrap(), "start"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ep = format!("127.0.0.1:{port}");
    eventually(30, "the wildcard node answers", || {
        vast_s(&ep, &secret, &["status"]).status.success()
    });
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_hostile_peer_with_the_secret_cannot_crash_stall_or_corrupt_a_node() {
    let _serial = serial();
    let Some(data) = data_dir() else { return };
    let root = TempDb::new("hostile");
    std::fs::create_dir_all(root.path()).unwrap();
    let secret = secret_file(root.path(), "cluster.secret");
    let s = secret.to_str().unwrap();
    let env = [
        ("VAST_CLUSTER__SECRET_FILE", s),
        ("VAST_CLUSTER__CURSOR_IDLE_TIMEOUT", "2"),
        ("VAST_CLUSTER__MAX_CURSORS_PER_PEER", "4"),
    ];
    let n1 = NodeProc::start_env("n1", &root.path().join("n1"), free_port(), &[], None, &env);
    let n2 = NodeProc::start_env(
        "n2",
        &root.path().join("n2"),
        free_port(),
        &[&n1.endpoint],
        None,
        &env,
    );
    let ep = n1.endpoint.clone();
    eventually(20, "n1 sees n2", || {
        let p: serde_json::Value = serde_json::from_str(&ok_s(&ep, &secret, &["peers"])).unwrap();
        p.as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "n2" && m["reachable"] == true)
    });
    let n2_peer = {
        let st: serde_json::Value =
            serde_json::from_str(&ok_s(&n2.endpoint, &secret, &["status"])).unwrap();
        st["peer"].as_str().unwrap().to_string()
    };
    let conn = std::fs::read(data.join("zeek/conn.log.gz")).unwrap();
    let out = vast_at(&ep, &["--secret-file", s, "import", "zeek"], Some(&conn));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = count_s(&ep, &secret, ":addr == 192.168.1.104");
    assert_eq!(before, 2821);
    let archive = root.path().join("n1/archive");
    let digest = dir_digest(&archive);

    let prologue = vast_node::net::Secret::load(&secret).unwrap().prologue();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut h = hostile(Some(prologue));
        let node = dial(&mut h, &ep).await.expect("the secret admits us");
        let hello = |id: &str, peer: &str| {
            Raw::Frame(
                DataRequest::Hello {
                    from: Member {
                        id: id.into(),
                        peer: peer.into(),
                        addrs: vec![],
                        components: vec![],
                    },
                }
                .encode(),
            )
        };
        let quick = |t: Instant, what: &str| {
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "{what}: took {:?}",
                t.elapsed()
            )
        };

        // Garbage and truncated envelopes.
        refused(
            &mut h,
            node,
            Raw::Frame(b"\x00\x01garbage".to_vec()),
            "garbage",
            "malformed",
        )
        .await;
        let ingest = DataRequest::Ingest {
            node: String::new(),
            session: [5; 16],
            seq: 1,
            batch: vec![7; 100],
            forwarded: false,
        }
        .encode();
        // Cut in half, an envelope may even read as another valid message: any
        // error will do, as long as nothing breaks.
        refused(
            &mut h,
            node,
            Raw::Frame(ingest[..ingest.len() / 2].to_vec()),
            "truncated",
            "",
        )
        .await;
        refused(
            &mut h,
            node,
            Raw::Frame(ingest[..ingest.len() - 9].to_vec()),
            "truncated tail",
            "",
        )
        .await;
        refused(&mut h, node, Raw::Frame(vec![]), "empty", "malformed").await;
        // Deep nesting: under 4 MB, 100,000 levels.
        let deep = deep_batch(100_000);
        assert!(deep.len() < 4 << 20);
        for req in [
            DataRequest::Ingest {
                node: String::new(),
                session: [5; 16],
                seq: 2,
                batch: deep.clone(),
                forwarded: false,
            },
            DataRequest::Discard {
                seq: 3,
                batch: deep.clone(),
            },
        ] {
            refused(
                &mut h,
                node,
                Raw::Frame(req.encode()),
                "deep nesting",
                "depth",
            )
            .await;
        }
        // An empty schema.
        let empty = vast_node::data::Batch {
            schema: vast_node::data::Schema {
                name: "x".into(),
                fields: vec![],
            },
            rows: 0,
            columns: vec![],
        };
        let req = DataRequest::Ingest {
            node: String::new(),
            session: [5; 16],
            seq: 4,
            batch: empty.to_bytes(),
            forwarded: false,
        };
        refused(
            &mut h,
            node,
            Raw::Frame(req.encode()),
            "empty schema",
            "empty",
        )
        .await;
        // Huge claimed lengths: over the cap, and under it with nothing behind.
        refused(
            &mut h,
            node,
            Raw::Lie {
                claim: u32::MAX,
                body: vec![1; 16],
            },
            "claim 4 GiB",
            "",
        )
        .await;
        refused(
            &mut h,
            node,
            Raw::Lie {
                claim: 30 << 20,
                body: vec![1; 16],
            },
            "claim 30 MiB",
            "",
        )
        .await;
        // A peer that is no member may not store, seal or forward.
        let t = Instant::now();
        refused(
            &mut h,
            node,
            Raw::Frame(
                DataRequest::Seal {
                    partition: [1; 16],
                    txn: [1; 16],
                }
                .encode(),
            ),
            "seal",
            "members",
        )
        .await;
        quick(t, "seal refusal");
        let fwd = DataRequest::Flush {
            node: String::new(),
            session: [5; 16],
            forwarded: true,
        };
        refused(
            &mut h,
            node,
            Raw::Frame(fwd.encode()),
            "forwarded flush",
            "members",
        )
        .await;
        // A live tap makes the node evaluate every batch for its opener, and its
        // pulls hold a request slot: members only (exporting nodes).
        refused(
            &mut h,
            node,
            Raw::Frame(
                DataRequest::LiveOpen {
                    expr: "#type == \"zeek.conn\"".into(),
                }
                .encode(),
            ),
            "live tap",
            "members",
        )
        .await;
        refused(
            &mut h,
            node,
            Raw::Frame(DataRequest::LiveNext { tap: [7; 16] }.encode()),
            "live tap pull",
            "members",
        )
        .await;
        // Someone else's cursor, and a made-up one.
        refused(
            &mut h,
            node,
            Raw::Frame(DataRequest::ExportNext { cursor: [9; 16] }.encode()),
            "made-up cursor",
            "unknown export cursor",
        )
        .await;

        // A stolen node id: n2's name with our key is refused, n2 stays n2.
        let t = Instant::now();
        refused(&mut h, node, hello("n2", &n2_peer), "stolen id", "pinned").await;
        quick(t, "stolen id refusal");

        // With a fresh id of our own we are a member (we hold the secret) ...
        let mut r = hostile(Some(
            vast_node::net::Secret::load(&secret).unwrap().prologue(),
        ));
        let node_r = dial(&mut r, &ep).await.unwrap();
        match send(&mut r, node_r, hello("rogue", "12D3KooWNotOurPeerIdAtAll")).await {
            Ok(DataResponse::Hello { me, members }) => {
                assert_eq!(me.id, "n1");
                let n2m = members.iter().find(|m| m.id == "n2").expect("n2 listed");
                assert_eq!(n2m.peer, n2_peer, "n2's PeerId was rewritten");
                let rogue = members
                    .iter()
                    .find(|m| m.id == "rogue")
                    .expect("rogue listed");
                assert_ne!(
                    rogue.peer, "12D3KooWNotOurPeerIdAtAll",
                    "a claimed PeerId was trusted"
                );
            }
            other => panic!("hello: {other:?}"),
        }
        // ... but a Store into a sealed partition is refused, and nothing changes.
        let parts = match send(
            &mut r,
            node_r,
            Raw::Frame(
                DataRequest::Lookup {
                    expr: "#type == \"zeek.conn\"".into(),
                }
                .encode(),
            ),
        )
        .await
        {
            Ok(DataResponse::Hits(h)) => h,
            other => panic!("lookup: {other:?}"),
        };
        assert!(!parts.is_empty());
        let victim = parts[0].partition;
        let mut b = vast_node::data::BatchBuilder::new(vast_node::data::Schema {
            name: "zeek.conn".into(),
            fields: vec![vast_node::data::Field::new(
                "x",
                vast_node::data::Type::Count,
            )],
        });
        b.column(0).push_value(&vast_node::data::Value::Count(1));
        b.finish_row();
        let store = DataRequest::Store {
            partition: victim,
            offset: 0,
            batch: b.finish().to_bytes(),
        };
        expect_error(
            send(&mut r, node_r, Raw::Frame(store.encode())).await,
            "store on a sealed partition",
            "sealed",
        );
        alive(&mut h, node, "store on a sealed partition").await;
        let seal = DataRequest::Seal {
            partition: victim,
            txn: [2; 16],
        };
        expect_error(
            send(&mut r, node_r, Raw::Frame(seal.encode())).await,
            "seal of a sealed partition",
            "",
        );
        // A member may not decide another coordinator's transaction either.
        let commit = DataRequest::Commit {
            txn: [2; 16],
            partitions: vec![victim],
        };
        let _ = send(&mut r, node_r, Raw::Frame(commit.encode())).await;
        let abort = DataRequest::AbortTxn {
            txn: [2; 16],
            partitions: vec![victim],
        };
        expect_error(
            send(&mut r, node_r, Raw::Frame(abort.encode())).await,
            "abort of a committed partition",
            "",
        );
        alive(&mut h, node, "transaction requests").await;
        // A member that stops answering fails queries (fail safe); once it has
        // gone, it is no longer asked.
        drop(r);
        tokio::time::sleep(Duration::from_secs(1)).await;

        // Open imports are capped per client: each holds partitions in memory.
        let small = {
            let mut b = vast_node::data::BatchBuilder::new(vast_node::data::Schema {
                name: "hostile".into(),
                fields: vec![vast_node::data::Field::new(
                    "x",
                    vast_node::data::Type::Count,
                )],
            });
            b.column(0).push_value(&vast_node::data::Value::Count(1));
            b.finish_row();
            b.finish().to_bytes()
        };
        for i in 0..17u8 {
            let req = DataRequest::Ingest {
                node: String::new(),
                session: [100 + i; 16],
                seq: 1,
                batch: small.clone(),
                forwarded: false,
            };
            let r = send(&mut h, node, Raw::Frame(req.encode())).await;
            if i < 16 {
                assert!(
                    matches!(r, Ok(DataResponse::Ack { .. })),
                    "session {i}: {r:?}"
                );
            } else {
                expect_error(r, "seventeenth open import", "too many open imports");
            }
        }
        alive(&mut h, node, "open imports").await;

        // Cursors: capped per client, owned, expiring.
        let open = || {
            Raw::Frame(
                DataRequest::ExportOpen {
                    expr: ":addr == 192.168.1.104".into(),
                    limit: 0,
                    allow_partial: false,
                    mode: vast_node::proto::ExportMode::History,
                }
                .encode(),
            )
        };
        let mut ids = vec![];
        for _ in 0..4 {
            match send(&mut h, node, open()).await {
                Ok(DataResponse::Cursor { cursor, .. }) => ids.push(cursor),
                other => panic!("open: {other:?}"),
            }
        }
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            4
        );
        refused(
            &mut h,
            node,
            open(),
            "fifth cursor",
            "too many open exports",
        )
        .await;
        let mut other = hostile(Some(
            vast_node::net::Secret::load(&secret).unwrap().prologue(),
        ));
        let node_b = dial(&mut other, &ep).await.unwrap();
        expect_error(
            send(
                &mut other,
                node_b,
                Raw::Frame(DataRequest::ExportNext { cursor: ids[0] }.encode()),
            )
            .await,
            "another client's cursor",
            "belongs to another client",
        );
        match send(
            &mut h,
            node,
            Raw::Frame(DataRequest::ExportNext { cursor: ids[0] }.encode()),
        )
        .await
        {
            Ok(DataResponse::Rows(r)) => assert!(!r.is_empty()),
            other => panic!("own cursor: {other:?}"),
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        refused(
            &mut h,
            node,
            Raw::Frame(DataRequest::ExportNext { cursor: ids[1] }.encode()),
            "idle cursor",
            "unknown export cursor",
        )
        .await;
    });
    drop(rt);

    // Still up, answering quickly, with the same data and the same n2.
    still_answers(&ep, &secret);
    assert_eq!(count_s(&ep, &secret, ":addr == 192.168.1.104"), before);
    // The hostile client's open imports are aborted now that it is gone.
    eventually(20, "the archive is as it was", || {
        dir_digest(&archive) == digest
    });
    let p: serde_json::Value = serde_json::from_str(&ok_s(&ep, &secret, &["peers"])).unwrap();
    let n2m = p
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "n2")
        .unwrap()
        .clone();
    assert_eq!(n2m["peer"], n2_peer.as_str(), "{p}");
    assert_eq!(n2m["reachable"], true, "{p}");
    // n2 still takes imports relayed through n1.
    let dns = std::fs::read(data.join("zeek/dns.log.gz")).unwrap();
    let out = vast_at(
        &ep,
        &["--secret-file", s, "--node", "n2", "import", "zeek"],
        Some(&dns),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count_s(&ep, &secret, "#type == \"zeek.dns\""), 5124);
    let log = std::fs::read_to_string(&n1.log).unwrap();
    assert!(log.contains("pinned to another identity"), "{log}");

    // A second process claiming n2 with another key is refused when it joins.
    let thief = TempDb::new("hostile-thief");
    let out = vast_with(
        &[
            "-i",
            "n2",
            "-d",
            thief.path().to_str().unwrap(),
            "-e",
            &format!("127.0.0.1:{}", free_port()),
            "--secret-file",
            s,
            "start",
            "--peer",
            &ep,
        ],
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("pinned"), "{e}");
    still_answers(&ep, &secret);
    assert_eq!(count_s(&ep, &secret, "#type == \"zeek.dns\""), 5124);
}

#[test]
fn spawned_sources_are_confined() {
    let _serial = serial();
    let Some(data) = data_dir() else { return };
    let root = TempDb::new("confine");
    let allowed = root.path().join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::copy(data.join("zeek/conn.log.gz"), allowed.join("conn.log.gz")).unwrap();
    std::fs::write(root.path().join("outside.csv"), "a,b\n1,2\n").unwrap();
    std::os::unix::fs::symlink(root.path().join("outside.csv"), allowed.join("link.csv")).unwrap();
    let fifo = allowed.join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let db = allowed.join("n1");
    let n1 = NodeProc::start_env(
        "n1",
        &db,
        free_port(),
        &[],
        None,
        &[
            ("VAST_SOURCE__READ_DIRS", allowed.to_str().unwrap()),
            ("VAST_SOURCE__INTERFACES", "eth7"),
        ],
    );
    let ep = n1.endpoint.clone();
    let spawn = |path: &Path, fmt: &str| {
        vast_at(
            &ep,
            &["spawn", "source", "-r", path.to_str().unwrap(), fmt],
            None,
        )
    };
    let refused = |path: &Path, fmt: &str, needle: &str| {
        let t = Instant::now();
        let out = spawn(path, fmt);
        let e = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{} was read", path.display());
        assert!(e.contains(needle), "{}: {e}", path.display());
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "took {:?}",
            t.elapsed()
        );
    };
    refused(
        &root.path().join("outside.csv"),
        "csv",
        "outside source.read-dirs",
    );
    refused(
        &allowed.join("../outside.csv"),
        "csv",
        "outside source.read-dirs",
    );
    refused(&allowed.join("link.csv"), "csv", "outside source.read-dirs");
    refused(Path::new("/etc/passwd"), "csv", "outside source.read-dirs");
    refused(&db.join("node.key"), "csv", "database directory");
    refused(&allowed, "csv", "a directory");
    // Two FIFOs at once used to block both runtime threads.
    let a = std::thread::spawn({
        let fifo = fifo.clone();
        let ep = ep.clone();
        move || {
            vast_at(
                &ep,
                &["spawn", "source", "-r", fifo.to_str().unwrap(), "csv"],
                None,
            )
        }
    });
    refused(&fifo, "csv", "a FIFO");
    assert!(!a.join().unwrap().status.success());
    vast_ok(&ep, &["status"], None);
    refused(Path::new("/dev/zero"), "csv", "outside source.read-dirs");
    // Interfaces outside source.interfaces.
    let out = vast_at(&ep, &["spawn", "source", "-i", "lo", "pcap"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("source.interfaces"));
    // What is allowed works.
    let label = vast_ok(
        &ep,
        &[
            "spawn",
            "source",
            "-r",
            allowed.join("conn.log.gz").to_str().unwrap(),
            "zeek",
        ],
        None,
    );
    assert_eq!(label.trim(), "source-0");
    eventually(30, "the spawned source is imported", || {
        let out = vast_at(&ep, &["count", "#type == \"zeek.conn\""], None);
        String::from_utf8_lossy(&out.stdout).trim() == "8462"
    });
    drop(n1);

    // With no read-dirs, every remote file read is refused, naming the key.
    let n2 = NodeProc::start("n2", &root.path().join("n2"), free_port(), &[], None);
    let out = vast_at(
        &n2.endpoint,
        &[
            "spawn",
            "source",
            "-r",
            allowed.join("conn.log.gz").to_str().unwrap(),
            "zeek",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("source.read-dirs"));
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn abandoned_exports_release_their_cursors() {
    let _serial = serial();
    let root = TempDb::new("abandon");
    std::fs::create_dir_all(root.path()).unwrap();
    let n1 = NodeProc::start("n1", &root.path().join("n1"), free_port(), &[], None);
    let ep = n1.endpoint.clone();
    vast_ok(&ep, &["import", "-n", "400000", "test"], None);
    let pid = n1.child.as_ref().unwrap().id();
    let cursors = || -> u64 {
        let st: serde_json::Value =
            serde_json::from_str(&vast_ok(&ep, &["status", "--detailed"], None)).unwrap();
        st["export-cursors"].as_u64().unwrap()
    };
    // `export json ... | head -1`, ten at a time: each client reads one line and goes.
    let round = || {
        let kids: Vec<_> = (0..10)
            .map(|_| {
                std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
                    .args(["-e", &ep, "export", "json", ":count >= 0"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut k in kids {
            use std::io::BufRead;
            let mut line = String::new();
            std::io::BufReader::new(k.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert!(line.starts_with('{'), "{line:?}");
            let _ = k.kill();
            let _ = k.wait();
        }
        eventually(20, "abandoned cursors are closed", || cursors() == 0);
    };
    round();
    let after_one = rss_kib(pid);
    for _ in 0..3 {
        round();
    }
    let after_four = rss_kib(pid);
    eprintln!("node RSS after 10 abandoned exports: {after_one} KiB; after 40: {after_four} KiB");
    assert!(after_four < 1 << 20, "RSS {after_four} KiB");
    assert!(
        after_four < after_one + 150 * 1024,
        "RSS grew from {after_one} to {after_four} KiB"
    );
}

/// Sockets that connect and never speak are dropped after
/// `cluster.handshake-timeout`, so they cannot hold the node's pending-connection
/// slots (a quarter of `max-connections`, at least 4) and keep the CLI out.
#[test]
fn silent_connections_are_dropped_after_the_handshake_timeout() {
    use std::io::Read;
    let _serial = serial();
    let root = TempDb::new("silent");
    std::fs::create_dir_all(root.path()).unwrap();
    let env = [
        ("VAST_CLUSTER__HANDSHAKE_TIMEOUT", "2"),
        ("VAST_CLUSTER__MAX_CONNECTIONS", "8"),
    ];
    let n = NodeProc::start_env("n1", &root.path().join("db"), free_port(), &[], None, &env);
    vast_ok(&n.endpoint, &["status"], None);
    let opened = Instant::now();
    let silent: Vec<std::net::TcpStream> = (0..6)
        .map(|_| std::net::TcpStream::connect(&n.endpoint).unwrap())
        .collect();
    for mut s in silent {
        // Without a deadline on the handshake the read below would time out.
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 256];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "a silent socket is still open after {:?}: {e}",
                    opened.elapsed()
                ),
            }
        }
    }
    // libp2p's own default is 10 s: the key must have been honoured.
    assert!(
        opened.elapsed() < Duration::from_secs(7),
        "{:?}",
        opened.elapsed()
    );
    vast_ok(&n.endpoint, &["status"], None);
}
