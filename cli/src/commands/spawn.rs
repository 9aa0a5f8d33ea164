//! `vast spawn`: start a component on a node.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SpawnArgs {
    #[command(subcommand)]
    pub what: SpawnWhat,
}

#[derive(Subcommand, Debug)]
pub enum SpawnWhat {
    /// A source reading a file or interface inside the node's process.
    Source {
        /// File to read.
        #[arg(short = 'r', long = "read")]
        read: Option<PathBuf>,
        /// Interface to capture from.
        #[arg(short = 'i', long = "interface")]
        interface: Option<String>,
        /// BPF filter for captures.
        #[arg(short = 'f', long = "filter")]
        bpf: Option<String>,
        /// Bytes captured per packet.
        #[arg(long)]
        snaplen: Option<u32>,
        /// Keep at most this many payload bytes of each connection.
        #[arg(short = 'c', long = "cutoff")]
        cutoff: Option<u64>,
        /// Input format.
        format: String,
    },
    Archive,
    Index,
    Importer,
}
