//! One partition's index side: its catalog entry (schema, row count, where the data
//! lives, column synopses) and its per-column value indexes, written atomically to
//! `index/<id>/` and mapped lazily at query time.

use super::synopsis::ColumnSynopsis;
use super::value_index::{self, ColumnIndexBuilder, Hits};
use crate::data::{Batch, Schema};
use crate::durable::{self, MappedFile, StoreError};
use crate::query::{Cmp, Resolved};
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use uuid::Uuid;

/// The catalog entry of a sealed partition.
#[derive(Clone, Debug, PartialEq, Archive, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Partition id (UUID v7 bytes: sorts by creation time).
    pub id: [u8; 16],
    pub schema: Schema,
    pub rows: u32,
    /// The archive holding the data, as `<node>/<label>`.
    pub archive: String,
    /// Whether column i has a value index file `c<i>`.
    pub indexed: Vec<bool>,
    pub synopses: Vec<ColumnSynopsis>,
}

impl PartitionMeta {
    pub fn uuid(&self) -> Uuid {
        Uuid::from_bytes(self.id)
    }
}

/// Builds the index of a partition while its batches arrive.
pub struct PartitionBuilder {
    id: Uuid,
    schema: Schema,
    archive: String,
    rows: u32,
    columns: Vec<Option<ColumnIndexBuilder>>,
    synopses: Vec<ColumnSynopsis>,
}

impl PartitionBuilder {
    /// The schema of the events being indexed.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn new(id: Uuid, schema: Schema, archive: String) -> Self {
        let columns = schema
            .fields
            .iter()
            .map(|f| ColumnIndexBuilder::new(&f.ty))
            .collect();
        let synopses = vec![ColumnSynopsis::default(); schema.fields.len()];
        PartitionBuilder {
            id,
            schema,
            archive,
            rows: 0,
            columns,
            synopses,
        }
    }

    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Indexes a batch whose first row is partition row `offset`.
    pub fn add(&mut self, batch: &Batch, offset: u32) {
        // Index building is the costliest step of ingest; columns are independent,
        // so two threads take alternate columns.
        let mut work: [Vec<_>; 2] = [Vec::new(), Vec::new()];
        for (i, ((b, syn), col)) in self
            .columns
            .iter_mut()
            .zip(self.synopses.iter_mut())
            .zip(&batch.columns)
            .enumerate()
        {
            work[i % 2].push((b, syn, col));
        }
        let run = |items: Vec<(
            &mut Option<ColumnIndexBuilder>,
            &mut ColumnSynopsis,
            &crate::data::Column,
        )>| {
            for (b, syn, col) in items {
                if let Some(b) = b {
                    b.add(col, offset);
                }
                syn.add(col);
            }
        };
        let [even, odd] = work;
        if batch.rows < 4096 {
            run(even);
            run(odd);
        } else {
            std::thread::scope(|s| {
                s.spawn(|| run(odd));
                run(even);
            });
        }
        self.rows = self.rows.max(offset + batch.rows);
    }

    /// Writes the partition's files under `<index_dir>/<id>/` atomically (a temporary
    /// directory renamed into place, everything fsynced) and returns its entry.
    pub fn write(self, index_dir: &Path) -> Result<PartitionIndex, StoreError> {
        let final_dir = index_dir.join(self.id.to_string());
        let tmp = index_dir.join(format!("{}.tmp", self.id));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let indexed: Vec<bool> = self.columns.iter().map(Option::is_some).collect();
        // Finishing sorts and serializes every posting list: split over two threads.
        let mut work: [Vec<(usize, ColumnIndexBuilder)>; 2] = [Vec::new(), Vec::new()];
        for (i, b) in self.columns.into_iter().enumerate() {
            if let Some(b) = b {
                work[i % 2].push((i, b));
            }
        }
        let write = |items: Vec<(usize, ColumnIndexBuilder)>| -> Result<(), StoreError> {
            for (i, b) in items {
                let bytes = value_index::to_bytes(&b.finish());
                durable::write_file(&tmp.join(format!("c{i}")), &bytes)?;
            }
            Ok(())
        };
        let [even, odd] = work;
        std::thread::scope(|s| {
            let h = s.spawn(|| write(odd));
            let a = write(even);
            let b = h.join().expect("index writer thread panicked");
            a.and(b)
        })?;
        let meta = PartitionMeta {
            id: *self.id.as_bytes(),
            schema: self.schema,
            rows: self.rows,
            archive: self.archive,
            indexed,
            synopses: self.synopses,
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&meta)
            .expect("serializing into memory cannot fail");
        durable::write_file(&tmp.join("meta"), &bytes)?;
        durable::sync_dir(&tmp)?;
        fs::rename(&tmp, &final_dir).map_err(|e| StoreError::io(&final_dir, e))?;
        durable::sync_dir(index_dir)?;
        Ok(PartitionIndex::new(meta, final_dir))
    }
}

/// A sealed partition's index: the entry in memory, column indexes mapped on demand.
pub struct PartitionIndex {
    pub meta: PartitionMeta,
    dir: PathBuf,
    columns: Mutex<HashMap<usize, std::sync::Arc<MappedFile>>>,
}

impl PartitionIndex {
    fn new(meta: PartitionMeta, dir: PathBuf) -> Self {
        PartitionIndex {
            meta,
            dir,
            columns: Mutex::new(HashMap::new()),
        }
    }

    /// Loads the entry of the partition stored in `dir`.
    pub fn open(dir: &Path) -> Result<PartitionIndex, StoreError> {
        let path = dir.join("meta");
        let bytes = durable::read_file(&path)?;
        let meta = crate::data::checked::from_bytes::<PartitionMeta>(&bytes)
            .map_err(|e| StoreError::corrupt(&path, e))?;
        if meta.indexed.len() != meta.schema.fields.len()
            || meta.synopses.len() != meta.schema.fields.len()
        {
            return Err(StoreError::corrupt(
                &path,
                "column tables disagree with the schema",
            ));
        }
        Ok(PartitionIndex::new(meta, dir.to_path_buf()))
    }

    /// Bytes of the index files on disk.
    pub fn disk_bytes(&self) -> u64 {
        durable::dir_bytes(&self.dir)
    }

    fn column(&self, i: usize) -> Result<std::sync::Arc<MappedFile>, StoreError> {
        let mut cols = self.columns.lock().expect("column cache lock poisoned");
        if let Some(m) = cols.get(&i) {
            return Ok(m.clone());
        }
        // Column indexes checksum their own blocks; see `value_index::access`.
        let m = std::sync::Arc::new(MappedFile::open_unverified(
            &self.dir.join(format!("c{i}")),
        )?);
        cols.insert(i, m.clone());
        Ok(m)
    }

    /// Rows that (surely or maybe) satisfy `expr`, resolved against this schema.
    pub fn lookup(&self, expr: &Resolved) -> Result<Hits, StoreError> {
        let rows = self.meta.rows;
        Ok(match expr {
            Resolved::True => Hits::all(rows),
            Resolved::False => Hits::none(),
            Resolved::And(xs) => {
                let mut acc = Hits::all(rows);
                for x in xs {
                    acc = acc.and(self.lookup(x)?);
                    if acc.sure.is_empty() && acc.maybe.is_empty() {
                        break;
                    }
                }
                acc
            }
            Resolved::Or(xs) => {
                let mut acc = Hits::none();
                for x in xs {
                    acc = acc.or(self.lookup(x)?);
                }
                acc
            }
            Resolved::Not(x) => self.lookup(x)?.not(rows),
            Resolved::Cmp(c) => self.lookup_cmp(c)?,
        })
    }

    fn lookup_cmp(&self, c: &Cmp) -> Result<Hits, StoreError> {
        let rows = self.meta.rows;
        let ty = &self.meta.schema.fields[c.column].ty;
        if let Some(h) = self.meta.synopses[c.column].hits(ty, c.op, &c.value, rows) {
            return Ok(h);
        }
        if !self.meta.indexed[c.column] {
            return Ok(Hits::unknown(rows));
        }
        let path = self.dir.join(format!("c{}", c.column));
        let file = self.column(c.column)?;
        let idx = value_index::access(file.payload())
            .map_err(|e| StoreError::corrupt(&path, e.to_string()))?;
        if idx.rows.to_native() != rows {
            return Err(StoreError::corrupt(
                &path,
                "row count differs from the partition's",
            ));
        }
        idx.lookup(ty, c.op, &c.value, c.regex.as_ref())
            .map_err(|e| StoreError::corrupt(&path, e.to_string()))
    }
}
