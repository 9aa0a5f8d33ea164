//! `vast version` and `--version`: the version, the git commit it was built from
//! and the Cargo features compiled in.

/// `vast --version`.
pub const SHORT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("VAST_GIT_COMMIT"),
    ")"
);

/// `vast version` and `vast --version` in long form.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("VAST_GIT_COMMIT"),
    "\nfeatures: ",
    env!("VAST_FEATURES")
);

pub fn print() {
    println!("vast {LONG}");
}
