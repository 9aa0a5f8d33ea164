//! One process, two swarms on loopback, 1 MiB requests with 16 in flight, a small
//! answer each: MB/s for each way of admitting peers, printed side by side.

use futures::prelude::*;
use libp2p::core::upgrade::Version;
use libp2p::core::Transport;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, pnet, tcp, yamux, Multiaddr, StreamProtocol, Swarm};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Raw;

async fn read<T: AsyncRead + Unpin + Send>(io: &mut T) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write<T: AsyncWrite + Unpin + Send>(io: &mut T, b: Vec<u8>) -> std::io::Result<()> {
    io.write_all(&(b.len() as u32).to_le_bytes()).await?;
    io.write_all(&b).await?;
    io.close().await
}

#[async_trait::async_trait]
impl request_response::Codec for Raw {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;
    async fn read_request<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>> {
        read(io).await
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>> {
        read(io).await
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T, r: Vec<u8>) -> std::io::Result<()> {
        write(io, r).await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T, r: Vec<u8>) -> std::io::Result<()> {
        write(io, r).await
    }
}

type S = Swarm<request_response::Behaviour<Raw>>;

#[derive(Clone, Copy, Debug)]
enum Mode {
    Noise,
    Prologue,
    Pnet,
}

fn behaviour() -> request_response::Behaviour<Raw> {
    request_response::Behaviour::with_codec(
        Raw,
        [(StreamProtocol::new("/bench/1"), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(60))
            .with_max_concurrent_streams(256),
    )
}

fn swarm(mode: Mode) -> S {
    let prologue = b"vast/1 0123456789abcdef0123456789abcdef".to_vec();
    let b = libp2p::SwarmBuilder::with_new_identity().with_tokio();
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(60));
    match mode {
        Mode::Noise | Mode::Prologue => {
            let p = matches!(mode, Mode::Prologue).then(|| prologue.clone());
            b.with_tcp(
                tcp::Config::default().nodelay(true),
                move |k: &libp2p::identity::Keypair| noise::Config::new(k).map(|c| c.with_prologue(p.clone().unwrap_or_default())),
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| behaviour())
            .unwrap()
            .with_swarm_config(idle)
            .build()
        }
        Mode::Pnet => b
            .with_other_transport(|k| {
                let psk = pnet::PreSharedKey::new([7u8; 32]);
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .and_then(move |socket, _| pnet::PnetConfig::new(psk).handshake(socket))
                    .upgrade(Version::V1)
                    .authenticate(noise::Config::new(k).unwrap().with_prologue(prologue))
                    .multiplex(yamux::Config::default())
            })
            .unwrap()
            .with_behaviour(|_| behaviour())
            .unwrap()
            .with_swarm_config(idle)
            .build(),
    }
}

async fn run(mode: Mode, mib: usize) -> f64 {
    let mut server = swarm(mode);
    server.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) = server.select_next_some().await
            {
                let _ = server.behaviour_mut().send_response(channel, vec![1]);
            }
        }
    });
    let mut client = swarm(mode);
    client.dial(addr).unwrap();
    let peer = loop {
        match client.select_next_some().await {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => break peer_id,
            SwarmEvent::OutgoingConnectionError { error, .. } => panic!("{error}"),
            _ => {}
        }
    };
    let payload = vec![0x5au8; 1 << 20];
    let (mut sent, mut done) = (0usize, 0usize);
    let start = Instant::now();
    while done < mib {
        while sent < mib && sent - done < 16 {
            client.behaviour_mut().send_request(&peer, payload.clone());
            sent += 1;
        }
        match client.select_next_some().await {
            SwarmEvent::Behaviour(request_response::Event::Message { message: request_response::Message::Response { .. }, .. }) => done += 1,
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => panic!("{error}"),
            _ => {}
        }
    }
    (mib << 20) as f64 / start.elapsed().as_secs_f64() / 1e6
}

#[tokio::main]
async fn main() {
    let mib: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2048);
    println!("{mib} MiB in 1 MiB requests, 16 in flight, two swarms on loopback in one process");
    let mut rows = vec![];
    for round in 0..2 {
        for mode in [Mode::Noise, Mode::Prologue, Mode::Pnet] {
            let r = run(mode, mib).await;
            rows.push((round, mode, r));
        }
    }
    let best = |m: &str| rows.iter().filter(|(_, x, _)| format!("{x:?}") == m).map(|r| r.2).fold(0.0, f64::max);
    let base = best("Noise");
    for m in ["Noise", "Prologue", "Pnet"] {
        let v = best(m);
        println!("{:<40} {:>8.0} MB/s  {:>5.2}x noise", match m {
            "Noise" => "noise (no admission)",
            "Prologue" => "noise + secret prologue (vast)",
            _ => "pnet (xsalsa20) + noise + prologue",
        }, v, v / base);
    }
}
