//! Typed configuration with one key space for files, `VAST_*` environment variables
//! and command-line flags. Layers, lowest first: built-in defaults,
//! `/etc/vast/vast.yaml`, `$XDG_CONFIG_HOME/vast/vast.yaml` (`~/.config/vast/vast.yaml`
//! when unset), `./vast.yaml`, `-c FILE`, `VAST_*` environment, flags.
//! `vast.yaml.example` documents every key.
//!
//! Names: the YAML key `import.batch-size` is `VAST_IMPORT__BATCH_SIZE` in the
//! environment (`__` nests, `_` is `-`) and `--batch-size` on the command line.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why the configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Import settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImportConfig {
    /// Rows per batch a source emits.
    pub batch_size: usize,
    /// Events after which a partition is sealed.
    pub partition_size: u32,
    /// Seconds after which a running node seals a partition, full or not, so that
    /// streaming sources become queryable.
    pub partition_timeout: u64,
    /// Where partitions go: `local`, `round-robin` or `fixed:<node>`.
    pub placement: String,
    /// Members that hold each committed partition (archive and index), the first
    /// chosen by `placement`. Cluster-wide: every node should set the same.
    pub replicas: u32,
}

/// OpenTelemetry export; OpenTelemetry's own environment variables win.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP endpoint, e.g. `http://collector:4318` (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// `grpc` or `http/protobuf` (`OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub otlp_protocol: Option<String>,
    /// Service name on exported spans (`OTEL_SERVICE_NAME`).
    pub service_name: Option<String>,
}

/// Cluster admission and the limits a node puts on what peers can make it hold.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterConfig {
    /// File holding the cluster secret (`vast secret` makes one). Without it a node
    /// listens on loopback only.
    pub secret_file: Option<PathBuf>,
    /// Largest data-plane frame a node accepts or sends, in bytes.
    pub max_frame: usize,
    /// Bytes of inbound data-plane requests a node holds at once, over all peers.
    pub max_inflight_bytes: usize,
    /// Inbound data-plane requests a node handles at once, over all peers.
    pub max_inflight_requests: usize,
    /// Established connections a node accepts from others.
    pub max_connections: u32,
    /// Seconds a new connection has to finish its handshake (protocol choice,
    /// noise, muxer) before it is dropped, so silent peers cannot hold the
    /// pending-connection slots for long (libp2p's default was 10).
    pub handshake_timeout: u64,
    /// TCP connections opened to each node dialed (the CLI's endpoint, members
    /// joined); data-plane requests take turns over them.
    pub connections: u32,
    /// Open export cursors per client.
    pub max_cursors_per_peer: usize,
    /// Seconds after which an export cursor (or live tap) nobody pulls is closed.
    pub cursor_idle_timeout: u64,
    /// Bytes of live rows a node buffers per continuous export that lags behind;
    /// rows beyond it are dropped and the export is told how many.
    pub live_buffer: usize,
    /// Seconds a member holding replicas may be away before the cluster copies
    /// its partitions to other members.
    pub replica_timeout: u64,
}

/// What sources spawned inside a node (`vast spawn source`) may read.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SourceConfig {
    /// Directories under which `spawn source -r FILE` may read; empty refuses all.
    pub read_dirs: Vec<PathBuf>,
    /// Interfaces `spawn source -i IFACE` may capture on; `*` allows any.
    pub interfaces: Vec<String>,
}

/// Background compaction: small partitions of a node are merged into full ones.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CompactionConfig {
    /// Seconds between compaction rounds; 0 turns compaction off.
    pub interval: u64,
    /// Most events per second compaction rewrites (its throttle).
    pub max_rate: u64,
    /// Seconds the files of replaced partitions are kept for queries already
    /// running when the swap happened.
    pub retire_grace: u64,
}

/// Everything a node and the CLI read.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// This node's id, unique in a cluster.
    pub node_id: String,
    /// Where the node keeps its database.
    pub db_directory: PathBuf,
    /// The node the CLI talks to, and where `start` listens.
    pub endpoint: String,
    /// Components a node starts with.
    pub components: Vec<String>,
    /// Peers a node joins at start (host:port or multiaddrs).
    pub peers: Vec<String>,
    /// The address other members dial to reach this node (default: the endpoint).
    pub advertise: Option<String>,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `warn` or `vast_node=debug`.
    pub log_level: String,
    pub import: ImportConfig,
    pub cluster: ClusterConfig,
    pub source: SourceConfig,
    pub compaction: CompactionConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// Top-level keys, for picking our variables out of the environment.
const KNOWN_KEYS: &[&str] = &[
    "node-id",
    "db-directory",
    "endpoint",
    "components",
    "peers",
    "advertise",
    "log-level",
    "import",
    "cluster",
    "source",
    "compaction",
    "telemetry",
];

/// Keys whose environment and flag values are comma-separated lists; every other
/// value is taken whole, commas included (`VAST_LOG_LEVEL=warn,vast_node=info`).
const LIST_KEYS: &[&str] = &[
    "components",
    "peers",
    "source.read-dirs",
    "source.interfaces",
];

const DEFAULTS: &str = r#"
node-id: node
db-directory: vast.db
endpoint: 127.0.0.1:42000
components: [importer, archive, index]
peers: []
log-level: warn
import:
  batch-size: 65536
  partition-size: 1048576
  partition-timeout: 10
  placement: local
  replicas: 1
cluster:
  max-frame: 33554432
  max-inflight-bytes: 268435456
  max-inflight-requests: 512
  max-connections: 256
  handshake-timeout: 10
  connections: 2
  max-cursors-per-peer: 16
  cursor-idle-timeout: 60
  live-buffer: 16777216
  replica-timeout: 60
source:
  read-dirs: []
  interfaces: ["*"]
compaction:
  interval: 10
  max-rate: 1000000
  retire-grace: 60
"#;

/// Builds the layered configuration. `file` is `-c FILE`; `overrides` are flags as
/// (dotted key, value) pairs, already in YAML key spelling.
pub fn load(file: Option<&Path>, overrides: &[(&str, String)]) -> Result<Config, ConfigError> {
    load_from(file, overrides, std::env::vars(), config_home())
}

/// The user's configuration directory: `$XDG_CONFIG_HOME`, or `~/.config` when it
/// is unset, empty or relative (as the XDG Base Directory specification says).
fn config_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
}

/// `load` with the environment and the user's configuration directory
/// (`$XDG_CONFIG_HOME`) passed in (for tests).
pub fn load_from(
    file: Option<&Path>,
    overrides: &[(&str, String)],
    env: impl Iterator<Item = (String, String)>,
    config_home: Option<PathBuf>,
) -> Result<Config, ConfigError> {
    use config::{File, FileFormat};
    let mut b = config::Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Yaml));
    let mut optional = vec![PathBuf::from("/etc/vast/vast.yaml")];
    if let Some(h) = config_home {
        optional.push(h.join("vast/vast.yaml"));
    }
    optional.push(PathBuf::from("vast.yaml"));
    for p in optional {
        if p.is_file() {
            b = b.add_source(File::from(p).format(FileFormat::Yaml));
        }
    }
    if let Some(p) = file {
        if !p.is_file() {
            return Err(ConfigError::File {
                path: p.to_path_buf(),
                message: "no such file".into(),
            });
        }
        b = b.add_source(File::from(p).format(FileFormat::Yaml));
    }
    // The environment layer is the config crate's `Environment` source: `VAST_`
    // prefix, `__` nesting. Values are taken whole (`VAST_LOG_LEVEL=warn,vast_node=info`);
    // list keys are split on commas here, trimmed, empty items dropped.
    let mut scalars = config::Map::new();
    let mut lists = Vec::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("VAST_") else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let key = rest
            .to_ascii_lowercase()
            .split("__")
            .map(|p| p.replace('_', "-"))
            .collect::<Vec<_>>()
            .join(".");
        // Other tools set VAST_* variables too (scripts, compose files); only keys
        // of ours are taken, so a stranger's variable cannot stop the CLI.
        let top = key.split('.').next().unwrap_or_default();
        if !KNOWN_KEYS.contains(&top) {
            continue;
        }
        if LIST_KEYS.contains(&key.as_str()) {
            lists.push((k, key, v));
        } else {
            // Spelled for `Environment`: prefix kept, `__` nests, `-` as in our keys.
            scalars.insert(format!("vast_{}", key.replace('.', "__")), v);
        }
    }
    b = b.add_source(
        config::Environment::with_prefix("vast")
            .prefix_separator("_")
            .separator("__")
            .source(Some(scalars)),
    );
    for (k, key, v) in lists {
        b = b
            .set_override(key.as_str(), parse_value(&key, &v))
            .map_err(|e| ConfigError::Invalid(format!("{k}: {e}")))?;
    }
    for (k, v) in overrides {
        b = b
            .set_override(*k, parse_value(k, v))
            .map_err(|e| ConfigError::Invalid(format!("{k}: {e}")))?;
    }
    let cfg = b.build().map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let c: Config = cfg
        .try_deserialize()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    c.validate()?;
    Ok(c)
}

/// Environment values and flags are strings; values of list keys are comma-separated.
fn parse_value(key: &str, v: &str) -> config::Value {
    if LIST_KEYS.contains(&key) {
        let items: Vec<config::Value> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| config::Value::from(s.to_string()))
            .collect();
        return config::Value::from(items);
    }
    config::Value::from(v.to_string())
}

impl Config {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.is_empty() || self.node_id.contains('/') {
            return Err(ConfigError::Invalid(format!(
                "node-id {:?} must be non-empty and contain no '/'",
                self.node_id
            )));
        }
        for c in &self.components {
            if !["importer", "archive", "index"].contains(&c.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "unknown component {c:?} in components (known: importer, archive, index)"
                )));
            }
        }
        let c = &self.cluster;
        if c.max_frame < 1 << 20 || c.max_frame > 1 << 30 {
            return Err(ConfigError::Invalid(format!(
                "cluster.max-frame {} must be between 1 MiB and 1 GiB",
                c.max_frame
            )));
        }
        if c.max_inflight_bytes < c.max_frame {
            return Err(ConfigError::Invalid(format!(
                "cluster.max-inflight-bytes {} must be at least cluster.max-frame {}",
                c.max_inflight_bytes, c.max_frame
            )));
        }
        if c.live_buffer < 1 << 16 || c.live_buffer > 1 << 32 {
            return Err(ConfigError::Invalid(format!(
                "cluster.live-buffer {} must be between 64 KiB and 4 GiB",
                c.live_buffer
            )));
        }
        if !(1..=8).contains(&c.connections) {
            return Err(ConfigError::Invalid(format!(
                "cluster.connections {} must be between 1 and 8",
                c.connections
            )));
        }
        if c.max_inflight_requests == 0
            || c.max_connections == 0
            || c.max_cursors_per_peer == 0
            || c.handshake_timeout == 0
        {
            return Err(ConfigError::Invalid(
                "cluster.max-inflight-requests, max-connections, max-cursors-per-peer and handshake-timeout must be positive"
                    .into(),
            ));
        }
        if !(1..=16).contains(&self.import.replicas) {
            return Err(ConfigError::Invalid(format!(
                "import.replicas {} must be between 1 and 16",
                self.import.replicas
            )));
        }
        if self.import.batch_size == 0 || self.import.partition_size == 0 {
            return Err(ConfigError::Invalid(
                "import.batch-size and import.partition-size must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn layers_in_order() {
        let dir = std::env::temp_dir().join(format!("vast-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.yaml");
        std::fs::write(&f, "node-id: fromfile\nimport:\n  batch-size: 7\n").unwrap();
        let c = load_from(None, &[], env(&[]), None).unwrap();
        assert_eq!(c.node_id, "node");
        assert_eq!(c.import.batch_size, 65536);
        let c = load_from(Some(&f), &[], env(&[]), None).unwrap();
        assert_eq!((c.node_id.as_str(), c.import.batch_size), ("fromfile", 7));
        let c = load_from(
            Some(&f),
            &[],
            env(&[
                ("VAST_NODE_ID", "fromenv"),
                ("VAST_IMPORT__BATCH_SIZE", "9"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!((c.node_id.as_str(), c.import.batch_size), ("fromenv", 9));
        let c = load_from(
            Some(&f),
            &[("node-id", "fromflag".into()), ("components", "".into())],
            env(&[("VAST_NODE_ID", "fromenv")]),
            None,
        )
        .unwrap();
        assert_eq!(c.node_id, "fromflag");
        assert!(c.components.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let e = load_from(
            None,
            &[("components", "importer,bogus".into())],
            env(&[]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = load_from(Some(Path::new("/nonexistent.yaml")), &[], env(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent.yaml"), "{e}");
        // Variables that are not ours are left alone.
        load_from(None, &[], env(&[("VAST_LAB_PORT", "1")]), None).unwrap();
        let e = load_from(None, &[], env(&[("VAST_IMPORT__BATCH_SIZE", "lots")]), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch"), "{e}");
    }

    #[test]
    fn user_config_comes_from_the_config_home() {
        let dir = std::env::temp_dir().join(format!("vast-config-xdg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("vast")).unwrap();
        std::fs::write(dir.join("vast/vast.yaml"), "node-id: xdg\n").unwrap();
        let c = load_from(None, &[], env(&[]), Some(dir.clone())).unwrap();
        assert_eq!(c.node_id, "xdg");
        let c = load_from(
            None,
            &[],
            env(&[("VAST_NODE_ID", "env")]),
            Some(dir.clone()),
        )
        .unwrap();
        assert_eq!(c.node_id, "env");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lists_split_only_for_list_keys() {
        let c = load_from(
            None,
            &[],
            env(&[
                ("VAST_LOG_LEVEL", "warn,vast_node=info"),
                ("VAST_SOURCE__READ_DIRS", "/data"),
                ("VAST_CLUSTER__SECRET_FILE", "/etc/vast/cluster.secret"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.log_level, "warn,vast_node=info");
        assert_eq!(c.source.read_dirs, vec![PathBuf::from("/data")]);
        assert_eq!(
            c.cluster.secret_file.as_deref(),
            Some(Path::new("/etc/vast/cluster.secret"))
        );
        let c = load_from(
            None,
            &[],
            env(&[("VAST_SOURCE__READ_DIRS", "/a, /b")]),
            None,
        )
        .unwrap();
        assert_eq!(
            c.source.read_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(c.source.interfaces, vec!["*".to_string()]);
        assert!(load_from(None, &[], env(&[]), None)
            .unwrap()
            .source
            .read_dirs
            .is_empty());
    }
}
