//! Query execution: catalog prune and index lookup on the index, then the exact
//! check and row fetch on the archive, only for partitions that need it.

use crate::archive::actor::Fetch;
use crate::archive::store::Selection;
use crate::archive::Archive;
use crate::index::actor::Lookup;
use crate::index::Index;
use crate::query::Expr;
use kameo::prelude::*;
use std::sync::Arc;

/// Counts matching events. Exact index answers need no data; the rest are checked
/// on the archive. With `estimate`, the index's upper bound is returned as is.
pub async fn count(
    index: &ActorRef<Index>,
    archive: &ActorRef<Archive>,
    expr: Expr,
    estimate: bool,
) -> Result<u64, String> {
    let expr = Arc::new(expr);
    let hits = index
        .ask(Lookup { expr: expr.clone() })
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    for h in hits {
        if estimate || h.hits.is_exact() {
            n += h.hits.estimate();
            continue;
        }
        n += h.hits.sure.len();
        let sel = archive
            .ask(Fetch {
                id: h.partition.meta.uuid(),
                sure: Default::default(),
                maybe: h.hits.maybe,
                expr: expr.clone(),
                limit: None,
                from_row: 0,
                max_bytes: usize::MAX,
            })
            .await
            .map_err(|e| e.to_string())?
            .selections;
        n += sel.iter().map(|s| s.rows.len() as u64).sum::<u64>();
    }
    Ok(n)
}

/// Streams matching rows partition by partition, in import order.
pub async fn export(
    index: &ActorRef<Index>,
    archive: &ActorRef<Archive>,
    expr: Expr,
    limit: Option<u64>,
    mut sink: impl FnMut(&Selection) -> Result<(), String>,
) -> Result<u64, String> {
    let expr = Arc::new(expr);
    let hits = index
        .ask(Lookup { expr: expr.clone() })
        .await
        .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    for h in hits {
        let left = limit.map(|l| l - n);
        if left == Some(0) {
            break;
        }
        let sel = archive
            .ask(Fetch {
                id: h.partition.meta.uuid(),
                sure: h.hits.sure,
                maybe: h.hits.maybe,
                expr: expr.clone(),
                limit: left,
                from_row: 0,
                max_bytes: usize::MAX,
            })
            .await
            .map_err(|e| e.to_string())?
            .selections;
        for s in &sel {
            n += s.rows.len() as u64;
            sink(s)?;
        }
    }
    Ok(n)
}
