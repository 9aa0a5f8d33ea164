//! Terminal-aware output: human summaries on a terminal, JSON when piped, and
//! progress on stderr only when a person watches it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// `1234567` → `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    indicatif::HumanCount(n).to_string()
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `vast status` for a person.
pub fn render_status(v: &Value) -> String {
    let mut s = String::new();
    let node = v.get("node").and_then(Value::as_str).unwrap_or("?");
    let comps: Vec<&str> = v
        .get("components")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    s += &format!("node        {node}\n");
    if let Some(d) = v.get("db-directory").and_then(Value::as_str) {
        s += &format!("database    {d}\n");
    }
    s += &format!(
        "components  {}\n",
        if comps.is_empty() {
            "none".to_string()
        } else {
            comps.join(", ")
        }
    );
    s += &format!(
        "events      {} in {} partitions, {} on disk\n",
        count(u(v, "events")),
        count(u(v, "partitions")),
        bytes(u(v, "bytes-on-disk"))
    );
    if let Some(c) = v
        .get("index")
        .and_then(|i| i.get("corrupt"))
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    {
        s += &format!("corrupt     {} partitions (see status --json)\n", c.len());
    }
    if let Some(c) = v
        .get("compaction")
        .filter(|c| c.get("enabled").and_then(Value::as_bool) == Some(true))
    {
        let state = if c.get("running").and_then(Value::as_bool) == Some(true) {
            "merging"
        } else {
            "idle"
        };
        s += &format!(
            "compaction  {state}, {} small partitions, {} merges of {} partitions so far\n",
            count(u(c, "small-partitions")),
            count(u(c, "merges")),
            count(u(c, "partitions-merged"))
        );
        if let Some(e) = c.get("last-error").and_then(Value::as_str) {
            s += &format!("            last error: {e}\n");
        }
    }
    if let Some(schemas) = v.get("schemas").and_then(Value::as_object) {
        if !schemas.is_empty() {
            let w = schemas.keys().map(String::len).max().unwrap_or(6).max(6);
            s += &format!(
                "\n{:<w$}  {:>12}  {:>10}\n",
                "SCHEMA", "EVENTS", "PARTITIONS"
            );
            for (name, st) in schemas {
                s += &format!(
                    "{name:<w$}  {:>12}  {:>10}\n",
                    count(u(st, "events")),
                    count(u(st, "partitions"))
                );
            }
        }
    }
    if let Some(sources) = v.get("sources").and_then(Value::as_object) {
        if !sources.is_empty() {
            s += "\nsources\n";
            for (label, st) in sources {
                let fields = match st.as_object() {
                    Some(o) => o
                        .iter()
                        .map(|(k, v)| match v {
                            Value::String(x) => format!("{k}={x}"),
                            other => format!("{k}={other}"),
                        })
                        .collect::<Vec<_>>()
                        .join("  "),
                    None => st.to_string(),
                };
                s += &format!("  {label}  {fields}\n");
            }
        }
    }
    s
}

/// `vast peers` for a person: one row per member.
pub fn render_peers(v: &Value) -> String {
    let rows: Vec<[String; 4]> = v
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let id = m.get("id").and_then(Value::as_str).unwrap_or("?");
            let me = m.get("self").and_then(Value::as_bool).unwrap_or(false);
            let reachable = m.get("reachable").and_then(Value::as_bool).unwrap_or(false);
            let list = |k: &str| {
                m.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            let comps = list("components");
            [
                if me {
                    format!("{id} (this)")
                } else {
                    id.to_string()
                },
                if reachable { "up" } else { "down" }.to_string(),
                if comps.is_empty() { "-".into() } else { comps },
                list("addrs"),
            ]
        })
        .collect();
    let head = ["NODE", "STATE", "COMPONENTS", "ADDRESSES"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |r: [&str; 4]| {
        format!(
            "{:<a$}  {:<b$}  {:<c$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            a = w[0],
            b = w[1],
            c = w[2]
        )
        .trim_end()
        .to_string()
            + "\n"
    };
    let mut s = line(head);
    for r in &rows {
        s += &line([&r[0], &r[1], &r[2], &r[3]]);
    }
    s
}

/// Prints a JSON answer: pretty JSON when asked or piped, else `human`.
pub fn print_json_or(v: &Value, json: bool, human: fn(&Value) -> String) -> anyhow::Result<()> {
    if json || !stdout_is_terminal() {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        print!("{}", human(v));
    }
    Ok(())
}

/// Counters a command updates while it runs; a ticker thread draws them.
#[derive(Clone, Default)]
pub struct Counters {
    pub events: Arc<AtomicU64>,
    pub bytes: Arc<AtomicU64>,
}

/// A progress line on stderr (events, rate, bytes), drawn only when stderr is a
/// terminal. Without one, nothing extra is printed.
pub struct Progress {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// `bytes_verb` says what happens to the bytes ("read", "written").
    pub fn start(c: &Counters, bytes_verb: &'static str) -> Option<Progress> {
        if !stderr_is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .expect("a valid progress template");
        bar.set_style(style);
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s, c) = (bar.clone(), stop.clone(), c.clone());
        let ticker = std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while !s.load(Ordering::Relaxed) {
                let events = c.events.load(Ordering::Relaxed);
                let rate = events as f64 / start.elapsed().as_secs_f64().max(1e-3);
                b.set_message(format!(
                    "{} events ({}/s), {} {bytes_verb}",
                    count(events),
                    count(rate as u64),
                    bytes(c.bytes.load(Ordering::Relaxed))
                ));
                b.tick();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Some(Progress {
            bar,
            stop,
            ticker: Some(ticker),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        // The summary line that follows replaces the progress line.
        self.bar.finish_and_clear();
    }
}

/// Counts the bytes consumed from a reader.
pub struct CountingRead<R> {
    pub inner: R,
    pub bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingRead<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.bytes.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.consume(amt)
    }
}

/// Counts the bytes written.
pub struct CountingWrite<W> {
    pub inner: W,
    pub bytes: Arc<AtomicU64>,
}

impl<W: Write> Write for CountingWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the events a reader produces.
pub struct CountingReader {
    pub inner: Box<dyn vast_node::source::Reader>,
    pub events: Arc<AtomicU64>,
}

impl vast_node::source::Reader for CountingReader {
    fn read(
        &mut self,
        batch_size: usize,
    ) -> Result<Option<Vec<vast_node::data::Batch>>, vast_node::source::ReadError> {
        let r = self.inner.read(batch_size)?;
        if let Some(bs) = &r {
            let n: u64 = bs.iter().map(|b| b.rows as u64).sum();
            self.events.fetch_add(n, Ordering::Relaxed);
        }
        Ok(r)
    }
    fn stats(&self) -> vast_node::source::ReadStats {
        self.inner.stats()
    }
}
