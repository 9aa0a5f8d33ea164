//! The network: one libp2p swarm per process (TCP + our noise upgrade (`noise`) +
//! yamux (`mux`), identify, kameo's remote-actor behaviour, and our data-plane
//! protocol), owned by a task. The rest of the code holds a [`Client`] and never
//! touches the `Swarm`.

pub mod codec;
pub mod identity;
pub mod mux;
pub mod noise;
pub mod secret;
#[cfg(test)]
mod test_io;

use codec::{Frame, RawCodec};
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{dial_opts::DialOpts, ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{identify, tcp, Multiaddr, PeerId, SwarmBuilder};
pub use secret::Secret;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// Everything the swarm speaks, in one behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    limits: libp2p::connection_limits::Behaviour,
    kameo: kameo::remote::Behaviour,
    identify: identify::Behaviour,
    data: request_response::Behaviour<RawCodec>,
}

/// A data-plane request from a peer; answer it with [`Client::respond`]. `peer` is
/// the connection's authenticated PeerId; `permit` is the request's share of the
/// node's byte budget, returned when the request is dropped.
pub struct Inbound {
    pub peer: PeerId,
    pub bytes: Vec<u8>,
    pub channel: ResponseChannel<Vec<u8>>,
    pub permit: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Inbound({}, {} bytes)", self.peer, self.bytes.len())
    }
}

/// Connection changes, for membership and liveness.
#[derive(Clone, Debug)]
pub enum NetEvent {
    Connected(PeerId),
    Disconnected(PeerId),
}

/// How the network admits peers and what it lets them hold.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// The cluster secret; `None` admits any peer (loopback-only protected mode).
    pub secret: Option<Secret>,
    /// Largest data-plane frame accepted or sent.
    pub max_frame: usize,
    /// Node-wide budget of inbound request bytes; `None` for a CLI.
    pub max_inflight_bytes: Option<usize>,
    /// Established inbound connections accepted.
    pub max_connections: u32,
    /// Time a new connection has to finish its handshake.
    pub handshake_timeout: Duration,
    /// Connections opened to each address dialed (see `Client::dial`).
    pub connections: u32,
}

impl NetOptions {
    /// Options for a short-lived client (the CLI, tests).
    pub fn client(secret: Option<Secret>, max_frame: usize, connections: u32) -> NetOptions {
        NetOptions {
            secret,
            max_frame,
            max_inflight_bytes: None,
            max_connections: 16,
            handshake_timeout: Duration::from_secs(10),
            connections,
        }
    }
}

/// One line for a failed dial: what went wrong and the likely cause, instead of
/// libp2p's nested per-address dump.
pub fn describe_dial_error(e: &libp2p::swarm::DialError, has_secret: bool) -> String {
    use libp2p::swarm::DialError;
    let DialError::Transport(errs) = e else {
        return e.to_string();
    };
    let mut chain = Vec::new();
    for (_, te) in errs {
        let mut cur: Option<&dyn std::error::Error> = Some(te);
        while let Some(c) = cur {
            chain.push(c.to_string());
            cur = c.source();
        }
    }
    let all = chain.join(": ").to_ascii_lowercase();
    if all.contains("connection refused") {
        "connection refused (is `vast start` running there?)".into()
    } else if all.contains("noise") || all.contains("decrypt") || all.contains("handshake") {
        if has_secret {
            "the node refused the handshake: its cluster secret differs from ours".into()
        } else {
            "the node refused the handshake: it requires a cluster secret (--secret-file)".into()
        }
    } else if all.contains("timed out") || all.contains("timeout") {
        "the connection timed out".into()
    } else if all.contains("no records found")
        || all.contains("failed to lookup")
        || all.contains("name or service not known")
        || all.contains("nxdomain")
    {
        "the host name does not resolve (check the endpoint's spelling and DNS)".into()
    } else if all.contains("unreachable") || all.contains("no route") {
        "no route to the host (network unreachable; check the address and firewalls)".into()
    } else {
        chain.last().cloned().unwrap_or_else(|| e.to_string())
    }
}

/// Logs refused handshakes at most once per `every`, counting the rest.
struct RefusalLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    fn record(&mut self, addr: &Multiaddr, why: &str) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < self.every)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(remote = %addr, reason = why, suppressed = self.suppressed, "refused a peer in the connection handshake (no or a different cluster secret?)");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, String>>),
    Request(PeerId, Frame, oneshot::Sender<Result<Vec<u8>, String>>),
    Respond(ResponseChannel<Vec<u8>>, Vec<u8>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Connected(oneshot::Sender<Vec<PeerId>>),
}

/// Handle to the network task.
#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    pub peer_id: PeerId,
}

/// What the network task hands back when started.
pub struct Network {
    pub client: Client,
    pub inbound: mpsc::Receiver<Inbound>,
    pub events: mpsc::UnboundedReceiver<NetEvent>,
}

/// Parses `host:port` or a multiaddr.
pub fn parse_endpoint(s: &str) -> Result<Multiaddr, String> {
    if s.starts_with('/') {
        return s.parse().map_err(|e| format!("bad multiaddr {s:?}: {e}"));
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("endpoint {s:?} is neither host:port nor a multiaddr"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("endpoint {s:?}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("/ip4/{ip}/tcp/{port}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("/ip6/{ip}/tcp/{port}"),
        Err(_) => format!("/dns/{host}/tcp/{port}"),
    };
    addr.parse().map_err(|e| format!("endpoint {s:?}: {e}"))
}

impl Client {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| "network task stopped".to_string())?;
        rx.await.map_err(|_| "network task stopped".to_string())
    }

    /// Dials `addr`; resolves once connected, with the remote PeerId. The network
    /// then opens `NetOptions::connections - 1` more connections to that peer at
    /// `addr`: libp2p runs each connection's framing and cipher on one task, and
    /// data-plane requests take turns over a peer's connections, so one peer's
    /// traffic can use more than one core.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, String> {
        self.call(|tx| Command::Dial(addr, tx)).await?
    }

    /// Sends a data-plane request and waits for the response.
    pub async fn request(&self, peer: PeerId, frame: impl Into<Frame>) -> Result<Vec<u8>, String> {
        let frame = frame.into();
        self.call(|tx| Command::Request(peer, frame, tx)).await?
    }

    pub async fn respond(&self, channel: ResponseChannel<Vec<u8>>, bytes: Vec<u8>) {
        let _ = self.tx.send(Command::Respond(channel, bytes)).await;
    }

    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.call(Command::ListenAddrs).await.unwrap_or_default()
    }

    pub async fn connected(&self) -> Vec<PeerId> {
        self.call(Command::Connected).await.unwrap_or_default()
    }
}

/// Builds the swarm, makes it kameo's global swarm, listens on `listen` (if any)
/// and runs it on a task.
pub async fn start(
    key: Keypair,
    listen: Option<Multiaddr>,
    opts: NetOptions,
) -> Result<Network, String> {
    let prologue = opts.secret.as_ref().map(|s| s.prologue());
    let has_secret = prologue.is_some();
    let codec = RawCodec {
        max_frame: opts.max_frame,
        budget: opts
            .max_inflight_bytes
            .map(|b| Arc::new(Semaphore::new(b.min(Semaphore::MAX_PERMITS)))),
        pool: crate::data::pool::Pool::global(),
    };
    let limits = libp2p::connection_limits::ConnectionLimits::default()
        .with_max_established_incoming(Some(opts.max_connections))
        .with_max_pending_incoming(Some((opts.max_connections / 4).max(4)))
        .with_max_established_per_peer(Some(8));
    let kameo_max = opts.max_frame;
    let connections = opts.connections.max(1);
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            // Admission: the secret's prologue is part of the handshake transcript.
            move |k: &Keypair| {
                noise::Config::new(k).map(|c| c.with_prologue(prologue.clone().unwrap_or_default()))
            },
            mux::Config::default,
        )
        .map_err(|e| format!("tcp transport: {e}"))?
        .with_dns()
        .map_err(|e| format!("dns: {e}"))?
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            Behaviour {
                limits: libp2p::connection_limits::Behaviour::new(limits),
                kameo: kameo::remote::Behaviour::new(
                    peer,
                    kameo::remote::messaging::Config::default()
                        .with_request_timeout(Duration::from_secs(30))
                        .with_response_size_maximum(kameo_max as u64),
                ),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/vast/id/1".into(),
                    key.public(),
                )),
                data: request_response::Behaviour::with_codec(
                    codec,
                    [(codec::PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(60))
                        .with_max_concurrent_streams(256),
                ),
            }
        })
        .map_err(|e| format!("behaviour: {e}"))?
        // Quiet connections must stay up: membership relies on them.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
        // A connection that has not finished its upgrade by then is dropped, so
        // peers that connect and stay silent cannot hold the pending slots.
        .with_connection_timeout(opts.handshake_timeout)
        .build();
    swarm
        .behaviour()
        .kameo
        .try_init_global()
        .map_err(|e| format!("kameo swarm: {e}"))?;
    let mut listening = false;
    if let Some(addr) = listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        // Wait until the listener is up (or failed) so callers can rely on it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ev = tokio::time::timeout_at(deadline, swarm.select_next_some())
                .await
                .map_err(|_| format!("listening on {addr} timed out"))?;
            match ev {
                SwarmEvent::NewListenAddr { .. } => {
                    listening = true;
                    break;
                }
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(format!("cannot listen on {addr}: {reason:?}"))
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(format!("cannot listen on {addr}: {error}"))
                }
                _ => {}
            }
        }
    }
    let _ = listening;
    let peer_id = *swarm.local_peer_id();
    let (tx, mut rx) = mpsc::channel::<Command>(256);
    let (in_tx, in_rx) = mpsc::channel::<Inbound>(256);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel::<NetEvent>();
    tokio::spawn(async move {
        let mut dials: HashMap<ConnectionId, (Multiaddr, oneshot::Sender<Result<PeerId, String>>)> =
            HashMap::new();
        let mut requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, String>>> =
            HashMap::new();
        let mut refusals = RefusalLog {
            every: Duration::from_secs(5),
            last: None,
            suppressed: 0,
        };
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    match cmd {
                        Command::Dial(addr, reply) => {
                            let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                            let id = opts.connection_id();
                            match swarm.dial(opts) {
                                Ok(()) => { dials.insert(id, (addr, reply)); }
                                Err(e) => { let _ = reply.send(Err(format!("cannot dial {addr}: {e}"))); }
                            }
                        }
                        Command::Request(peer, frame, reply) => {
                            let id = swarm.behaviour_mut().data.send_request(&peer, frame);
                            requests.insert(id, reply);
                        }
                        Command::Respond(ch, bytes) => {
                            let _ = swarm.behaviour_mut().data.send_response(ch, bytes);
                        }
                        Command::ListenAddrs(reply) => {
                            let _ = reply.send(swarm.listeners().cloned().collect());
                        }
                        Command::Connected(reply) => {
                            let _ = reply.send(swarm.connected_peers().copied().collect());
                        }
                    }
                }
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                        tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                        if let Some((addr, r)) = dials.remove(&connection_id) {
                            let _ = r.send(Ok(peer_id));
                            for _ in 1..connections {
                                let more = DialOpts::peer_id(peer_id)
                                    .addresses(vec![addr.clone()])
                                    .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
                                    .build();
                                if let Err(e) = swarm.dial(more) {
                                    tracing::debug!(peer = %peer_id, error = %e, "no extra connection");
                                }
                            }
                        }
                        let _ = ev_tx.send(NetEvent::Connected(peer_id));
                    }
                    SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                        let why = describe_dial_error(&error, has_secret);
                        match dials.remove(&connection_id) {
                            Some((_, r)) => { let _ = r.send(Err(why)); }
                            None => tracing::debug!(error = %why, "an extra connection failed"),
                        }
                    }
                    SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                        refusals.record(&send_back_addr, &error.to_string());
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        tracing::debug!(peer = %peer_id, "disconnected");
                        let _ = ev_tx.send(NetEvent::Disconnected(peer_id));
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                        // Addresses peers listen on, so kameo lookups can dial them.
                        for a in info.listen_addrs {
                            if !a.to_string().contains("/ip4/0.0.0.0") {
                                swarm.add_peer_address(peer_id, a);
                            }
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Data(ev)) => match ev {
                        request_response::Event::Message { peer, message, .. } => match message {
                            request_response::Message::Request { request, channel, .. } => {
                                let Frame { head: bytes, permit, .. } = request;
                                if in_tx.try_send(Inbound { peer, bytes, channel, permit }).is_err() {
                                    tracing::warn!(peer = %peer, "data-plane request dropped: handler busy");
                                }
                            }
                            request_response::Message::Response { request_id, response } => {
                                if let Some(r) = requests.remove(&request_id) {
                                    let _ = r.send(Ok(response));
                                }
                            }
                        },
                        request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                            if let Some(r) = requests.remove(&request_id) {
                                let _ = r.send(Err(format!("request to {peer} failed: {error}")));
                            }
                        }
                        request_response::Event::InboundFailure { peer, error, .. } => {
                            tracing::debug!(peer = %peer, error = %error, "inbound data-plane failure");
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
    });
    Ok(Network {
        client: Client { tx, peer_id },
        inbound: in_rx,
        events: ev_rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("127.0.0.1:42000").unwrap().to_string(),
            "/ip4/127.0.0.1/tcp/42000"
        );
        assert_eq!(
            parse_endpoint("[::1]:5").unwrap().to_string(),
            "/ip6/::1/tcp/5"
        );
        assert_eq!(
            parse_endpoint("n1:42000").unwrap().to_string(),
            "/dns/n1/tcp/42000"
        );
        assert_eq!(
            parse_endpoint("/ip4/10.0.0.1/tcp/7").unwrap().to_string(),
            "/ip4/10.0.0.1/tcp/7"
        );
        assert!(parse_endpoint("n1").is_err());
        assert!(parse_endpoint("n1:http").is_err());
        assert!(parse_endpoint("/nonsense").is_err());
    }
}
