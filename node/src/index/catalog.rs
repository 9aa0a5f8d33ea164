//! The catalog: every sealed partition's entry, in creation order.

use super::partition::PartitionIndex;
use super::value_index::Hits;
use crate::durable::StoreError;
use crate::query::{resolve, Expr, Resolved};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A partition that could not be loaded, kept so queries and status can name it.
#[derive(Clone, Debug)]
pub struct CorruptPartition {
    pub dir: PathBuf,
    pub error: String,
}

#[derive(Default)]
pub struct Catalog {
    pub partitions: Vec<Arc<PartitionIndex>>,
    pub corrupt: Vec<CorruptPartition>,
}

/// One partition's candidates for a query.
pub struct PartitionHits {
    pub partition: Arc<PartitionIndex>,
    pub hits: Hits,
}

impl std::fmt::Debug for PartitionHits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PartitionHits({}, {} sure, {} maybe)",
            self.partition.meta.uuid(),
            self.hits.sure.len(),
            self.hits.maybe.len()
        )
    }
}

impl Catalog {
    /// Loads every committed partition under `dir`, removing leftovers of
    /// interrupted writes and partitions of imports that never committed. Partitions
    /// prepared for another node's transaction stay on disk, invisible, and are
    /// returned as the second value (their ids) for when the outcome is known.
    pub fn open(
        dir: &Path,
        commits: &crate::commit::State,
    ) -> Result<(Catalog, Vec<uuid::Uuid>), StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let mut cat = Catalog::default();
        let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| StoreError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        dirs.sort();
        let mut pending = Vec::new();
        for d in dirs {
            if d.extension().is_some_and(|e| e == "tmp") {
                tracing::warn!(path = %d.display(), "removing an index partition left over from an interrupted write");
                let _ = fs::remove_dir_all(&d);
                continue;
            }
            let id = d
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<uuid::Uuid>().ok());
            if let Some(id) = id {
                if commits.prepared.contains_key(&id) {
                    pending.push(id);
                    continue;
                }
                if !commits.committed.contains(&id) {
                    tracing::warn!(path = %d.display(), "removing an index partition of an import that never committed");
                    let _ = fs::remove_dir_all(&d);
                    continue;
                }
            }
            match PartitionIndex::open(&d) {
                Ok(p) => cat.partitions.push(Arc::new(p)),
                Err(e) => {
                    tracing::error!(path = %d.display(), error = %e, "corrupt index partition");
                    cat.corrupt.push(CorruptPartition {
                        dir: d,
                        error: e.to_string(),
                    });
                }
            }
        }
        Ok((cat, pending))
    }

    pub fn add(&mut self, p: PartitionIndex) {
        self.partitions.push(Arc::new(p));
    }

    /// Replaces the partitions `remove` by `add` in one step, at the place of the
    /// first removed one (keeping partition order). Returns how many were removed.
    pub fn swap(&mut self, add: PartitionIndex, remove: &[uuid::Uuid]) -> usize {
        let at = self
            .partitions
            .iter()
            .position(|p| remove.contains(&p.meta.uuid()))
            .unwrap_or(self.partitions.len());
        let before = self.partitions.len();
        self.partitions.insert(at, Arc::new(add));
        self.partitions.retain(|p| !remove.contains(&p.meta.uuid()));
        before + 1 - self.partitions.len()
    }

    /// Whether partition `id` is visible.
    pub fn contains(&self, id: uuid::Uuid) -> bool {
        self.partitions.iter().any(|p| p.meta.uuid() == id)
    }

    /// Candidates of `expr` in every partition; partitions without candidates are left out.
    pub fn lookup(&self, expr: &Expr) -> Result<Vec<PartitionHits>, StoreError> {
        let mut out = Vec::new();
        self.lookup_each(expr, |h| {
            out.push(h);
            true
        })?;
        Ok(out)
    }

    /// [`Catalog::lookup`], handing each partition's candidates to `f` as soon as
    /// they are known, so an export fetches the first partitions while later
    /// ones are looked up; stops early once `f` returns false.
    pub fn lookup_each(
        &self,
        expr: &Expr,
        mut f: impl FnMut(PartitionHits) -> bool,
    ) -> Result<(), StoreError> {
        let mut resolved: HashMap<u64, Resolved> = HashMap::new();
        for p in &self.partitions {
            let span = tracing::info_span!(
                "index.partition",
                partition = %p.meta.uuid(),
                schema = tracing::field::Empty,
                rows = p.meta.rows,
                candidates = tracing::field::Empty,
            );
            let _g = span.enter();
            let mut hits: Option<Hits> = None;
            let mut names: Vec<&str> = Vec::new();
            for (li, l) in p.meta.layouts.iter().enumerate() {
                let r = resolved
                    .entry(l.schema.fingerprint())
                    .or_insert_with(|| resolve(expr, &l.schema));
                if matches!(r, Resolved::False) {
                    continue;
                }
                let h = p.lookup(li, r)?;
                if h.sure.is_empty() && h.maybe.is_empty() {
                    continue;
                }
                names.push(&l.schema.name);
                hits = Some(match hits {
                    Some(acc) => acc.or(h),
                    None => h,
                });
            }
            let Some(hits) = hits else {
                continue;
            };
            names.dedup();
            span.record("schema", names.join(","));
            span.record("candidates", hits.estimate());
            let go_on = f(PartitionHits {
                partition: p.clone(),
                hits,
            });
            if !go_on {
                break;
            }
        }
        Ok(())
    }
}
