//! The command line a user meets: help, possible values, completions, the man
//! page, version, terminal-aware output (progress, colour, summaries) and the
//! configuration environment. Terminal behaviour runs the binary under a pseudo
//! terminal with `script`.

mod common;

use common::*;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn vast(args: &[&str]) -> Output {
    vast_with(args, None, Duration::from_secs(60))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a shell command line under a pseudo terminal (stdin, stdout and stderr
/// are the terminal, 120 columns), with `env` set; returns everything the
/// terminal received. `None` (the caller skips) without util-linux `script`.
fn on_terminal(cmdline: &str, env: &[(&str, &str)]) -> Option<String> {
    let have = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!("skipping: util-linux `script` is not installed");
        return None;
    }
    let full = format!("stty cols 120 rows 40; {cmdline}");
    let mut child = Command::new("timeout")
        .args(["-s", "KILL", "120", "script", "-qec", &full, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting script");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{cmdline} under a terminal failed: {out}");
    Some(out)
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vast")
}

#[test]
fn help_lists_formats_examples_and_descriptions() {
    let out = text(&vast(&["import", "--help"]).stdout);
    for f in [
        "zeek",
        "zeek-json",
        "suricata",
        "json",
        "csv",
        "syslog",
        "pcap",
        "test",
    ] {
        assert!(
            out.contains(&format!("- {f}:")),
            "import help lacks {f}:\n{out}"
        );
    }
    assert!(out.contains("Examples:"), "{out}");
    let out = text(&vast(&["export", "--help"]).stdout);
    for f in ["json", "csv", "ascii", "zeek", "pcap", "arrow", "null"] {
        assert!(
            out.contains(&format!("- {f}:")),
            "export help lacks {f}:\n{out}"
        );
    }
    assert!(out.contains("Examples:"), "{out}");
    let out = text(&vast(&["--help"]).stdout);
    assert!(
        out.contains("Examples:") && out.contains("completions"),
        "{out}"
    );
    assert!(!out.contains("bench-dataplane"), "{out}");
    let out = text(&vast(&["spawn", "--help"]).stdout);
    for line in out.lines().filter(|l| {
        let w = l.trim_start();
        ["archive", "index", "importer", "source"]
            .iter()
            .any(|c| w.starts_with(c))
    }) {
        assert!(
            line.split_whitespace().count() > 2,
            "spawn subcommand without a description: {line:?}\n{out}"
        );
    }
}

#[test]
fn format_typos_name_the_choices_and_hidden_commands_stay_hidden() {
    let out = vast(&["-N", "import", "zek"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("possible values") && err.contains("'zeek'"),
        "{err}"
    );
    let out = vast(&["-N", "export", "jsn", "1"]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("'json'"), "{err}");
    // A typo close to a hidden command gets no tip that reveals it.
    let out = vast(&["bench"]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unrecognized subcommand"),
        "{err}"
    );
    assert!(!err.contains("bench-dataplane"), "{err}");
    // A typo of a visible command still gets its tip.
    let err = text(&vast(&["imprt"]).stderr);
    assert!(err.contains("'import'"), "{err}");
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = vast(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let s = text(&out.stdout);
        assert!(
            s.contains("vast") && s.contains("import") && s.contains("db-directory"),
            "{shell}:\n{s}"
        );
        assert!(
            !s.contains("bench-dataplane"),
            "{shell} completes a hidden command"
        );
    }
    // bash completes subcommands and format names for real.
    let complete = |words: &str, cur: &str, prev: &str| -> String {
        let script = format!(
            "source <({} completions bash); COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); _vast vast {cur} {prev}; echo \"${{COMPREPLY[@]}}\"",
            bin()
        );
        let o = Command::new("bash").args(["-c", &script]).output().unwrap();
        text(&o.stdout).trim().to_string()
    };
    assert_eq!(complete("vast im", "im", "vast"), "import");
    assert_eq!(complete("vast export a", "a", "export"), "ascii arrow");
    assert_eq!(
        complete("vast import zeek-", "zeek-", "import"),
        "zeek-json"
    );
    assert!(!vast(&["completions", "tcsh"]).status.success());
    let out = vast(&["man"]);
    assert!(out.status.success());
    let man = text(&out.stdout);
    assert!(man.contains(".TH vast 1"), "{man}");
    assert!(
        man.contains("completions") && man.contains("Examples"),
        "{man}"
    );
    // `man` renders it when it is installed.
    if Command::new("groff").arg("--version").output().is_ok() {
        let f = std::env::temp_dir().join(format!("vast-{}.1", std::process::id()));
        std::fs::write(&f, &man).unwrap();
        let r = Command::new("groff")
            .args(["-man", "-Tutf8"])
            .arg(&f)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&f);
        assert!(
            text(&r.stdout).contains("vast"),
            "groff: {}",
            text(&r.stderr)
        );
    }
}

#[test]
fn version_names_commit_and_features() {
    let out = text(&vast(&["version"]).stdout);
    assert!(out.starts_with("vast 0."), "{out}");
    let commit = out
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .unwrap_or_else(|| panic!("no commit line: {out}"));
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{out}"
    );
    let features = out
        .lines()
        .find_map(|l| l.strip_prefix("features: "))
        .unwrap_or_else(|| panic!("no features line: {out}"));
    assert_eq!(features.contains("pcap"), cfg!(feature = "pcap"), "{out}");
    assert_eq!(features.contains("otlp"), cfg!(feature = "otlp"), "{out}");
}

#[test]
fn status_is_a_summary_on_a_terminal_and_json_when_piped() {
    let db = TempDb::new("cli-status");
    vast_n(&db, &["import", "-n", "500", "test"], None);
    let piped = vast_n(&db, &["status"], None);
    let v: serde_json::Value = serde_json::from_str(&piped).expect("JSON when piped");
    assert_eq!(v["events"], 500);
    let d = db.path().to_str().unwrap();
    let Some(tty) = on_terminal(&format!("{} -N -d {d} status", bin()), &[]) else {
        return;
    };
    assert!(tty.contains("SCHEMA") && tty.contains("test.conn"), "{tty}");
    assert!(tty.contains("500"), "{tty}");
    assert!(!tty.trim_start().starts_with('{'), "{tty}");
    let tty = on_terminal(&format!("{} -N -d {d} status --json", bin()), &[]).unwrap();
    assert!(tty.trim_start().starts_with('{'), "{tty}");
}

#[test]
fn peers_is_a_table_on_a_terminal_and_json_when_piped() {
    let db = TempDb::new("cli-peers");
    let port = free_port();
    let n = NodeProc::start("p1", db.path(), port, &[], None);
    let v: serde_json::Value =
        serde_json::from_str(&vast_ok(&n.endpoint, &["peers"], None)).unwrap();
    assert_eq!(v[0]["id"], "p1");
    let Some(tty) = on_terminal(&format!("{} -e {} peers", bin(), n.endpoint), &[]) else {
        return;
    };
    assert!(
        tty.contains("NODE") && tty.contains("p1 (this)") && tty.contains("up"),
        "{tty}"
    );
    assert!(tty.contains("importer,archive,index"), "{tty}");
    let tty = on_terminal(&format!("{} -e {} peers --json", bin(), n.endpoint), &[]).unwrap();
    assert!(tty.trim_start().starts_with('['), "{tty}");
}

#[test]
fn progress_on_a_terminal_only() {
    let Some(data) = data_dir() else { return };
    let conn = data.join("zeek/conn.log.gz");
    let db = TempDb::new("cli-progress");
    // Piped: the one summary line and nothing else.
    let out = vast(&[
        "-N",
        "-d",
        db.path().to_str().unwrap(),
        "import",
        "-r",
        conn.to_str().unwrap(),
        "zeek",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("imported 8462 events") && !err.contains('\x1b'),
        "{err}"
    );
    // On a terminal: a progress line with events, rate and bytes, then the summary.
    let db2 = TempDb::new("cli-progress-tty");
    let tty = on_terminal(
        &format!(
            "{} -N -d {} import -r {} zeek",
            bin(),
            db2.path().display(),
            conn.display()
        ),
        &[],
    );
    let Some(tty) = tty else { return };
    assert!(
        tty.contains(" events (") && tty.contains("/s), ") && tty.contains(" read ["),
        "{tty:?}"
    );
    assert!(tty.contains("imported 8462 events"), "{tty:?}");
    // Export: progress when the output goes to a file and stderr is a terminal.
    let outfile = db2.path().with_extension("json");
    let tty = on_terminal(
        &format!(
            "{} -N -d {} export json 'resp_p == 80' > {}",
            bin(),
            db2.path().display(),
            outfile.display()
        ),
        &[],
    )
    .unwrap();
    let written = std::fs::read_to_string(&outfile).unwrap();
    let _ = std::fs::remove_file(&outfile);
    assert!(tty.contains(" written ["), "{tty:?}");
    assert!(
        !written.contains('\x1b') && written.lines().count() > 10,
        "{written}"
    );
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let db = TempDb::new("cli-colour");
    let d = db.path().to_str().unwrap();
    // An unsupported OTLP protocol (or a build without OTLP) logs a warning.
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
    ];
    let mut cmd = Command::new(bin());
    cmd.args(["-N", "-d", d, "count", "1"])
        .env_remove("RUST_LOG")
        .envs(env);
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("tracing disabled"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "colour in redirected stderr: {err:?}"
    );
    let cmdline = format!("{} -N -d {d} count 1", bin());
    let Some(tty) = on_terminal(&cmdline, &env) else {
        return;
    };
    assert!(
        tty.contains("tracing disabled") && tty.contains("\x1b["),
        "{tty:?}"
    );
    let mut env_nc = env.to_vec();
    env_nc.push(("NO_COLOR", "1"));
    let tty = on_terminal(&cmdline, &env_nc).unwrap();
    assert!(
        tty.contains("tracing disabled") && !tty.contains('\x1b'),
        "{tty:?}"
    );
}

#[test]
fn compound_durations_and_warnings_for_unknown_fields() {
    let Some(data) = data_dir() else { return };
    let db = TempDb::new("cli-query");
    import(&db, "zeek", &data.join("zeek/conn.log.gz"));
    let d = db.path().to_str().unwrap();
    // 1h30m is 90 minutes, whichever way it is written.
    let compound = count(&db, &["duration > 1m30s"]);
    assert_eq!(compound, count(&db, &["duration > 90 seconds"]));
    assert!(compound > 0);
    assert_eq!(
        count(&db, &["duration > 1h30m"]),
        count(&db, &["duration > 5400s"])
    );
    // Time arithmetic: everything is older than an hour and a half ago.
    assert_eq!(count(&db, &["ts < now - 1h30m"]), 8462);
    let out = vast(&[
        "-N",
        "-d",
        d,
        "export",
        "--timeout",
        "1m30s",
        "null",
        "ts < now - 1h30m",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A field no schema has: the answer is 0, with a warning naming it.
    let out = vast(&[
        "-N",
        "-d",
        d,
        "count",
        "resp_hh == 10.0.0.1 || :nosuchtype == 1",
    ]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), "0");
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: no schema has field `resp_hh`"),
        "{err}"
    );
    assert!(err.contains("`:nosuchtype`"), "{err}");
    let out = vast(&["-N", "-d", d, "export", "json", "nosuch.field == 1"]);
    assert!(text(&out.stderr).contains("no schema has field `nosuch.field`"));
    // Known fields and types give no warning.
    let out = vast(&[
        "-N",
        "-d",
        d,
        "count",
        "id.resp_h == 10.0.0.1 && :addr == 10.0.0.1 && :timestamp > 2000-01-01",
    ]);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn environment_and_xdg_configuration() {
    let db = TempDb::new("cli-config");
    let d = db.path().to_str().unwrap();
    let xdg = db.path().with_extension("xdg");
    std::fs::create_dir_all(xdg.join("vast")).unwrap();
    std::fs::write(xdg.join("vast/vast.yaml"), "node-id: from-xdg\n").unwrap();
    let status = |env: &[(&str, &str)]| {
        let out = Command::new(bin())
            .args(["-N", "-d", d, "status", "--json"])
            .env_remove("RUST_LOG")
            .env("XDG_CONFIG_HOME", &xdg)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{env:?}: {}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    // $XDG_CONFIG_HOME/vast/vast.yaml is read; the environment wins over it.
    assert_eq!(status(&[])["node"], "from-xdg");
    assert_eq!(status(&[("VAST_NODE_ID", "from-env")])["node"], "from-env");
    // A log filter with commas is one value; a list key is split and trimmed.
    let v = status(&[
        ("VAST_LOG_LEVEL", "warn,vast_node=info"),
        ("VAST_COMPONENTS", "archive, index"),
    ]);
    assert_eq!(v["components"], serde_json::json!(["archive", "index"]));
    let _ = std::fs::remove_dir_all(&xdg);
}

#[test]
fn a_single_node_starts_quietly_and_dial_failures_are_one_line() {
    let db = TempDb::new("cli-quiet");
    let n = NodeProc::start("q1", db.path(), free_port(), &[], None);
    vast_ok(&n.endpoint, &["status"], None);
    std::thread::sleep(Duration::from_millis(1500));
    let log = std::fs::read_to_string(&n.log).unwrap();
    assert!(
        !log.contains("No known peers") && !log.contains("libp2p_kad"),
        "{log}"
    );
    // Nobody listens: one line naming the endpoint and the likely cause.
    let port = free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let out = vast_at(&endpoint, &["status"], None);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&endpoint) && err.contains("connection refused"),
        "{err}"
    );
    let out = vast_at("no-such-host.invalid:42000", &["status"], None);
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no-such-host.invalid:42000") && err.contains("does not resolve"),
        "{err}"
    );
}

/// On an AMD CPU with fast short `rep movsb` under glibc before 2.40, `vast`
/// re-executes itself once with glibc's `rep movsb` threshold raised (see
/// `cli/src/tune.rs`); anywhere else, and where the user set that tunable, the
/// environment stays as it was. Checked on the running process: its arguments,
/// and its environment once its runtime threads exist (after any re-exec).
#[test]
fn memcpy_tunable_is_set_once_where_rep_movsb_is_slow() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let amd = cpuinfo
        .lines()
        .any(|l| l.starts_with("vendor_id") && l.contains("AuthenticAMD"));
    let fsrm = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "fsrm"));
    extern "C" {
        fn gnu_get_libc_version() -> *const std::ffi::c_char;
    }
    // SAFETY: glibc returns a static NUL-terminated string.
    let glibc = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) }
        .to_string_lossy()
        .into_owned();
    let mut parts = glibc.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let old_glibc = (parts.next().unwrap(), parts.next().unwrap_or(0)) < (2, 40);
    let affected = amd && fsrm && old_glibc && cfg!(target_arch = "x86_64");
    eprintln!("amd {amd}, fsrm {fsrm}, glibc {glibc}: affected {affected}");
    const SET: &str = "glibc.cpu.x86_rep_movsb_threshold=1073741824";

    let cases: [(Option<&str>, Option<String>); 3] = [
        (None, affected.then(|| SET.to_string())),
        (
            Some("glibc.malloc.check=0"),
            // glibc before 2.38 cuts its own copy of the variable (the one /proc
            // shows) after the first tunable it applied; ours comes first.
            Some(if affected {
                SET.to_string()
            } else {
                "glibc.malloc.check=0".to_string()
            }),
        ),
        (
            Some("glibc.cpu.x86_rep_movsb_threshold=4096"),
            Some("glibc.cpu.x86_rep_movsb_threshold=4096".to_string()),
        ),
    ];
    for (given, want) in cases {
        let db = TempDb::new("tune");
        let dbs = db.path().to_str().unwrap().to_string();
        let mut cmd = Command::new(bin());
        cmd.args(["-N", "-d", &dbs, "import", "zeek"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_remove("GLIBC_TUNABLES");
        if let Some(g) = given {
            cmd.env("GLIBC_TUNABLES", g);
        }
        let mut child = cmd.spawn().unwrap();
        let proc = format!("/proc/{}", child.id());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let threads = || {
            std::fs::read_to_string(format!("{proc}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Threads:")
                        .map(|n| n.trim().parse::<u32>().unwrap_or(0))
                })
                .unwrap_or(0)
        };
        while threads() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "vast never started its runtime"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let environ = std::fs::read(format!("{proc}/environ")).unwrap();
        let cmdline = std::fs::read(format!("{proc}/cmdline")).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        let got = environ
            .split(|&b| b == 0)
            .filter_map(|e| std::str::from_utf8(e).ok())
            .find_map(|e| e.strip_prefix("GLIBC_TUNABLES="))
            .map(str::to_string);
        match (&got, &want) {
            (Some(g), Some(w)) => assert!(
                g == w || g.starts_with(&format!("{w}:")),
                "given {given:?}: got {g:?}, want {w:?}"
            ),
            _ => assert_eq!(got, want, "given {given:?}"),
        }
        let args: Vec<&[u8]> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        let want_args: Vec<&[u8]> = vec![
            bin().as_bytes(),
            b"-N",
            b"-d",
            dbs.as_bytes(),
            b"import",
            b"zeek",
        ];
        assert_eq!(args, want_args, "the arguments survive the re-exec");
    }
}
