//! Parsing line-based input on several threads.
//!
//! A feeder thread cuts the input into blocks of whole lines; worker threads,
//! each with its own copy of the parser and its own [`Sink`], turn blocks into
//! batches; [`ParallelLines::read`] hands the batches out in input order. Only
//! formats whose lines parse on their own can do this (JSON: one object per
//! line); Zeek TSV carries header state from line to line and stays serial.
//!
//! Measured on 2M Zeek JSON lines (2 cores): parsing was the import's critical
//! path on one thread while the importer, index and archive waited on it.

use super::util::{LineParser, Sink};
use crate::data::Batch;
use crate::source::{ReadError, ReadStats, Reader};
use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

/// Bytes of input per block: big enough that a block of one schema fills a
/// batch of tens of thousands of rows, small enough that the blocks in flight
/// stay a few dozen MiB.
const BLOCK_BYTES: usize = 8 << 20;
/// Blocks read but not yet handed out: bounds memory whatever the speed of
/// each stage (a slow block holds back at most this many behind it).
const IN_FLIGHT: usize = 6;
/// Skip warnings a worker keeps per block for the reader to log in order.
const WARNINGS_PER_BLOCK: usize = 10;

/// A [`LineParser`] whose lines parse independently, so copies of it can parse
/// blocks of one input on several threads.
pub(crate) trait BlockParser: LineParser + Clone {
    /// This copy goes on with a block that does not start the input: checks
    /// that only apply to the input's first line are done. (So only the first
    /// block can refuse the input, and its line numbers are the input's: the
    /// others number their lines from 1, and the reader adds the lines of the
    /// blocks before to their warnings.)
    fn mid_stream(&mut self);
}

/// Whole lines of the input: `bytes[..len]`. The feeder does not count them:
/// that was a pass over every byte, 2% of a JSON import's CPU, and the
/// worker's parse finds every line end anyway.
struct Block {
    seq: u64,
    bytes: Vec<u8>,
    len: usize,
}

/// What the feeder sends workers: a block, or the read error that ended the input.
enum Work {
    Block(Block),
    Failed(u64, io::Error),
}

/// A parsed block, or why the input ended there.
enum Parsed {
    Batches {
        batches: Vec<Batch>,
        events: u64,
        skipped: u64,
        /// The first skips of the block: line number within the block (from
        /// 1), reason.
        warnings: Vec<(u64, String)>,
        /// The block's lines.
        lines: u64,
    },
    /// The parser refused the input (wrong format): nothing after it counts.
    Refused(ReadError),
    /// Reading the input failed after the blocks before this one.
    Io(io::Error),
}

/// A [`Reader`] running a [`BlockParser`] on worker threads.
pub(crate) struct ParallelLines<P> {
    /// The input and parser until the first `read` starts the threads (which
    /// need its batch size before they parse anything).
    start: Option<(Box<dyn BufRead + Send>, P)>,
    results: Option<Receiver<(u64, Parsed)>>,
    /// Returned after a block is handed out, so the feeder may read another.
    tokens: Option<SyncSender<()>>,
    pending: BTreeMap<u64, Parsed>,
    next: u64,
    /// Lines of the blocks handed out so far.
    lines_before: u64,
    /// The input lines of the skip warnings logged.
    #[cfg(test)]
    logged: Vec<u64>,
    batch_size: Arc<AtomicUsize>,
    stats: ReadStats,
    what: &'static str,
    finished: bool,
    block_bytes: usize,
}

impl<P: BlockParser> ParallelLines<P> {
    pub fn new(input: Box<dyn BufRead + Send>, parser: P, what: &'static str) -> Self {
        ParallelLines {
            start: Some((input, parser)),
            results: None,
            tokens: None,
            pending: BTreeMap::new(),
            next: 0,
            lines_before: 0,
            #[cfg(test)]
            logged: Vec::new(),
            batch_size: Arc::new(AtomicUsize::new(1)),
            stats: ReadStats::default(),
            what,
            finished: false,
            block_bytes: BLOCK_BYTES,
        }
    }

    /// Blocks of about `n` bytes instead (tests cross many block boundaries).
    #[cfg(test)]
    fn with_block_bytes(mut self, n: usize) -> Self {
        self.block_bytes = n.max(1);
        self
    }

    /// Starts the feeder and the workers.
    fn spawn(&mut self, input: Box<dyn BufRead + Send>, parser: P) {
        let what = self.what;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let (tokens, token_rx) = mpsc::sync_channel(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            tokens.send(()).expect("the receiver is alive");
        }
        let (work_tx, work_rx) = mpsc::sync_channel::<Work>(workers);
        let work_rx = Arc::new(Mutex::new(work_rx));
        // Parsed blocks' buffers go back to the feeder: as many as blocks in
        // flight, so at most that many exist.
        let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
        let (result_tx, results) = mpsc::channel();
        let mut spawned = 0;
        for _ in 0..workers {
            let (rx, tx, p, bs, rc) = (
                work_rx.clone(),
                result_tx.clone(),
                parser.clone(),
                self.batch_size.clone(),
                recycle_tx.clone(),
            );
            if std::thread::Builder::new()
                .name("vast-parse".into())
                .spawn(move || work(rx, tx, p, bs, rc, what))
                .is_ok()
            {
                spawned += 1;
            }
        }
        let block_bytes = self.block_bytes;
        let feeder = match spawned {
            0 => None,
            _ => std::thread::Builder::new()
                .name("vast-read".into())
                .spawn(move || feed(input, block_bytes, work_tx, token_rx, recycle_rx))
                .ok(),
        };
        if feeder.is_none() {
            let _ = result_tx.send((
                0,
                Parsed::Refused(ReadError::Other(format!(
                    "{what}: cannot start its parsing threads"
                ))),
            ));
        }
        self.results = Some(results);
        self.tokens = Some(tokens);
    }
}

/// The feeder: reads blocks of whole lines, one per token, until the input
/// ends or fails, or the reader is dropped.
///
/// It reads straight into block buffers that the workers hand back: copying
/// out of the input's own buffer into a fresh block, and the page faults of
/// each fresh block, were half of this thread's time.
fn feed(
    mut input: Box<dyn BufRead + Send>,
    block_bytes: usize,
    work: SyncSender<Work>,
    tokens: Receiver<()>,
    recycled: Receiver<Vec<u8>>,
) {
    let size = block_bytes + (1 << 16);
    // A buffer of at least `min` bytes, all initialized so reads can go
    // straight into it.
    let buffer = |min: usize| loop {
        match recycled.try_recv() {
            // One grown for a very long line is let go.
            Ok(v) if v.len() > 2 * size => continue,
            Ok(mut v) => {
                if v.len() < min {
                    v.resize(min, 0);
                }
                break v;
            }
            Err(_) => break vec![0; min],
        }
    };
    let mut buf = buffer(size);
    let mut filled = 0;
    let mut seq = 0u64;
    loop {
        if tokens.recv().is_err() {
            return;
        }
        // Fill up to a block, then cut after its last newline; a line longer
        // than a block makes the block grow until the line ends. `end`: the
        // input ended (`Some(None)`) or failed.
        let (mut searched, mut end) = (0, None);
        let cut = loop {
            if filled >= block_bytes {
                if let Some(i) = memchr::memrchr(b'\n', &buf[searched..filled]) {
                    break searched + i + 1;
                }
                searched = filled;
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            match read_into(&mut input, &mut buf[filled..]) {
                Ok(0) => {
                    end = Some(None);
                    break filled;
                }
                Ok(n) => filled += n,
                // What was read before the error is still handed on.
                Err(e) => {
                    end = Some(Some(e));
                    break filled;
                }
            }
        };
        let rest = filled - cut;
        let mut next = buffer(size.max(rest + (1 << 16)));
        next[..rest].copy_from_slice(&buf[cut..filled]);
        let bytes = std::mem::replace(&mut buf, next);
        filled = rest;
        if cut > 0 {
            let block = Block {
                seq,
                bytes,
                len: cut,
            };
            if work.send(Work::Block(block)).is_err() {
                return;
            }
            seq += 1;
        }
        match end {
            None => {}
            Some(None) => return,
            Some(Some(e)) => {
                let _ = work.send(Work::Failed(seq, e));
                return;
            }
        }
    }
}

/// Reads once into `buf` (a reader's buffer is bypassed for large reads); the
/// bytes read, 0 at the end of input.
fn read_into(input: &mut Box<dyn BufRead + Send>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// A worker: parses blocks with its own parser and sink until the feeder stops.
fn work<P: BlockParser>(
    rx: Arc<Mutex<Receiver<Work>>>,
    tx: Sender<(u64, Parsed)>,
    mut parser: P,
    batch_size: Arc<AtomicUsize>,
    recycle: Sender<Vec<u8>>,
    what: &'static str,
) {
    let mut sink = Sink::new(what);
    sink.defer_warnings(WARNINGS_PER_BLOCK);
    loop {
        let next = rx.lock().map(|r| r.recv());
        let block = match next {
            Ok(Ok(Work::Block(b))) => b,
            Ok(Ok(Work::Failed(seq, e))) => {
                let _ = tx.send((seq, Parsed::Io(e)));
                return;
            }
            _ => return,
        };
        if block.seq > 0 {
            parser.mid_stream();
        }
        sink.set_batch_size(batch_size.load(Ordering::Relaxed));
        let parsed = parse_block(&mut parser, &mut sink, &block);
        let _ = recycle.send(block.bytes);
        if tx.send((block.seq, parsed)).is_err() {
            return;
        }
    }
}

fn parse_block<P: LineParser>(parser: &mut P, sink: &mut Sink, block: &Block) -> Parsed {
    let mut rest = &block.bytes[..block.len];
    let mut no = 1;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = match line.split_last() {
            Some((b'\r', l)) => l,
            _ => line,
        };
        if let Err(e) = parser.line(line, no, sink) {
            return Parsed::Refused(e);
        }
        rest = next;
        no += 1;
    }
    parser.finish(sink);
    let batches = sink.take_all();
    let stats = std::mem::take(&mut sink.stats);
    Parsed::Batches {
        batches,
        events: stats.events,
        skipped: stats.skipped,
        warnings: sink.take_warnings(),
        lines: no - 1,
    }
}

impl<P: BlockParser> Reader for ParallelLines<P> {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<Batch>>, ReadError> {
        self.batch_size.store(batch_size.max(1), Ordering::Relaxed);
        if let Some((input, parser)) = self.start.take() {
            self.spawn(input, parser);
        }
        while !self.finished {
            let parsed = match self.pending.remove(&self.next) {
                Some(p) => p,
                None => match self.results.as_ref().map(|r| r.recv()) {
                    Some(Ok((seq, p))) => {
                        self.pending.insert(seq, p);
                        continue;
                    }
                    // Every worker is done: the input ended.
                    _ => break,
                },
            };
            self.next += 1;
            if let Some(t) = &self.tokens {
                let _ = t.try_send(());
            }
            match parsed {
                Parsed::Batches {
                    batches,
                    events,
                    skipped,
                    warnings,
                    lines,
                } => {
                    // The warnings are the block's first skips, so the k-th is the
                    // input's (skipped before + k)-th: the first ten of the whole
                    // input are logged, then a count every 10,000.
                    let before = self.stats.skipped;
                    for (k, (line, reason)) in warnings.iter().enumerate() {
                        if before + k as u64 >= 10 {
                            break;
                        }
                        let line = self.lines_before + line;
                        #[cfg(test)]
                        self.logged.push(line);
                        tracing::warn!("{}: skipping line {line}: {reason}", self.what);
                    }
                    self.stats.skipped += skipped;
                    if self.stats.skipped / 10_000 > before / 10_000 {
                        tracing::warn!(
                            "{}: skipped {} malformed lines so far",
                            self.what,
                            self.stats.skipped
                        );
                    }
                    self.stats.events += events;
                    self.lines_before += lines;
                    if !batches.is_empty() {
                        return Ok(Some(batches));
                    }
                }
                Parsed::Refused(e) => {
                    self.finished = true;
                    return Err(e);
                }
                Parsed::Io(e) => {
                    self.finished = true;
                    tracing::warn!("{}: input ended with an error: {e}", self.what);
                    return Err(ReadError::Io(e));
                }
            }
        }
        self.finished = true;
        // Dropping the channels stops the threads if they are still running.
        self.results = None;
        self.tokens = None;
        Ok(None)
    }

    fn stats(&self) -> ReadStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::JsonParser;
    use super::super::testutil::read_all;
    use super::*;
    use crate::data::Value;
    use std::io::{Cursor, Read};

    fn reader(text: String, block: usize) -> ParallelLines<JsonParser> {
        ParallelLines::new(
            Box::new(Cursor::new(text.into_bytes())),
            JsonParser::new(super::super::json::Flavor::Generic, None),
            "json reader",
        )
        .with_block_bytes(block)
    }

    /// The `i` values of all rows, in the order the reader returned them.
    fn values(bs: &[Batch]) -> Vec<u64> {
        let mut out = Vec::new();
        for b in bs {
            let i = b.schema.field_index("i").unwrap();
            for r in 0..b.rows as usize {
                match b.columns[i].value(r, &b.schema.fields[i].ty) {
                    Value::Count(v) => out.push(v),
                    v => panic!("unexpected {v:?}"),
                }
            }
        }
        out
    }

    #[test]
    fn blocks_come_back_in_input_order_with_every_row_once() {
        // Two shapes alternating in runs, malformed lines among them, blocks of
        // a few hundred bytes: hundreds of block boundaries, mid-line cuts.
        let mut text = String::new();
        let mut want = Vec::new();
        for i in 0..20_000u64 {
            if i % 997 == 5 {
                text.push_str("{not json\n");
                continue;
            }
            if (i / 50) % 2 == 0 {
                text.push_str(&format!("{{\"i\": {i}, \"s\": \"x{}\"}}\n", i % 7));
            } else {
                text.push_str(&format!("{{\"i\": {i}, \"b\": true}}\r\n"));
            }
            want.push(i);
        }
        // The last line without a newline.
        text.push_str("{\"i\": 20000}");
        want.push(20000);
        for block in [1, 300, 4096, 1 << 20] {
            let mut r = reader(text.clone(), block);
            let (bs, err) = read_all(&mut r, 128);
            assert!(err.is_none(), "{err:?}");
            assert!(bs.iter().all(|b| b.rows as usize <= 128 && b.rows > 0));
            let mut got = values(&bs);
            // Batches of several shapes may interleave within a block; the rows
            // of each shape keep their order, and all rows are there once.
            let shape_a: Vec<u64> = got.iter().copied().filter(|i| (i / 50) % 2 == 0).collect();
            assert!(shape_a.windows(2).all(|w| w[0] < w[1]), "block {block}");
            got.sort_unstable();
            assert_eq!(got, want, "block {block}");
            let st = r.stats();
            assert_eq!(st.events, want.len() as u64);
            assert_eq!(st.skipped, 21);
            // The first ten skips are logged with their lines in the input
            // (line i + 1 holds i), across block boundaries.
            let lines: Vec<u64> = (0..10).map(|k| 997 * k + 5 + 1).collect();
            assert_eq!(r.logged, lines, "block {block}");
        }
    }

    /// Lines longer than a block's buffer grow it; such buffers go back to
    /// the feeder and are let go or reused, and no line loses a byte.
    #[test]
    fn lines_longer_than_a_buffer_arrive_whole() {
        let mut text = String::new();
        let mut want = Vec::new();
        for i in 0..300u64 {
            // Every 7th line is 70 to 350 KB: past a buffer of a 1,000-byte
            // block (65 KiB more), up to past twice that.
            let pad = if i % 7 == 3 {
                70_000 * (1 + (i as usize / 7) % 5)
            } else {
                i as usize % 40
            };
            text.push_str(&format!("{{\"i\": {i}, \"s\": \"{}\"}}\n", "x".repeat(pad)));
            want.push((i, pad));
        }
        let mut r = reader(text, 1000);
        let (bs, err) = read_all(&mut r, 50);
        assert!(err.is_none(), "{err:?}");
        let mut got = Vec::new();
        for b in &bs {
            let (i, s) = (
                b.schema.field_index("i").unwrap(),
                b.schema.field_index("s").unwrap(),
            );
            for row in 0..b.rows as usize {
                let Value::Count(n) = b.columns[i].value(row, &b.schema.fields[i].ty) else {
                    panic!("i is a count");
                };
                let Value::String(x) = b.columns[s].value(row, &b.schema.fields[s].ty) else {
                    panic!("s is a string");
                };
                assert!(x.bytes().all(|c| c == b'x'), "line {n}");
                got.push((n, x.len()));
            }
        }
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!((r.stats().events, r.stats().skipped), (300, 0));
    }

    #[test]
    fn only_the_first_line_of_the_input_decides_the_format() {
        let r = |text: &str| {
            let mut r = reader(text.to_string(), 8);
            read_all(&mut r, 100)
        };
        let (bs, err) = r("not json at all\n{\"i\": 1}\n");
        assert!(bs.is_empty());
        assert!(matches!(err, Some(ReadError::WrongFormat(_))), "{err:?}");
        // A later block starting with a bad line is a skipped line, not a refusal.
        let (bs, err) = r("{\"i\": 1}\nnot json\n{\"i\": 2}\n");
        assert!(err.is_none(), "{err:?}");
        assert_eq!(values(&bs), vec![1, 2]);
    }

    /// Input that yields `good` and then fails.
    struct Failing(Cursor<Vec<u8>>);
    impl Read for Failing {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            match self.0.read(b)? {
                0 => Err(io::Error::other("disk on fire")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_read_error_comes_after_every_row_read_before_it() {
        let text: String = (0..5000).map(|i| format!("{{\"i\": {i}}}\n")).collect();
        let input = std::io::BufReader::with_capacity(100, Failing(Cursor::new(text.into_bytes())));
        let mut r = ParallelLines::new(
            Box::new(input),
            JsonParser::new(super::super::json::Flavor::Generic, None),
            "json reader",
        )
        .with_block_bytes(1000);
        let (bs, err) = read_all(&mut r, 1000);
        assert!(matches!(err, Some(ReadError::Io(_))), "{err:?}");
        assert_eq!(values(&bs), (0..5000).collect::<Vec<_>>());
    }

    /// Thread ids of the parsing threads of this process (of any reader:
    /// tests run in parallel).
    fn threads() -> std::collections::HashSet<std::ffi::OsString> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Default::default();
        };
        tasks
            .filter_map(|t| {
                let t = t.ok()?;
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                (comm.starts_with("vast-parse") || comm.starts_with("vast-read"))
                    .then(|| t.file_name())
            })
            .collect()
    }

    #[test]
    fn dropping_a_reader_mid_input_stops_its_threads() {
        // An endless input: the feeder would read forever if nobody stopped it.
        struct Endless;
        impl Read for Endless {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                let line = b"{\"i\": 1}\n";
                let n = b.len() / line.len() * line.len();
                for c in b[..n].chunks_mut(line.len()) {
                    c.copy_from_slice(line);
                }
                Ok(n)
            }
        }
        let before = threads();
        let mut r = ParallelLines::new(
            Box::new(std::io::BufReader::new(Endless)),
            JsonParser::new(super::super::json::Flavor::Generic, None),
            "json reader",
        )
        .with_block_bytes(1 << 16);
        assert!(r.read(100).unwrap().is_some());
        // This reader's threads, and any other test's started meanwhile:
        // counting all of the process's threads failed on a loaded machine,
        // where other tests' readers outlived the wait.
        let ours: std::collections::HashSet<_> = threads().difference(&before).cloned().collect();
        assert!(!ours.is_empty());
        drop(r);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut left = ours.intersection(&threads()).count();
        while left > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            left = ours.intersection(&threads()).count();
        }
        assert_eq!(
            left,
            0,
            "{left} of the reader's {} threads left",
            ours.len()
        );
    }
}
