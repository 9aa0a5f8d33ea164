//! Continuous (`export -c`) and unified (`export -u`) exports.
//!
//! The exporting node opens a live tap on every member (itself included) and
//! keeps one puller per member, which long-polls that member's tap and forwards
//! its items to the export's cursor through a bounded channel. A member that
//! joins later gets a tap too; a member that goes away is retried, and the client
//! is told once per outage that its events may be missing.
//!
//! Live rows are exported when the importer accepts them, before they are
//! committed. If that import aborts later, rows already written stay written:
//! the client gets a warning naming how many rows were shown from partitions
//! that will never be stored, and later queries do not return them.
//!
//! A unified export is history, then live, with no gap and no duplicate. The
//! taps open first, atomically with each importer (between two batches), and
//! report the partitions the importer holds open and their rows so far. Then the
//! history lookup runs. A partition the lookup returned is read from history
//! only: live rows of it are dropped. Any other partition is live from the rows
//! after the tap opened; its earlier rows (it was open when the tap opened) are
//! read from history once its commit marker arrives, restricted to those rows.

use super::cursors::Cursor;
use super::{err, Cluster};
use crate::data::Batch;
use crate::proto::{DataRequest, DataResponse, ExportMode, LiveItem, WireHits};
use crate::query::parse;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a member holds a pull of an empty tap before answering nothing.
const TAP_WAIT: Duration = Duration::from_millis(500);
/// How long a client's pull of a live export waits for rows before answering
/// none (the client learns the export is alive).
const CLIENT_WAIT: Duration = Duration::from_secs(1);
/// Pause before a puller opens a tap again on a member that failed.
const RETRY: Duration = Duration::from_secs(1);
/// How often the exporting node looks for members that joined.
const NEW_MEMBERS: Duration = Duration::from_secs(1);
/// Feeds an export holds for its client at most.
const FEEDS_WAITING: usize = 4;
/// Owner name of taps a node opens on itself.
const LOCAL: &str = "local";

/// What a puller hands the export.
enum Feed {
    /// A member's tap (re)opened, with the partitions its importer held open.
    Opened {
        member: String,
        open: Vec<([u8; 16], u32)>,
    },
    Items {
        member: String,
        items: Vec<LiveItem>,
        dropped: u64,
    },
    /// A member's tap failed; the puller retries.
    Lost { member: String, error: String },
}

/// The live part of an export's cursor.
pub(super) struct Live {
    mode: ExportMode,
    rx: mpsc::Receiver<Feed>,
    /// Partitions read from history: their live rows are duplicates.
    history: HashSet<[u8; 16]>,
    /// Open partitions when a tap opened: rows before the count come from
    /// history once the partition commits.
    pending: HashMap<[u8; 16], u32>,
    /// Committed partitions whose early rows are still to be read.
    catchup: HashMap<[u8; 16], u32>,
    /// Live rows written per partition, to warn when one aborts.
    shown: HashMap<[u8; 16], u64>,
    /// Members whose feed is down (warned once per outage).
    down: HashSet<String>,
    warnings: Vec<String>,
}

impl Cluster {
    /// Opens a live tap on member `id` (this node included).
    async fn tap_open(
        &self,
        id: &str,
        expr: &str,
    ) -> Result<([u8; 16], Vec<([u8; 16], u32)>), String> {
        if id == self.id {
            let e = parse(expr).map_err(|e| e.to_string())?;
            let (tap, open) = self
                .node
                .live_open(LOCAL, e)
                .await
                .map_err(|e| format!("node {id}: {e}"))?;
            return Ok((
                tap,
                open.into_iter().map(|(p, n)| (*p.as_bytes(), n)).collect(),
            ));
        }
        let req = DataRequest::LiveOpen {
            expr: expr.to_string(),
        };
        // The importer answers between two batches; a flush may hold it a while.
        match self.ask_member(id, req, Duration::from_secs(30)).await? {
            DataResponse::LiveOpened { tap, open } => Ok((
                tap,
                open.into_iter().map(|o| (o.partition, o.rows)).collect(),
            )),
            other => Err(format!("node {id}: unexpected answer {other:?}")),
        }
    }

    async fn tap_next(&self, id: &str, tap: [u8; 16]) -> Result<(Vec<LiveItem>, u64), String> {
        if id == self.id {
            return self
                .node
                .taps()
                .next(LOCAL, &tap, TAP_WAIT, self.page_bytes())
                .await
                .map_err(|e| format!("node {id}: {e}"));
        }
        match self
            .ask_member(
                id,
                DataRequest::LiveNext { tap },
                TAP_WAIT + Duration::from_secs(10),
            )
            .await?
        {
            DataResponse::LiveItems { items, dropped } => Ok((items, dropped)),
            other => Err(format!("node {id}: unexpected answer {other:?}")),
        }
    }

    async fn tap_close(&self, id: &str, tap: [u8; 16]) {
        if id == self.id {
            let _ = self.node.taps().close(LOCAL, &tap);
            return;
        }
        let _ = self
            .ask_member(id, DataRequest::LiveClose { tap }, Duration::from_secs(5))
            .await;
    }

    /// Serves a member's `LiveOpen`/`LiveNext`/`LiveClose`; `owner` is its PeerId.
    pub(super) async fn serve_tap(&self, owner: &str, req: DataRequest) -> DataResponse {
        match req {
            DataRequest::LiveOpen { expr } => {
                let e = match parse(&expr) {
                    Ok(e) => e,
                    Err(e) => return err(e),
                };
                match self.node.live_open(owner, e).await {
                    Ok((tap, open)) => DataResponse::LiveOpened {
                        tap,
                        open: open
                            .into_iter()
                            .map(|(p, rows)| crate::proto::OpenPartition {
                                partition: *p.as_bytes(),
                                rows,
                            })
                            .collect(),
                    },
                    Err(e) => err(e),
                }
            }
            DataRequest::LiveNext { tap } => {
                match self
                    .node
                    .taps()
                    .next(owner, &tap, TAP_WAIT, self.page_bytes())
                    .await
                {
                    Ok((items, dropped)) => DataResponse::LiveItems { items, dropped },
                    Err(e) => err(e),
                }
            }
            DataRequest::LiveClose { tap } => match self.node.taps().close(owner, &tap) {
                Ok(()) => DataResponse::End,
                Err(e) => err(e),
            },
            _ => err("not a live tap request"),
        }
    }

    /// Members a live export follows: every connected member and this node.
    fn live_members(&self) -> Vec<String> {
        let members = self.members.lock().expect("lock poisoned");
        let mut ids: Vec<String> = members
            .iter()
            .filter(|(_, m)| m.connected && m.peer.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        ids.push(self.id.clone());
        ids
    }

    /// Opens a continuous or unified export: taps on every member first, then
    /// (unified) the history lookup, then one puller per member.
    pub(super) async fn open_live(
        self: &Arc<Self>,
        peer: libp2p::PeerId,
        expr: String,
        limit: Option<u64>,
        allow_partial: bool,
        mode: ExportMode,
    ) -> Result<([u8; 16], Vec<String>), String> {
        parse(&expr).map_err(|e| e.to_string())?;
        let members = self.live_members();
        let opens = futures::future::join_all(
            members
                .iter()
                .map(|id| async { (id.clone(), self.tap_open(id, &expr).await) }),
        )
        .await;
        let mut warnings = Vec::new();
        let mut opened = Vec::new();
        let mut failed = Vec::new();
        let mut pending = HashMap::new();
        for (id, r) in opens {
            match r {
                Ok((tap, open)) => {
                    pending.extend(open);
                    opened.push((id, tap));
                }
                Err(e) => failed.push((id, e)),
            }
        }
        let close_all = |opened: Vec<(String, [u8; 16])>| {
            let this = self.clone();
            async move {
                for (id, tap) in opened {
                    this.tap_close(&id, tap).await;
                }
            }
        };
        if let Some((_, e)) = failed.first().filter(|_| !allow_partial) {
            close_all(opened).await;
            return Err(format!(
                "cannot follow every member: {e} (use --allow-partial to follow the others)"
            ));
        }
        let mut down = HashSet::new();
        for (id, e) in failed {
            warnings.push(format!(
                "partial answer: live events of node {id} are missing until it answers: {e}"
            ));
            down.insert(id);
        }
        let (hits, history_warnings) = if mode == ExportMode::Unified {
            match self.lookup_all(&expr, allow_partial).await {
                Ok(x) => x,
                Err(e) => {
                    close_all(opened).await;
                    return Err(e);
                }
            }
        } else {
            (Vec::new(), Vec::new())
        };
        warnings.extend(history_warnings);
        let history: HashSet<[u8; 16]> = hits.iter().map(|h| h.partition).collect();
        if mode == ExportMode::Continuous {
            pending.clear();
        }
        // Few feeds wait: each is up to a page (a member's answer, at most a
        // frame), so a client that stops pulling holds little here.
        let (tx, rx) = mpsc::channel(FEEDS_WAITING);
        let down_members: Vec<String> = down.iter().cloned().collect();
        let live = Live {
            mode,
            rx,
            history,
            pending,
            catchup: HashMap::new(),
            shown: HashMap::new(),
            down,
            warnings: Vec::new(),
        };
        let mut cursor = Cursor::new(peer, expr.clone(), hits, limit);
        cursor.live = Some(Box::new(live));
        let id = match self.cursors.open(cursor) {
            Ok(id) => id,
            Err(e) => {
                close_all(opened).await;
                return Err(e);
            }
        };
        let followed: HashSet<String> = members.into_iter().collect();
        // Members that failed to open get a puller too: it opens their tap once
        // they answer, as for members that join later.
        let taps = opened
            .into_iter()
            .map(|(m, t)| (m, Some(t)))
            .chain(down_members.into_iter().map(|m| (m, None)));
        for (member, tap) in taps {
            tokio::spawn(pull(
                Arc::downgrade(self),
                member,
                tap,
                expr.clone(),
                tx.clone(),
            ));
        }
        tokio::spawn(follow_new_members(Arc::downgrade(self), followed, expr, tx));
        Ok((id, warnings))
    }

    /// The next rows of a live export: history first (unified), then live rows
    /// and catch-ups as they come; an empty answer after a quiet second.
    pub(super) async fn live_next(self: &Arc<Self>, c: &mut Cursor) -> DataResponse {
        let max_bytes = self.page_bytes();
        loop {
            if c.left == Some(0) {
                return DataResponse::End;
            }
            if !c.hits.is_empty() {
                return match self.history_page(c).await {
                    Ok(Some(batches)) => DataResponse::Live {
                        batches,
                        warnings: take_warnings(c),
                    },
                    Ok(None) => continue,
                    Err(e) => err(e),
                };
            }
            let live = c.live.as_mut().expect("a live cursor");
            if !live.catchup.is_empty() {
                let catchup = std::mem::take(&mut live.catchup);
                match self.lookup_all(&c.expr, true).await {
                    Ok((hits, warnings)) => {
                        live.warnings.extend(warnings);
                        for h in hits {
                            if let Some(rows) = catchup.get(&h.partition) {
                                live.history.insert(h.partition);
                                match below(h, *rows) {
                                    Ok(h) => c.hits.push_back(h),
                                    Err(e) => return err(e),
                                }
                            }
                        }
                    }
                    Err(e) => live.warnings.push(format!(
                        "events imported before this export began may be missing: {e}"
                    )),
                }
                continue;
            }
            // Wait for the first feed, then take what else is there without
            // waiting. A feed carries a page at most, so the answer stays within
            // two pages.
            let mut batches = Vec::new();
            let mut size = 0;
            match tokio::time::timeout(CLIENT_WAIT, live.rx.recv()).await {
                Ok(Some(f)) => live.take(f, &mut batches, &mut size, &mut c.left),
                Ok(None) => return err("the live export stopped"),
                Err(_) => {}
            }
            while size < max_bytes {
                match live.rx.try_recv() {
                    Ok(f) => live.take(f, &mut batches, &mut size, &mut c.left),
                    Err(_) => break,
                }
            }
            if batches.is_empty() && !live.catchup.is_empty() {
                continue;
            }
            return DataResponse::Live {
                batches,
                warnings: take_warnings(c),
            };
        }
    }
}

fn take_warnings(c: &mut Cursor) -> Vec<String> {
    c.live
        .as_mut()
        .map(|l| std::mem::take(&mut l.warnings))
        .unwrap_or_default()
}

/// `h` restricted to its rows before `rows`.
fn below(mut h: WireHits, rows: u32) -> Result<WireHits, String> {
    let cut = |bytes: &[u8]| -> Result<Vec<u8>, String> {
        let mut b = super::service::bitmap(bytes)?;
        // `u32::MAX` (the partition was sealing) keeps every row: partitions
        // never reach that row.
        b.remove_range(rows..);
        Ok(super::query::bitmap_bytes(&b))
    };
    h.sure = cut(&h.sure)?;
    h.maybe = cut(&h.maybe)?;
    Ok(h)
}

impl Live {
    /// Applies one feed: rows to write (up to the limit), markers, warnings.
    fn take(&mut self, f: Feed, out: &mut Vec<Vec<u8>>, size: &mut usize, left: &mut Option<u64>) {
        match f {
            Feed::Opened { member, open } => {
                if self.down.remove(&member) {
                    self.warnings
                        .push(format!("node {member}: following its live events again"));
                }
                if self.mode == ExportMode::Unified {
                    for (p, rows) in open {
                        if !self.history.contains(&p) {
                            self.pending.entry(p).or_insert(rows);
                        }
                    }
                }
            }
            Feed::Lost { member, error } => {
                if self.down.insert(member.clone()) {
                    self.warnings.push(format!(
                        "node {member}: lost its live events ({error}); events it imports until it answers again are missing"
                    ));
                }
            }
            Feed::Items {
                member,
                items,
                dropped,
            } => {
                if dropped > 0 {
                    self.warnings.push(format!(
                        "node {member}: {dropped} live events were dropped because this export fell behind (cluster.live-buffer)"
                    ));
                }
                for item in items {
                    match item {
                        LiveItem::Rows { partition, batch } => {
                            if self.history.contains(&partition) || *left == Some(0) {
                                continue;
                            }
                            let rows = match Batch::check_bytes(&batch) {
                                Ok(n) => u64::from(n),
                                Err(e) => {
                                    self.warnings.push(format!(
                                        "node {member}: dropped malformed live rows: {e}"
                                    ));
                                    continue;
                                }
                            };
                            let (batch, rows) = match *left {
                                Some(l) if l < rows => match Batch::from_bytes(&batch) {
                                    Ok(b) => {
                                        let keep: Vec<u32> = (0..l as u32).collect();
                                        (b.select(&keep).to_bytes(), l)
                                    }
                                    Err(_) => continue,
                                },
                                _ => (batch, rows),
                            };
                            if let Some(l) = left.as_mut() {
                                *l -= rows;
                            }
                            *self.shown.entry(partition).or_default() += rows;
                            *size += batch.len();
                            out.push(batch);
                        }
                        LiveItem::Committed { partitions } => {
                            for p in partitions {
                                self.shown.remove(&p);
                                if let Some(rows) = self.pending.remove(&p) {
                                    if rows > 0 && !self.history.contains(&p) {
                                        self.catchup.insert(p, rows);
                                    }
                                }
                            }
                        }
                        LiveItem::Aborted { partitions } => {
                            let mut lost = 0;
                            for p in partitions {
                                self.pending.remove(&p);
                                lost += self.shown.remove(&p).unwrap_or(0);
                            }
                            if lost > 0 {
                                self.warnings.push(format!(
                                    "node {member}: an import aborted after {lost} of its events were exported above; they were not stored and later queries will not return them"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Pulls member `member`'s tap into the export until the export goes away; opens
/// the tap again when the member fails.
async fn pull(
    cluster: Weak<Cluster>,
    member: String,
    mut tap: Option<[u8; 16]>,
    expr: String,
    tx: mpsc::Sender<Feed>,
) {
    loop {
        if tx.is_closed() {
            break;
        }
        let Some(c) = cluster.upgrade() else { return };
        // Open the tap if there is none, else pull it; either failure is one
        // outage: reported, and the tap opened again after a pause.
        let feed = match tap {
            None => c.tap_open(&member, &expr).await.map(|(t, open)| {
                tap = Some(t);
                Feed::Opened {
                    member: member.clone(),
                    open,
                }
            }),
            Some(t) => c
                .tap_next(&member, t)
                .await
                .map(|(items, dropped)| Feed::Items {
                    member: member.clone(),
                    items,
                    dropped,
                }),
        };
        let feed = match feed {
            Ok(Feed::Items { items, dropped, .. }) if items.is_empty() && dropped == 0 => continue,
            Ok(f) => f,
            Err(error) => {
                tap = None;
                let f = Feed::Lost {
                    member: member.clone(),
                    error,
                };
                if tx.send(f).await.is_err() {
                    return;
                }
                drop(c);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if tx.send(feed).await.is_err() {
            break;
        }
    }
    // The export is gone: release the member's tap now rather than at expiry.
    if let (Some(c), Some(t)) = (cluster.upgrade(), tap) {
        c.tap_close(&member, t).await;
    }
}

/// Starts pullers for members that join while the export runs.
async fn follow_new_members(
    cluster: Weak<Cluster>,
    mut followed: HashSet<String>,
    expr: String,
    tx: mpsc::Sender<Feed>,
) {
    let mut tick = tokio::time::interval(NEW_MEMBERS);
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        let Some(c) = cluster.upgrade() else { return };
        for id in c.live_members() {
            if followed.insert(id.clone()) {
                tokio::spawn(pull(cluster.clone(), id, None, expr.clone(), tx.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::builder::BatchBuilder;
    use crate::data::{Field, Schema, Type};

    fn rows(n: u64) -> Vec<u8> {
        let mut b = BatchBuilder::new(Schema::new("t.x", vec![Field::new("n", Type::Count)]));
        for i in 0..n {
            b.column(0).push_count(i);
            b.finish_row();
        }
        b.finish().to_bytes()
    }

    fn live(mode: ExportMode, history: &[[u8; 16]], pending: &[([u8; 16], u32)]) -> Live {
        let (_tx, rx) = mpsc::channel(1);
        Live {
            mode,
            rx,
            history: history.iter().copied().collect(),
            pending: pending.iter().copied().collect(),
            catchup: HashMap::new(),
            shown: HashMap::new(),
            down: HashSet::new(),
            warnings: Vec::new(),
        }
    }

    fn items(member: &str, items: Vec<LiveItem>) -> Feed {
        Feed::Items {
            member: member.into(),
            items,
            dropped: 0,
        }
    }

    fn total(out: &[Vec<u8>]) -> u64 {
        out.iter()
            .map(|b| u64::from(Batch::check_bytes(b).unwrap()))
            .sum()
    }

    #[test]
    fn unified_live_rows_skip_history_and_catch_up_on_commit() {
        let (h, p, q, r) = ([1; 16], [2; 16], [3; 16], [4; 16]);
        // `h` is history; `p` was open with 7 rows when the tap opened; `q` opened later.
        let mut l = live(ExportMode::Unified, &[h], &[(p, 7), (h, 3)]);
        let (mut out, mut size, mut left) = (Vec::new(), 0, None);
        let feed = items(
            "n2",
            vec![
                LiveItem::Rows {
                    partition: h,
                    batch: rows(5),
                },
                LiveItem::Rows {
                    partition: p,
                    batch: rows(2),
                },
                LiveItem::Rows {
                    partition: q,
                    batch: rows(3),
                },
                LiveItem::Committed {
                    partitions: vec![h, p, q],
                },
            ],
        );
        l.take(feed, &mut out, &mut size, &mut left);
        // History's rows are not repeated; the others are live.
        assert_eq!(total(&out), 5);
        // Only `p` has rows from before the tap, to read from history now.
        assert_eq!(l.catchup, HashMap::from([(p, 7)]));
        assert!(l.pending.is_empty(), "{:?}", l.pending);
        // A tap opened again (the member returned) adds its open partitions.
        l.take(
            Feed::Opened {
                member: "n2".into(),
                open: vec![(r, 4), (h, 9)],
            },
            &mut out,
            &mut size,
            &mut left,
        );
        assert_eq!(l.pending.get(&r), Some(&4));
        assert!(!l.pending.contains_key(&h));
    }

    #[test]
    fn continuous_rows_obey_the_limit_and_aborts_are_reported() {
        let (p, q) = ([1; 16], [2; 16]);
        let mut l = live(ExportMode::Continuous, &[], &[]);
        let (mut out, mut size, mut left) = (Vec::new(), 0, Some(6));
        let feed = items(
            "n3",
            vec![
                LiveItem::Rows {
                    partition: p,
                    batch: rows(4),
                },
                LiveItem::Rows {
                    partition: q,
                    batch: rows(4),
                },
                LiveItem::Rows {
                    partition: q,
                    batch: rows(4),
                },
                LiveItem::Aborted {
                    partitions: vec![p],
                },
            ],
        );
        l.take(feed, &mut out, &mut size, &mut left);
        assert_eq!(total(&out), 6);
        assert_eq!(left, Some(0));
        assert!(l.catchup.is_empty());
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("node n3: an import aborted after 4 of its events"));
        // A member lost is reported once per outage, and its return once.
        for _ in 0..3 {
            l.take(
                Feed::Lost {
                    member: "n2".into(),
                    error: "gone".into(),
                },
                &mut out,
                &mut size,
                &mut left,
            );
        }
        l.take(
            Feed::Opened {
                member: "n2".into(),
                open: vec![],
            },
            &mut out,
            &mut size,
            &mut left,
        );
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        // A malformed batch from a member is skipped with a warning.
        let mut l = live(ExportMode::Continuous, &[], &[]);
        let mut left = None;
        l.take(
            items(
                "n4",
                vec![LiveItem::Rows {
                    partition: p,
                    batch: vec![1, 2, 3],
                }],
            ),
            &mut out,
            &mut size,
            &mut left,
        );
        assert!(l.warnings[0].contains("malformed"), "{:?}", l.warnings);
    }
}
