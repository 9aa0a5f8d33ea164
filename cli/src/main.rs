//! The `vast` command line: clap definitions here, one module per command.

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// VAST: ingest, store, index and query network telemetry.
#[derive(Parser, Debug)]
#[command(name = "vast", version, about, arg_required_else_help = true)]
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
    /// Print a node's status as JSON.
    Status {
        /// Include per-source figures.
        #[arg(long)]
        detailed: bool,
    },
    /// List cluster members.
    Peers,
    /// Print the version.
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
    Kill {
        /// The component label, e.g. source-0.
        label: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
