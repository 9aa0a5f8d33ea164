//! The `vast` command line: clap definitions here, one module per command.

mod commands;
mod tune;

/// mimalloc instead of glibc's allocator: ingest makes and frees many small
/// values across threads, where glibc's free lists and arena trims took a fifth
/// of a JSON import's profile. Measured: 20M-line Zeek import 27.6 s to 21.2 s
/// and 908 to 788 MB max RSS. Its first arena is not committed eagerly
/// (`.cargo/config.toml`), which would cost every short query about 1.3 ms.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  vast -N import -r conn.log.gz zeek           import into ./vast.db (embedded node)
  vast -N count ':addr == 192.168.1.104'       count matching events
  vast -N export json 'resp_p == 80' | head    export matches as JSON lines
  vast start &                                 run a node on 127.0.0.1:42000
  vast status                                  a summary on a terminal, JSON when piped
  vast completions bash > /etc/bash_completion.d/vast";

/// VAST: ingest, store, index and query network telemetry.
#[derive(Parser, Debug)]
#[command(
    name = "vast",
    version = commands::version::SHORT,
    long_version = commands::version::LONG,
    about,
    arg_required_else_help = true,
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Configuration file (layered over /etc/vast, ~/.config/vast and ./vast.yaml).
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Database directory [config: db-directory, default ./vast.db].
    #[arg(short = 'd', long = "db-directory")]
    pub db_directory: Option<PathBuf>,
    /// Node endpoint, host:port or multiaddr [config: endpoint].
    #[arg(short = 'e', long = "endpoint")]
    pub endpoint: Option<String>,
    /// Embedded: run a node inside this process on the database, then exit.
    #[arg(short = 'N', long = "node-embedded")]
    pub embedded: bool,
    /// The peer the command acts on (default: the endpoint's node).
    #[arg(long = "node")]
    pub node: Option<String>,
    /// This node's id [config: node-id].
    #[arg(short = 'i', long = "node-id")]
    pub node_id: Option<String>,
    /// File holding the cluster secret [config: cluster.secret-file].
    #[arg(long = "secret-file", global = true)]
    pub secret_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node in the foreground.
    Start(commands::start::StartArgs),
    /// Stop a node.
    Stop,
    /// Show a node's status: a summary on a terminal, JSON when piped or with --json.
    #[command(
        after_help = "Examples:\n  vast -N status\n  vast -e 127.0.0.1:42001 --node n2 status --detailed --json | jq .sources"
    )]
    Status {
        /// Include per-source figures.
        #[arg(long)]
        detailed: bool,
        /// Print JSON even on a terminal.
        #[arg(long)]
        json: bool,
    },
    /// List cluster members: a table on a terminal, JSON when piped or with --json.
    Peers {
        /// Print JSON even on a terminal.
        #[arg(long)]
        json: bool,
    },
    /// Print the version, the git commit and the enabled features.
    Version,
    /// Print a new random cluster secret (256 bits, one line) for cluster.secret-file.
    Secret {
        /// Write it to FILE (mode 0600) instead; an existing valid secret file is kept.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import events from stdin or a file.
    Import(commands::import::ImportArgs),
    /// Export events matching a query.
    Export(commands::export::ExportArgs),
    /// Count events matching a query.
    Count(commands::count::CountArgs),
    /// Start a component (source, archive, index, importer) on a node.
    Spawn(commands::spawn::SpawnArgs),
    /// Measure the data plane to the endpoint against raw TCP on loopback.
    #[command(hide = true, name = "bench-dataplane")]
    BenchDataplane {
        /// MiB to send each way.
        #[arg(long, default_value_t = 1024)]
        mib: usize,
    },
    /// Stop a component by its label.
    #[command(after_help = "Example:\n  vast -e 127.0.0.1:42001 --node n2 kill source-0")]
    Kill {
        /// The component label, e.g. source-0.
        label: String,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  vast completions bash > ~/.local/share/bash-completion/completions/vast\n  vast completions zsh > ~/.zfunc/_vast\n  vast completions fish > ~/.config/fish/completions/vast.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  vast man > vast.1 && man ./vast.1")]
    Man,
}

fn main() -> ExitCode {
    // First, before any thread exists: it may re-execute the process.
    tune::tune_memcpy();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => without_hidden_suggestions(e).exit(),
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// clap suggests hidden subcommands for typos (`vast bench` → `bench-dataplane`);
/// a hidden command stays hidden, so such a suggestion is dropped.
fn without_hidden_suggestions(e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    use clap::CommandFactory;
    let cmd = Cli::command();
    let hidden: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    let is_hidden = |v: &ContextValue| match v {
        ContextValue::String(s) => hidden.contains(s),
        ContextValue::Strings(v) => v.iter().any(|s| hidden.contains(s)),
        _ => false,
    };
    let suggests_hidden = e
        .context()
        .any(|(k, v)| k == ContextKind::SuggestedSubcommand && is_hidden(v));
    if !suggests_hidden {
        return e;
    }
    let mut clean = clap::Error::new(e.kind()).with_cmd(&cmd);
    for (k, v) in e.context() {
        if k != ContextKind::SuggestedSubcommand && k != ContextKind::Suggested {
            clean.insert(k, v.clone());
        }
    }
    clean
}
