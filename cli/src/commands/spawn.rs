//! `vast spawn`: start a component on a node.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  vast -e 127.0.0.1:42001 --node n2 spawn source -r /data/eve.json suricata   # prints source-0
  vast -e 127.0.0.1:42001 --node n2 spawn source -i eth0 -f 'not port 42000' pcap
  vast -e 127.0.0.1:42001 --node n3 spawn archive")]
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
        #[arg(value_enum)]
        format: super::import::InputFormat,
    },
    /// An archive: stores batches durably and returns rows by id.
    Archive,
    /// An index: per-partition synopses and value indexes.
    Index,
    /// An importer: assigns event ids and places batches on an archive and index.
    Importer,
}
