//! The cluster as the importer's remote store: partitions placed on other members
//! travel over the data plane, split so no request outgrows a frame.

use super::Cluster;
use crate::data::Batch;
use crate::proto::DataRequest;
use std::sync::Arc;
use std::time::Duration;

/// Room left in a frame for the envelope around a batch.
const ENVELOPE: usize = 64 << 10;

pub struct ClusterStore(pub std::sync::Weak<Cluster>);

#[async_trait::async_trait]
impl crate::importer::RemoteStore for ClusterStore {
    async fn store(
        &self,
        node: &str,
        id: uuid::Uuid,
        offset: u32,
        batch: Arc<Batch>,
    ) -> Result<(), String> {
        let c = self.0.upgrade().ok_or("node is shutting down")?;
        for (first, bytes) in batch.to_bytes_fitting(c.opts.max_frame.saturating_sub(ENVELOPE)) {
            let req = DataRequest::Store {
                partition: *id.as_bytes(),
                offset: offset
                    .checked_add(first)
                    .ok_or("partition row numbers overflow")?,
                batch: bytes,
            };
            c.ask_member(node, req, Duration::from_secs(60)).await?;
        }
        Ok(())
    }

    async fn seal(&self, node: &str, id: uuid::Uuid, txn: uuid::Uuid) -> Result<(), String> {
        let c = self.0.upgrade().ok_or("node is shutting down")?;
        let req = DataRequest::Seal {
            partition: *id.as_bytes(),
            txn: *txn.as_bytes(),
        };
        c.ask_member(node, req, Duration::from_secs(300))
            .await
            .map(|_| ())
    }

    async fn commit(
        &self,
        node: &str,
        txn: uuid::Uuid,
        ids: Vec<uuid::Uuid>,
    ) -> Result<(), String> {
        let c = self.0.upgrade().ok_or("node is shutting down")?;
        let req = DataRequest::Commit {
            txn: *txn.as_bytes(),
            partitions: ids.iter().map(|i| *i.as_bytes()).collect(),
        };
        c.ask_member(node, req, Duration::from_secs(30))
            .await
            .map(|_| ())
    }

    async fn abort(&self, node: &str, txn: uuid::Uuid, ids: Vec<uuid::Uuid>) -> Result<(), String> {
        let c = self.0.upgrade().ok_or("node is shutting down")?;
        let req = DataRequest::AbortTxn {
            txn: *txn.as_bytes(),
            partitions: ids.iter().map(|i| *i.as_bytes()).collect(),
        };
        c.ask_member(node, req, Duration::from_secs(30))
            .await
            .map(|_| ())
    }

    fn stores(&self) -> Vec<String> {
        let Some(c) = self.0.upgrade() else {
            return vec![];
        };
        let archives = c.members_with("archive");
        c.members_with("index")
            .into_iter()
            .filter(|m| archives.contains(m))
            .collect()
    }

    fn this_node(&self) -> String {
        self.0.upgrade().map(|c| c.id.clone()).unwrap_or_default()
    }
}
