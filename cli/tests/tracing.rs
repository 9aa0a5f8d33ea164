#![cfg_attr(not(feature = "otlp"), allow(dead_code, unused_imports))]
//! One `vast count` against a three-node cluster is one trace: an OTLP/HTTP
//! receiver inside the test collects the spans every process exports.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
struct Span {
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    name: String,
    node: String,
}

/// A minimal OTLP/HTTP (protobuf) receiver: POSTs to /v1/traces, decoded with the
/// opentelemetry-proto types.
fn receiver() -> (u16, Arc<Mutex<Vec<Span>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    if line.starts_with("POST /v1/traces") {
                        let req = ExportTraceServiceRequest::decode(&body[..])
                            .expect("valid OTLP protobuf");
                        let mut out = sink.lock().unwrap();
                        for rs in req.resource_spans {
                            let node = rs
                                .resource
                                .iter()
                                .flat_map(|r| r.attributes.iter())
                                .find(|kv| kv.key == "vast.node")
                                .and_then(|kv| kv.value.as_ref())
                                .map(|v| format!("{:?}", v.value))
                                .unwrap_or_default();
                            for ss in rs.scope_spans {
                                for s in ss.spans {
                                    out.push(Span {
                                        trace: s.trace_id,
                                        id: s.span_id,
                                        parent: s.parent_span_id,
                                        name: s.name,
                                        node: node.clone(),
                                    });
                                }
                            }
                        }
                    }
                    let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    (port, spans)
}

#[cfg(feature = "otlp")]
#[test]
fn one_command_is_one_trace_across_nodes() {
    let Some(data) = data_dir() else { return };
    let (port, spans) = receiver();
    let otel = format!("http://127.0.0.1:{port}");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otel.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    let root = TempDb::new("tracing");
    std::fs::create_dir_all(root.path()).unwrap();
    let n1 = NodeProc::start_env("n1", &root.path().join("n1"), free_port(), &[], None, &env);
    let n2 = NodeProc::start_env(
        "n2",
        &root.path().join("n2"),
        free_port(),
        &[&n1.endpoint],
        None,
        &env,
    );
    let _n3 = NodeProc::start_env(
        "n3",
        &root.path().join("n3"),
        free_port(),
        &[&n2.endpoint],
        Some(""),
        &env,
    );
    eventually(20, "the mesh forms", || {
        vast_ok(&n1.endpoint, &["peers"], None)
            .matches("\"reachable\": true")
            .count()
            == 3
    });
    let conn = std::fs::read(data.join("zeek/conn.log.gz")).unwrap();
    vast_ok(
        &n1.endpoint,
        &["--node", "n2", "import", "zeek"],
        Some(&conn),
    );

    // The traced command, with the same exporter settings as the nodes.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args(["-e", &n1.endpoint, "count", ":addr == 192.168.1.104"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2821");

    let root_span = |spans: &[Span]| {
        spans
            .iter()
            .find(|s| s.name == "vast" && s.node.contains("cli") && s.parent.is_empty())
            .cloned()
    };
    eventually(20, "the trace arrives from the CLI and two nodes", || {
        let all = spans.lock().unwrap().clone();
        let Some(r) = root_span(&all) else {
            return false;
        };
        let nodes: HashSet<&str> = all
            .iter()
            .filter(|s| s.trace == r.trace)
            .map(|s| s.node.as_str())
            .collect();
        nodes.len() >= 3
    });
    let all = spans.lock().unwrap().clone();
    let r = root_span(&all).unwrap();
    let trace: Vec<&Span> = all.iter().filter(|s| s.trace == r.trace).collect();
    let by_id: HashMap<&[u8], &Span> = trace.iter().map(|s| (s.id.as_slice(), *s)).collect();
    // Spans of this command on n1 and on n2 (the relay and the remote lookup).
    assert!(
        trace
            .iter()
            .any(|s| s.node.contains("n1") && s.name == "node.control"),
        "{trace:#?}"
    );
    assert!(
        trace
            .iter()
            .any(|s| s.node.contains("n2") && s.name == "data.request"),
        "{trace:#?}"
    );
    // Parent links that cross process boundaries: CLI -> n1 and n1 -> n2.
    let crossing: Vec<(&str, &str)> = trace
        .iter()
        .filter_map(|s| {
            by_id
                .get(s.parent.as_slice())
                .map(|p| (p.node.as_str(), s.node.as_str()))
        })
        .filter(|(a, b)| a != b)
        .collect();
    assert!(
        crossing
            .iter()
            .any(|(a, b)| a.contains("cli") && b.contains("n1")),
        "{crossing:?}"
    );
    assert!(
        crossing
            .iter()
            .any(|(a, b)| a.contains("n1") && b.contains("n2")),
        "{crossing:?}"
    );
    // Every span of the command belongs to this one trace: no orphans with a
    // parent we never saw.
    for s in &trace {
        assert!(
            s.parent.is_empty() || by_id.contains_key(s.parent.as_slice()),
            "orphan span {s:?}"
        );
    }
    let _ = Duration::from_secs(0);
}

/// `https://` endpoints speak TLS (rustls) for both protocols: the collector side
/// here is a bare TCP socket that sees the TLS ClientHello (a handshake record,
/// first byte 0x16) instead of an HTTP request or an HTTP/2 preface.
#[cfg(feature = "otlp")]
#[test]
fn otlp_over_https_speaks_tls() {
    for protocol in ["http/protobuf", "grpc"] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut first = [0u8; 1];
                let _ = tx.send(conn.read_exact(&mut first).map(|_| first[0]).ok());
            }
        });
        let db = TempDb::new("otlp-https");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
            .args(["-N", "-d", db.path().to_str().unwrap(), "count", "1"])
            .env_remove("RUST_LOG")
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("https://127.0.0.1:{port}"),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{protocol}: {err}");
        assert!(!err.contains("scheme is not http"), "{protocol}: {err}");
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{protocol}: the exporter never connected; stderr: {err}"));
        assert_eq!(
            first,
            Some(0x16),
            "{protocol}: not a TLS handshake; stderr: {err}"
        );
    }
}

/// Without the `otlp` feature a configured endpoint is a warning, not a failure.
#[cfg(not(feature = "otlp"))]
#[test]
fn otlp_needs_the_otlp_feature() {
    let db = TempDb::new("no-otlp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vast"))
        .args(["-N", "-d", db.path().to_str().unwrap(), "count", "1"])
        .env_remove("RUST_LOG")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("without the `otlp` feature"), "{err}");
}
