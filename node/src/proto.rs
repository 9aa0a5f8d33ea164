//! Every type that crosses a process boundary, in one place. Control messages are
//! kameo remote messages (serde); data-plane envelopes are rkyv bytes on our own
//! request-response protocol, validated before use.

use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- control plane

/// A control request for node `node` (the receiving node when `None`); the
/// receiver relays it inside the cluster when it names another member.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Control {
    /// Target node id, or `None` for the node that receives it.
    pub node: Option<String>,
    /// What to do.
    pub op: ControlOp,
    /// W3C `traceparent` of the caller's span (empty when not tracing).
    pub traceparent: String,
}

/// The operations of the control plane.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlOp {
    /// Node status as JSON.
    Status { detailed: bool },
    /// Start a component; replies with its label.
    Spawn(SpawnSpec),
    /// Stop a component by label.
    Kill { label: String },
    /// Stop the node gracefully.
    Stop,
    /// Cluster membership as JSON.
    Peers,
    /// Count matching events over the whole cluster.
    Count {
        expr: String,
        estimate: bool,
        allow_partial: bool,
    },
}

/// What `spawn` starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SpawnSpec {
    /// A source inside the node: a file or (for `pcap`) a live interface.
    Source {
        path: Option<String>,
        interface: Option<String>,
        bpf: Option<String>,
        /// Bytes captured per packet (live capture).
        snaplen: Option<u32>,
        /// Payload bytes kept per connection (pcap).
        cutoff: Option<u64>,
        format: String,
        schema: Option<String>,
    },
    /// `archive`, `index` or `importer`.
    Component(String),
}

/// Replies of the control plane.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlReply {
    /// A JSON document (status, peers).
    Json(String),
    /// A component label (spawn).
    Label(String),
    /// Done (kill, stop).
    Done,
    /// A count, with warnings about members that did not answer (`--allow-partial`).
    Count { count: u64, warnings: Vec<String> },
}

// ------------------------------------------------------------------ data plane

/// A cluster member as members describe themselves to each other.
#[derive(Clone, Debug, PartialEq, Archive, RkyvSerialize, RkyvDeserialize)]
pub struct Member {
    /// Node id (`n1`); empty for a CLI.
    pub id: String,
    /// libp2p PeerId, base58.
    pub peer: String,
    /// Multiaddrs it listens on.
    pub addrs: Vec<String>,
    /// Component labels it runs.
    pub components: Vec<String>,
}

/// One partition's candidates, as an index sends them to a query.
#[derive(Clone, Debug, Archive, RkyvSerialize, RkyvDeserialize)]
pub struct WireHits {
    /// Partition id.
    pub partition: [u8; 16],
    /// Schema name (for logs and status).
    pub schema: String,
    /// `<node>/archive` holding the data.
    pub archive: String,
    /// Rows surely matching, as a serialized roaring bitmap.
    pub sure: Vec<u8>,
    /// Rows maybe matching (to check against the data), serialized roaring bitmap.
    pub maybe: Vec<u8>,
}

/// Data-plane requests.
#[derive(Clone, Debug, Archive, RkyvSerialize, RkyvDeserialize)]
pub enum DataRequest {
    /// Membership handshake: who I am; the answer lists who the receiver knows.
    Hello { from: Member },
    /// A batch (rkyv `Batch` bytes) of import session `session` (the sender's
    /// random id) for the importer of node `node` (receiver if empty); `forwarded`
    /// when a member relays it (members only).
    Ingest {
        node: String,
        session: [u8; 16],
        seq: u64,
        batch: Vec<u8>,
        forwarded: bool,
    },
    /// End import session `session` on node `node`: durable and visible, all of it
    /// or nothing; `forwarded` when a member relays it (members only).
    Flush {
        node: String,
        session: [u8; 16],
        forwarded: bool,
    },
    /// Give up import session `session` on node `node`: nothing of it stays.
    Abort {
        node: String,
        session: [u8; 16],
        forwarded: bool,
    },
    /// Candidates of a query in this node's index.
    Lookup { expr: String },
    /// The schemas of this node's data (to warn about fields no schema has).
    Schemas,
    /// Matching rows of a partition in this node's archive, from row `from_row` on,
    /// about `max_bytes` at most (the receiver caps it too); `limit` 0 means none.
    Fetch {
        partition: [u8; 16],
        sure: Vec<u8>,
        maybe: Vec<u8>,
        expr: String,
        limit: u64,
        from_row: u32,
        max_bytes: u64,
    },
    /// Start an export over the cluster; `limit` 0 means none.
    ExportOpen {
        expr: String,
        limit: u64,
        allow_partial: bool,
        mode: ExportMode,
    },
    /// Next chunk of an export (only its opener may pull it).
    ExportNext { cursor: [u8; 16] },
    /// Close an export early (`-n` reached, client done).
    ExportClose { cursor: [u8; 16] },
    /// A batch of partition `partition` at row `offset` for this node's archive and
    /// index (placement put the partition here).
    Store {
        partition: [u8; 16],
        offset: u32,
        batch: Vec<u8>,
    },
    /// Make partition `partition` durable in this node's archive and index,
    /// prepared (invisible) for the sender's transaction `txn` (members only).
    Seal { partition: [u8; 16], txn: [u8; 16] },
    /// The sender decided to commit `txn`: make these prepared partitions visible
    /// (members only).
    Commit {
        txn: [u8; 16],
        partitions: Vec<[u8; 16]>,
    },
    /// The sender aborted `txn`: remove these prepared partitions (members only).
    AbortTxn {
        txn: [u8; 16],
        partitions: Vec<[u8; 16]>,
    },
    /// What became of transaction `txn` that the receiver coordinated (members only).
    Outcome { txn: [u8; 16] },
    /// A batch that is validated and dropped: measures the data plane alone.
    Discard { seq: u64, batch: Vec<u8> },
    /// Subscribe to the events this node's importer accepts from now on that match
    /// `expr` (members only: the exporting node subscribes for its client).
    LiveOpen { expr: String },
    /// The next items of live tap `tap`, waiting briefly when there are none (only
    /// its opener may pull it).
    LiveNext { tap: [u8; 16] },
    /// Close live tap `tap`.
    LiveClose { tap: [u8; 16] },
    /// The committed partitions this node holds (members compare them to count
    /// replicas and to know whether a query misses anything while a member is down).
    Held,
}

/// What an export reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Archive, RkyvSerialize, RkyvDeserialize)]
pub enum ExportMode {
    /// The events stored when the export starts, then the end.
    History,
    /// Events as importers accept them from now on, until the client stops (`-c`).
    Continuous,
    /// History, then continuous, with no gap and no duplicate between them (`-u`).
    Unified,
}

/// A partition an importer was still filling (or sealing) when a live tap
/// opened: its rows before `rows` were accepted before the tap existed.
#[derive(Clone, Debug, Archive, RkyvSerialize, RkyvDeserialize)]
pub struct OpenPartition {
    /// Partition id.
    pub partition: [u8; 16],
    /// Rows it held when the tap opened (`u32::MAX`: all of them; it was sealing).
    pub rows: u32,
}

/// One item of a live tap, in the order the importer produced them.
#[derive(Clone, Debug, Archive, RkyvSerialize, RkyvDeserialize)]
pub enum LiveItem {
    /// Matching rows (rkyv `Batch` bytes) of partition `partition`, not yet committed.
    Rows { partition: [u8; 16], batch: Vec<u8> },
    /// These partitions were committed: their rows are now history.
    Committed { partitions: Vec<[u8; 16]> },
    /// These partitions were aborted: their rows are not stored and never will be.
    Aborted { partitions: Vec<[u8; 16]> },
}

/// Data-plane responses.
#[derive(Clone, Debug, Archive, RkyvSerialize, RkyvDeserialize)]
pub enum DataResponse {
    /// The request failed; the message says why.
    Error(String),
    /// Refused: the request is for members, and the receiver does not know the
    /// sender as one (yet: the receiver may not have taken its `Hello` in).
    NotMember(String),
    /// Handshake answer: the receiver and the members it knows.
    Hello { me: Member, members: Vec<Member> },
    /// Batch `seq` accepted.
    Ack { seq: u64 },
    /// Durable; events ingested by that importer so far.
    Flushed { events: u64 },
    /// Index candidates.
    Hits(Vec<WireHits>),
    /// The distinct schemas of a node's data.
    Schemas(Vec<crate::data::Schema>),
    /// Selected rows: each entry is rkyv `Batch` bytes.
    Rows(Vec<Vec<u8>>),
    /// One page of a `Fetch`: rows, and the row to ask from next (`None`: done).
    Page {
        batches: Vec<Vec<u8>>,
        resume: Option<u32>,
    },
    /// An export started; `cursor` is a random 128-bit id bound to its opener.
    Cursor {
        cursor: [u8; 16],
        warnings: Vec<String>,
    },
    /// The export has no more rows.
    End,
    /// A transaction's outcome: committed, aborted, or still pending.
    TxnOutcome { committed: bool, pending: bool },
    /// A live tap opened, and the partitions its importer was still filling.
    LiveOpened {
        tap: [u8; 16],
        open: Vec<OpenPartition>,
    },
    /// Items of a live tap, and rows it dropped since the last pull because its
    /// buffer (`cluster.live-buffer`) was full.
    LiveItems { items: Vec<LiveItem>, dropped: u64 },
    /// Rows of a continuous or unified export (possibly none: the export goes on),
    /// and what the client should know about them.
    Live {
        batches: Vec<Vec<u8>>,
        warnings: Vec<String>,
    },
    /// The ids of the committed partitions a node holds.
    Held(Vec<[u8; 16]>),
}

/// Why data-plane bytes were rejected.
#[derive(Debug, thiserror::Error)]
#[error("malformed data-plane message: {0}")]
pub struct Malformed(pub String);

fn decode<T>(bytes: &[u8]) -> Result<T, Malformed>
where
    T: Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>>
        + RkyvDeserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
{
    crate::data::checked::from_bytes::<T>(bytes).map_err(Malformed)
}

/// Serializes `v` into a buffer sized for `payload` bytes of batches plus the
/// envelope and a trace trailer, so it is allocated once and never moved.
fn encode_in<T>(v: &T, payload: usize) -> Vec<u8>
where
    T: for<'a> rkyv::Serialize<
        rkyv::api::high::HighSerializer<
            Vec<u8>,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rkyv::rancor::Error,
        >,
    >,
{
    rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(v, Vec::with_capacity(payload + 1024))
        .expect("serializing into memory cannot fail")
}

/// Appends the caller's W3C `traceparent` and its length (one byte) after the
/// rkyv bytes, so every data-plane request carries trace context.
fn with_trace(mut bytes: Vec<u8>) -> Vec<u8> {
    let tp = crate::telemetry::current_traceparent();
    let tp = if tp.len() <= 255 { tp } else { String::new() };
    bytes.extend_from_slice(tp.as_bytes());
    bytes.push(tp.len() as u8);
    bytes
}

/// Splits off the trailer `with_trace` added; a malformed trace is dropped.
fn split_trace(bytes: &[u8]) -> Result<(&[u8], String), Malformed> {
    let (&len, rest) = bytes
        .split_last()
        .ok_or_else(|| Malformed("empty message".into()))?;
    let len = len as usize;
    if len > rest.len() {
        return Err(Malformed("trace trailer longer than the message".into()));
    }
    let (body, tp) = rest.split_at(rest.len() - len);
    let tp = std::str::from_utf8(tp)
        .ok()
        .filter(|t| t.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'))
        .unwrap_or_default()
        .to_string();
    Ok((body, tp))
}

impl DataRequest {
    /// A short name for logs and spans.
    pub fn kind(&self) -> &'static str {
        match self {
            DataRequest::Hello { .. } => "hello",
            DataRequest::Ingest { .. } => "ingest",
            DataRequest::Flush { .. } => "flush",
            DataRequest::Lookup { .. } => "lookup",
            DataRequest::Schemas => "schemas",
            DataRequest::Fetch { .. } => "fetch",
            DataRequest::ExportOpen { .. } => "export-open",
            DataRequest::ExportNext { .. } => "export-next",
            DataRequest::ExportClose { .. } => "export-close",
            DataRequest::Store { .. } => "store",
            DataRequest::Seal { .. } => "seal",
            DataRequest::Commit { .. } => "commit",
            DataRequest::AbortTxn { .. } => "abort-txn",
            DataRequest::Outcome { .. } => "outcome",
            DataRequest::Abort { .. } => "abort",
            DataRequest::Discard { .. } => "discard",
            DataRequest::LiveOpen { .. } => "live-open",
            DataRequest::LiveNext { .. } => "live-next",
            DataRequest::LiveClose { .. } => "live-close",
            DataRequest::Held => "held",
        }
    }

    /// The bytes of the payloads this request carries.
    fn payload_len(&self) -> usize {
        match self {
            DataRequest::Ingest { batch, .. }
            | DataRequest::Store { batch, .. }
            | DataRequest::Discard { batch, .. } => batch.len(),
            DataRequest::Fetch { sure, maybe, .. } => sure.len() + maybe.len(),
            _ => 0,
        }
    }

    /// rkyv bytes plus the current span's trace context, in one allocation
    /// (see `Batch::to_bytes`: batches of megabytes pass through here).
    pub fn encode(&self) -> Vec<u8> {
        with_trace(encode_in(self, self.payload_len()))
    }
    /// Validates and decodes untrusted bytes from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        Self::decode_traced(bytes).map(|(r, _)| r)
    }
    /// `decode`, also returning the sender's `traceparent` (empty if none).
    pub fn decode_traced(bytes: &[u8]) -> Result<(Self, String), Malformed> {
        let (body, tp) = split_trace(bytes)?;
        Ok((decode(body)?, tp))
    }
}

impl DataResponse {
    pub fn encode(&self) -> Vec<u8> {
        let payload = match self {
            DataResponse::Rows(bs)
            | DataResponse::Page { batches: bs, .. }
            | DataResponse::Live { batches: bs, .. } => bs.iter().map(|b| b.len() + 16).sum(),
            _ => 0,
        };
        encode_in(self, payload)
    }
    /// Validates and decodes untrusted bytes from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_roundtrip_and_garbage_is_rejected() {
        let r = DataRequest::Ingest {
            node: "n2".into(),
            session: [3; 16],
            seq: 7,
            batch: vec![1, 2, 3],
            forwarded: false,
        };
        match DataRequest::decode(&r.encode()).unwrap() {
            DataRequest::Ingest {
                node, seq, batch, ..
            } => {
                assert_eq!((node.as_str(), seq, batch), ("n2", 7, vec![1, 2, 3]))
            }
            other => panic!("{other:?}"),
        }
        assert!(DataRequest::decode(b"\xff\xff\xff\xff garbage").is_err());
        let bytes = r.encode();
        let half = DataRequest::decode(&bytes[..bytes.len() / 2]);
        assert!(
            half.is_err(),
            "{} bytes, half decoded as {half:?}",
            bytes.len()
        );
        // Every tag and relative pointer out of range.
        assert!(DataRequest::decode(&vec![0xff; bytes.len()]).is_err());
    }
}
