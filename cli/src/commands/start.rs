//! `vast start`: run a node in the foreground.

use clap::Args;

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Peers to join (host:port or multiaddr).
    #[arg(long = "peer")]
    pub peer: Vec<String>,
    /// Components to start, comma-separated (importer,archive,index); empty for a bare node.
    #[arg(long)]
    pub components: Option<String>,
}
