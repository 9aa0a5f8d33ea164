//! Every type that crosses a process boundary, in one place. Control messages are
//! kameo remote messages (serde); data-plane envelopes are rkyv bytes on our own
//! request-response protocol, validated before use.

pub use crate::net::codec::Frame;
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
    /// A batch (wire bytes, `data::wire`) of import session `session` (the sender's
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
    /// Matching rows (wire bytes, `data::wire`) of partition `partition`, not yet committed.
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
    /// Selected rows: each entry is a batch's wire bytes (`data::wire`).
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
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<
            rkyv::api::high::HighValidator<'a, crate::data::checked::Error>,
        > + RkyvDeserialize<T, rkyv::api::high::HighDeserializer<crate::data::checked::Error>>,
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

    /// The one payload (a batch's wire bytes) this request carries, if it is of a
    /// kind that carries one.
    fn payload_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            DataRequest::Ingest { batch, .. }
            | DataRequest::Store { batch, .. }
            | DataRequest::Discard { batch, .. } => Some(batch),
            _ => None,
        }
    }

    /// The request as sent: its payload is moved, not copied, ahead of the
    /// envelope, and written to the stream as it is. On the wire:
    /// `payload, zeros to a multiple of 16, rkyv envelope (payload left empty),
    /// payload length (u32 LE), traceparent, traceparent length (u8)`. The
    /// receiver reads the frame into one buffer, which becomes the payload
    /// (see `decode_frame`), so a batch is copied by neither side.
    pub fn into_frame(mut self) -> Frame {
        let body = self.payload_mut().map(std::mem::take).unwrap_or_default();
        self.into_frame_with(body.into())
    }

    /// `into_frame` with a payload given apart (shared, for sending the same
    /// bytes often); the request's own payload, if any, must be empty.
    pub fn into_frame_with(self, body: bytes::Bytes) -> Frame {
        let envelope = encode_in(&self, 0);
        let pad = body.len().next_multiple_of(16) - body.len();
        let mut head = Vec::with_capacity(pad + envelope.len() + 4 + 64);
        head.resize(pad, 0);
        head.extend_from_slice(&envelope);
        head.extend_from_slice(&(body.len() as u32).to_le_bytes());
        Frame::new(body, with_trace(head))
    }

    /// `into_frame` as one buffer (small requests, tests).
    pub fn encode(&self) -> Vec<u8> {
        self.clone().into_frame().to_vec()
    }

    /// Validates and decodes untrusted bytes from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        Self::decode_frame(bytes.to_vec()).map(|(r, _)| r)
    }

    /// Validates and decodes a frame from a peer, returning the sender's
    /// `traceparent` too (empty if none). A payload keeps the frame's buffer,
    /// cut to its length, so it is not copied (and, at its start, is aligned).
    pub fn decode_frame(mut bytes: Vec<u8>) -> Result<(Self, String), Malformed> {
        let (rest, tp) = split_trace(&bytes)?;
        let rest = rest.len();
        let footer = rest
            .checked_sub(4)
            .ok_or_else(|| Malformed("no payload length".into()))?;
        let len = u32::from_le_bytes(bytes[footer..rest].try_into().expect("4 bytes")) as usize;
        let start = len.next_multiple_of(16);
        if start > footer {
            return Err(Malformed(format!(
                "a payload of {len} bytes does not fit in a message of {} bytes",
                bytes.len()
            )));
        }
        let mut req: DataRequest = decode(&bytes[start..footer])?;
        if len > 0 {
            let kind = req.kind();
            match req.payload_mut() {
                Some(p) if p.is_empty() => {
                    bytes.truncate(len);
                    *p = bytes;
                }
                Some(_) => {
                    return Err(Malformed(
                        "a payload both beside and inside the envelope".into(),
                    ))
                }
                None => {
                    return Err(Malformed(format!(
                        "a {kind} request carries no payload, but {len} bytes came with it"
                    )))
                }
            }
        }
        Ok((req, tp))
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

    #[test]
    fn a_payload_travels_beside_its_envelope_and_becomes_the_frame_buffer() {
        for len in [0usize, 1, 15, 16, 17, 100_003] {
            let batch: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let frame = DataRequest::Ingest {
                node: "n2".into(),
                session: [3; 16],
                seq: 9,
                batch: batch.clone(),
                forwarded: true,
            }
            .into_frame();
            // The payload is not copied into the frame: it is sent first, as is.
            assert_eq!(&frame.body[..], &batch[..]);
            let wire = frame.to_vec();
            let at = wire.as_ptr();
            let (r, _) = DataRequest::decode_frame(wire).unwrap();
            match r {
                DataRequest::Ingest {
                    node,
                    seq,
                    batch: got,
                    forwarded,
                    ..
                } => {
                    assert_eq!((node.as_str(), seq, forwarded), ("n2", 9, true));
                    assert_eq!(got, batch);
                    if len > 0 {
                        assert_eq!(got.as_ptr(), at, "the payload is the received buffer");
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        // Shared payloads frame the same bytes as owned ones.
        let shared = bytes::Bytes::from(vec![5u8; 40]);
        let a = DataRequest::Discard {
            seq: 1,
            batch: vec![],
        }
        .into_frame_with(shared.clone());
        let b = DataRequest::Discard {
            seq: 1,
            batch: vec![5; 40],
        }
        .into_frame();
        assert_eq!(a.to_vec(), b.to_vec());
    }

    #[test]
    fn payload_lengths_and_kinds_from_a_peer_are_checked() {
        let lookup = DataRequest::Lookup { expr: "x".into() };
        // A payload for a request that carries none.
        let wire = lookup
            .clone()
            .into_frame_with(bytes::Bytes::from(vec![1u8; 32]))
            .to_vec();
        let e = DataRequest::decode_frame(wire).unwrap_err().to_string();
        assert!(e.contains("lookup request carries no payload"), "{e}");
        // A payload both beside and inside the envelope.
        let wire = DataRequest::Discard {
            seq: 1,
            batch: vec![1],
        }
        .into_frame_with(bytes::Bytes::from(vec![2u8; 8]))
        .to_vec();
        let e = DataRequest::decode_frame(wire).unwrap_err().to_string();
        assert!(e.contains("both beside and inside"), "{e}");
        // A claimed payload length past the frame, and every length field value
        // that does not fit: an error, never a panic.
        let good = lookup.encode();
        let tp_len = *good.last().unwrap() as usize;
        let footer = good.len() - 1 - tp_len - 4;
        for claim in [u32::MAX, good.len() as u32, footer as u32 + 1, 17] {
            let mut bad = good.clone();
            bad[footer..footer + 4].copy_from_slice(&claim.to_le_bytes());
            let e = DataRequest::decode_frame(bad).unwrap_err().to_string();
            assert!(e.contains("malformed"), "{claim}: {e}");
        }
        for cut in 0..good.len() {
            let _ = DataRequest::decode_frame(good[..cut].to_vec());
        }
        assert!(DataRequest::decode_frame(vec![0]).is_err());
    }
}
