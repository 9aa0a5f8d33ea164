//! Syslog lines (`import syslog`): RFC 5424 (`syslog.rfc5424`) and BSD / RFC 3164
//! (`syslog.rfc3164`, PRI optional, times in UTC).
//!
//! BSD timestamps (`Mmm dd hh:mm:ss`) carry no year. A line is taken to be from
//! the most recent past: the current year, unless that puts it more than a day
//! ahead of the clock (a December line read in January), then the year before;
//! `Feb 29` goes to the latest leap year not in the future. The day of slack
//! absorbs senders whose local time is ahead of UTC. A date that exists in no
//! year (`Feb 30`) is not a timestamp, and the line is skipped and reported.

use super::util::{days_from_civil, days_in_month, parse_iso_time};
use super::{LineDriven, LineParser, Sink};
use crate::data::{BatchBuilder, Field, Schema, Type};
use crate::source::{ReadError, ReadStats, Reader};
use chrono::Datelike;
use std::io::BufRead;

/// Reader of RFC 5424 and RFC 3164 syslog lines.
pub struct SyslogReader(LineDriven<SyslogParser>);

impl SyslogReader {
    /// A reader of syslog lines; RFC 3164 times get their year from the clock.
    pub fn new(input: Box<dyn BufRead + Send>) -> Self {
        Self::at(input, chrono::Utc::now())
    }

    /// A reader that takes `now` as the current time for RFC 3164 years.
    pub(crate) fn at(input: Box<dyn BufRead + Send>, now: chrono::DateTime<chrono::Utc>) -> Self {
        let parser = SyslogParser {
            builders: None,
            clock: Clock {
                year: now.year() as i64,
                now_secs: now.timestamp(),
            },
        };
        SyslogReader(LineDriven::new(input, parser, "syslog reader"))
    }
}

impl Reader for SyslogReader {
    fn read(&mut self, batch_size: usize) -> Result<Option<Vec<crate::data::Batch>>, ReadError> {
        self.0.read(batch_size)
    }
    fn stats(&self) -> ReadStats {
        self.0.stats()
    }
}

pub(crate) struct SyslogParser {
    /// Builders of the rfc5424 and rfc3164 schemas, made on first use.
    builders: Option<(usize, usize)>,
    clock: Clock,
}

/// The current time, for the year of RFC 3164 timestamps.
#[derive(Clone, Copy)]
struct Clock {
    year: i64,
    now_secs: i64,
}

/// How far ahead of the clock a yearless timestamp may lie and still be taken
/// as this year's: senders log local time, up to 14 hours ahead of UTC.
const AHEAD_SECS: i64 = 86_400;

fn rfc5424_schema() -> Schema {
    let s = Type::String;
    Schema::new(
        "syslog.rfc5424",
        vec![
            Field::new("facility", Type::Count),
            Field::new("severity", Type::Count),
            Field::new("version", Type::Count),
            Field::new("ts", Type::timestamp()),
            Field::new("hostname", s.clone()),
            Field::new("app_name", s.clone()),
            Field::new("process_id", s.clone()),
            Field::new("message_id", s.clone()),
            Field::new("structured_data", s.clone()),
            Field::new("message", s),
        ],
    )
}

fn rfc3164_schema() -> Schema {
    let s = Type::String;
    Schema::new(
        "syslog.rfc3164",
        vec![
            Field::new("facility", Type::Count),
            Field::new("severity", Type::Count),
            Field::new("ts", Type::timestamp()),
            Field::new("hostname", s.clone()),
            Field::new("app_name", s.clone()),
            Field::new("process_id", s.clone()),
            Field::new("message", s),
        ],
    )
}

/// `<PRI>` as (facility, severity) and the rest.
fn pri(s: &str) -> Option<((u64, u64), &str)> {
    let rest = s.strip_prefix('<')?;
    let end = rest.find('>')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let p: u64 = digits.parse().ok()?;
    (p <= 191).then_some(((p / 8, p % 8), &rest[end + 1..]))
}

/// Splits off one space-terminated token.
fn token(s: &str) -> Option<(&str, &str)> {
    let (t, rest) = s.split_once(' ').unwrap_or((s, ""));
    (!t.is_empty()).then_some((t, rest))
}

fn nil(t: &str) -> Option<&str> {
    (t != "-").then_some(t)
}

struct Rfc5424<'a> {
    version: u64,
    ts: Option<i64>,
    host: Option<&'a str>,
    app: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    sd: Option<&'a str>,
    msg: Option<&'a str>,
}

/// Structured data: `-` or `[id k="v" ...]...` (quoted values escape `"`, `\`, `]`).
fn structured_data(s: &str) -> Option<(Option<&str>, &str)> {
    if let Some(rest) = s.strip_prefix('-') {
        if rest.is_empty() || rest.starts_with(' ') {
            return Some((None, rest.strip_prefix(' ').unwrap_or(rest)));
        }
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut quoted = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 || !(i == b.len() || b[i] == b' ') {
        return None;
    }
    Some((Some(&s[..i]), s.get(i + 1..).unwrap_or("")))
}

fn rfc5424(s: &str) -> Option<Rfc5424<'_>> {
    let (v, rest) = token(s)?;
    if v.len() > 2 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (ts, rest) = token(rest)?;
    let ts = match nil(ts) {
        Some(t) => Some(parse_iso_time(t.as_bytes())?),
        None => None,
    };
    let (host, rest) = token(rest)?;
    let (app, rest) = token(rest)?;
    let (procid, rest) = token(rest)?;
    let (msgid, rest) = token(rest)?;
    let (sd, msg) = structured_data(rest)?;
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some(Rfc5424 {
        version: v.parse().ok()?,
        ts,
        host: nil(host),
        app: nil(app),
        procid: nil(procid),
        msgid: nil(msgid),
        sd,
        msg: (!msg.is_empty()).then_some(msg),
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Mmm dd hh:mm:ss` in the most recent year that is not ahead of the clock, UTC.
fn bsd_time(s: &str, clock: Clock) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let m = MONTHS.iter().position(|m| *m == &s[..3])? as u32 + 1;
    let d: u32 = s[4..6].trim_start().parse().ok()?;
    let (h, mi, sec): (i64, i64, i64) = (
        s[7..9].parse().ok()?,
        s[10..12].parse().ok()?,
        s[13..15].parse().ok()?,
    );
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Leap years are at most eight years apart (2096, 2104).
    (0..=8).find_map(|back| {
        let year = clock.year - back;
        if d > days_in_month(year, m) {
            return None;
        }
        let secs = days_from_civil(year, m, d) * 86_400 + h * 3600 + mi * 60 + sec;
        (secs <= clock.now_secs + AHEAD_SECS).then_some(secs * 1_000_000_000)
    })
}

/// Whether text is laid out as `Mmm dd hh:mm:ss`, valid or not.
fn bsd_layout(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 15
        && s.get(..3).is_some_and(|m| MONTHS.contains(&m))
        && [3, 6].iter().all(|&i| b[i] == b' ')
        && [9, 12].iter().all(|&i| b[i] == b':')
}

struct Rfc3164<'a> {
    ts: i64,
    host: &'a str,
    app: Option<&'a str>,
    pid: Option<&'a str>,
    msg: &'a str,
}

fn rfc3164(s: &str, clock: Clock) -> Option<Rfc3164<'_>> {
    let ts = bsd_time(s.get(..15)?, clock)?;
    let (host, rest) = token(s[15..].strip_prefix(' ')?)?;
    // `tag[pid]: msg` or `tag: msg`; anything else is all message.
    let tag_end = rest.find(['[', ':', ' ']).unwrap_or(rest.len());
    let (app, pid, msg) = match rest[tag_end..].chars().next() {
        Some('[') if tag_end > 0 => {
            let after = &rest[tag_end + 1..];
            match after.split_once(']') {
                Some((pid, m)) => {
                    let m = m.strip_prefix(':').unwrap_or(m);
                    (Some(&rest[..tag_end]), Some(pid), m)
                }
                None => (None, None, rest),
            }
        }
        Some(':') if tag_end > 0 => (Some(&rest[..tag_end]), None, &rest[tag_end + 1..]),
        _ => (None, None, rest),
    };
    Some(Rfc3164 {
        ts,
        host,
        app,
        pid,
        msg: msg.strip_prefix(' ').unwrap_or(msg),
    })
}

fn push_opt(b: &mut BatchBuilder, i: usize, v: Option<&str>) {
    match v {
        Some(s) => b.column(i).push_str(s),
        None => b.column(i).push_null(),
    }
}

impl LineParser for SyslogParser {
    fn line(&mut self, line: &[u8], no: u64, sink: &mut Sink) -> Result<(), ReadError> {
        let Ok(line) = std::str::from_utf8(line) else {
            sink.skip(no, format_args!("invalid utf-8"));
            return Ok(());
        };
        if line.trim().is_empty() {
            return Ok(());
        }
        let (i5424, i3164) = *self.builders.get_or_insert_with(|| {
            (
                sink.builder_for(rfc5424_schema()),
                sink.builder_for(rfc3164_schema()),
            )
        });
        let (prio, rest) = match pri(line) {
            Some((p, r)) => (Some(p), r),
            None => (None, line),
        };
        if let (Some((fac, sev)), Some(m)) = (prio, rfc5424(rest)) {
            let b = sink.builder(i5424);
            b.column(0).push_count(fac);
            b.column(1).push_count(sev);
            b.column(2).push_count(m.version);
            match m.ts {
                Some(t) => b.column(3).push_time(t),
                None => b.column(3).push_null(),
            }
            push_opt(b, 4, m.host);
            push_opt(b, 5, m.app);
            push_opt(b, 6, m.procid);
            push_opt(b, 7, m.msgid);
            push_opt(b, 8, m.sd);
            push_opt(b, 9, m.msg);
            sink.commit(i5424);
        } else if let Some(m) = rfc3164(rest, self.clock) {
            let b = sink.builder(i3164);
            match prio {
                Some((fac, sev)) => {
                    b.column(0).push_count(fac);
                    b.column(1).push_count(sev);
                }
                None => {
                    b.column(0).push_null();
                    b.column(1).push_null();
                }
            }
            b.column(2).push_time(m.ts);
            b.column(3).push_str(m.host);
            push_opt(b, 4, m.app);
            push_opt(b, 5, m.pid);
            b.column(6).push_str(m.msg);
            sink.commit(i3164);
        } else if let Some(ts) = rest.get(..15).filter(|t| bsd_layout(t)) {
            sink.skip(no, format_args!("timestamp {ts:?} names no date"));
        } else {
            sink.skip(no, format_args!("neither rfc 5424 nor rfc 3164 syslog"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::Format;
    use crate::data::Value;

    #[test]
    fn syslog_file() {
        let Some(mut r) = file_reader(Format::Syslog, "syslog/syslog.log") else {
            return;
        };
        let (bs, err) = read_all(r.as_mut(), 100);
        assert!(err.is_none());
        let s = r.stats();
        assert_eq!(s.events, 12);
        assert_eq!(s.skipped, 1, "the line without PRI is neither format");
        let b = &bs[0];
        assert_eq!(b.schema.name, "syslog.rfc5424");
        assert_eq!(field(b, 0, "facility"), Value::Count(4));
        assert_eq!(field(b, 0, "severity"), Value::Count(2));
        assert_eq!(field(b, 0, "version"), Value::Count(8));
        assert_eq!(field(b, 0, "app_name"), Value::String("su".into()));
        assert_eq!(
            field(b, 0, "structured_data"),
            Value::String(
                r#"[exampleSDID@32473 iut="3" eventSource="App\]lication" eventID="1011"]"#.into()
            )
        );
        assert_eq!(field(b, 1, "structured_data"), Value::Null);
        assert_eq!(field(b, 2, "ts"), Value::Null);
        assert_eq!(field(b, 4, "message"), Value::Null);
        assert_eq!(field(b, 5, "process_id"), Value::Null);
        assert_eq!(
            field(b, 5, "ts"),
            Value::Time(crate::data::value::parse_time("2020-03-02T18:37:57.819303Z").unwrap())
        );
        assert_eq!(field(b, 8, "process_id"), Value::String("1370".into()));
    }

    #[test]
    fn bsd_years_come_from_the_clock() {
        use chrono::TimeZone;
        let read = |now: (i32, u32, u32), text: &str| {
            let now = chrono::Utc
                .with_ymd_and_hms(now.0, now.1, now.2, 10, 0, 0)
                .unwrap();
            let input = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
            let mut r = super::SyslogReader::at(input, now);
            let (bs, err) = read_all(&mut r, 100);
            assert!(err.is_none());
            let times: Vec<Value> = bs
                .iter()
                .flat_map(|b| (0..b.rows as usize).map(move |i| field(b, i, "ts")))
                .collect();
            (times, crate::source::Reader::stats(&r).skipped)
        };
        let t = |s: &str| Value::Time(crate::data::value::parse_time(s).unwrap());
        let (times, skipped) = read(
            (2026, 1, 2),
            "Dec 31 23:59:59 h a: last year's\n\
             Jan  2 09:00:00 h a: this morning\n\
             Jan  3 08:00:00 h a: ahead by less than a day\n\
             Jan  4 00:00:00 h a: ahead by more than a day\n\
             Feb 29 12:00:00 h a: the latest leap day\n\
             Feb 30 12:00:00 h a: no such day\n\
             Apr 31 12:00:00 h a: no such day\n",
        );
        assert_eq!(
            times,
            [
                t("2025-12-31T23:59:59Z"),
                t("2026-01-02T09:00:00Z"),
                t("2026-01-03T08:00:00Z"),
                t("2025-01-04T00:00:00Z"),
                t("2024-02-29T12:00:00Z"),
            ]
        );
        assert_eq!(skipped, 2, "impossible dates are reported, not shifted");
        let (times, _) = read((2024, 3, 1), "Feb 29 12:00:00 h a: leap year\n");
        assert_eq!(times, [t("2024-02-29T12:00:00Z")]);
    }

    #[test]
    fn bsd_lines() {
        let text = "<13>Feb  5 17:32:18 myhost sshd[4242]: Accepted password\n\
                    Mar 10 01:02:03 gw kernel: eth0 up\n\
                    Mar 10 01:02:03 gw just a message\n\
                    <999>Mar 10 01:02:03 gw bad: pri\n\
                    not syslog at all\n";
        let mut r = reader_for(Format::Syslog, text.as_bytes().to_vec());
        let (bs, err) = read_all(r.as_mut(), 100);
        assert!(err.is_none());
        assert_eq!(r.stats().events, 3);
        assert_eq!(r.stats().skipped, 2);
        let b = &bs[0];
        assert_eq!(b.schema.name, "syslog.rfc3164");
        assert_eq!(field(b, 0, "facility"), Value::Count(1));
        assert_eq!(field(b, 0, "severity"), Value::Count(5));
        assert_eq!(field(b, 0, "hostname"), Value::String("myhost".into()));
        assert_eq!(field(b, 0, "app_name"), Value::String("sshd".into()));
        assert_eq!(field(b, 0, "process_id"), Value::String("4242".into()));
        assert_eq!(
            field(b, 0, "message"),
            Value::String("Accepted password".into())
        );
        assert_eq!(field(b, 1, "severity"), Value::Null);
        assert_eq!(field(b, 1, "app_name"), Value::String("kernel".into()));
        assert_eq!(field(b, 2, "app_name"), Value::Null);
        assert_eq!(
            field(b, 2, "message"),
            Value::String("just a message".into())
        );
        assert!(matches!(field(b, 1, "ts"), Value::Time(_)));
    }
}
