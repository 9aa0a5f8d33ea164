//! `vast bench-dataplane` (hidden): rkyv batches over the data plane to the endpoint
//! node vs the same bytes over a raw TCP socket on loopback, in one run.

use super::client::Conn;
use anyhow::Result;
use futures::stream::{FuturesUnordered, StreamExt};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;
use vast_node::proto::{DataRequest, DataResponse};
use vast_node::source::format::{make_reader, Format, ReaderOptions};

pub async fn dataplane(conn: &Conn, mib: usize) -> Result<ExitCode> {
    // A realistic batch: generated conn events, at most 1 MiB serialized.
    let mut reader = make_reader(
        Format::Test,
        Box::new(std::io::empty()),
        &ReaderOptions::default(),
    )?;
    let mut batch = reader
        .read(8192)?
        .and_then(|mut v| v.pop())
        .expect("test reader yields");
    while batch.to_bytes().len() > (1 << 20) && batch.rows > 1 {
        batch = batch.select(&(0..batch.rows / 2).collect::<Vec<_>>());
    }
    let bytes = batch.to_bytes();
    let n = (mib << 20) / bytes.len();
    let total = (n * bytes.len()) as f64;

    let shared = bytes::Bytes::from(bytes.clone());
    let start = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    for seq in 0..n as u64 {
        // The same batch each time, shared like the raw TCP writes below.
        let frame = DataRequest::Discard { seq, batch: vec![] }.into_frame_with(shared.clone());
        in_flight.push(conn.data_frame(frame));
        while in_flight.len() >= 16 {
            if let Some(r) = in_flight.next().await {
                anyhow::ensure!(matches!(r?, DataResponse::Ack { .. }), "unexpected answer");
            }
        }
    }
    while let Some(r) = in_flight.next().await {
        r?;
    }
    let dp = total / start.elapsed().as_secs_f64() / 1e6;

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sink = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let k = s.read(&mut buf)?;
            if k == 0 {
                return Ok(got);
            }
            got += k as u64;
        }
    });
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr)?;
    for _ in 0..n {
        s.write_all(&bytes)?;
    }
    drop(s);
    let got = sink.join().expect("sink thread")?;
    anyhow::ensure!(got as f64 == total, "raw tcp lost bytes");
    let tcp = total / start.elapsed().as_secs_f64() / 1e6;
    println!(
        "batch: {} rows, {} bytes; {} batches ({:.0} MiB)",
        batch.rows,
        bytes.len(),
        n,
        total / (1 << 20) as f64
    );
    println!("data plane (rkyv batches, validated, 16 in flight): {dp:.0} MB/s");
    println!("raw tcp loopback (same bytes, one stream):          {tcp:.0} MB/s");
    println!("ratio: {:.2}", dp / tcp);
    Ok(ExitCode::SUCCESS)
}
