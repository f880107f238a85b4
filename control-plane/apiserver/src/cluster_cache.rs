//! Per-cluster values derived from one kind of stored object (the CRDs of a cluster, its
//! admission configurations), kept until one of those objects changes.
//!
//! A store watch over every cluster drops a cluster's value when a key of the kind changes, so
//! writes through other replicas count too; the API server also drops it at once after its own
//! writes. A value loaded from a read that started before a drop is not kept. If the watch
//! fails, every value is dropped and the watch starts again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Weak};

use futures::StreamExt;
use parking_lot::Mutex;

use crate::error::ApiResult;

struct State<T> {
    by_cluster: HashMap<String, T>,
    /// Bumped at every change of a cluster's objects.
    generation: HashMap<String, u64>,
    watching: bool,
}

/// Values of type `T` per cluster, dropped when a stored key containing `marker` changes.
pub(crate) struct ClusterCache<T> {
    inner: Arc<Mutex<State<T>>>,
    /// What keys of the watched kind contain, e.g. `/apiextensions.k8s.io/customresourcedefinitions/`.
    marker: &'static str,
}

impl<T: Clone + Send + 'static> ClusterCache<T> {
    /// An empty cache of the objects whose keys contain `marker`.
    pub(crate) fn new(marker: &'static str) -> Self {
        ClusterCache {
            inner: Arc::new(Mutex::new(State {
                by_cluster: HashMap::new(),
                generation: HashMap::new(),
                watching: false,
            })),
            marker,
        }
    }

    /// Drops `cluster`'s value (one of its objects changed).
    pub(crate) fn invalidate(&self, cluster: &str) {
        invalidate(&self.inner, cluster);
    }

    /// `cluster`'s value, made by `load` when there is none.
    pub(crate) async fn get<F, Fut>(
        &self,
        store: &Arc<dyn store::Store>,
        cluster: &str,
        load: F,
    ) -> ApiResult<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let generation = {
            let mut inner = self.inner.lock();
            if !inner.watching {
                inner.watching = true;
                tokio::spawn(watch_changes(
                    Arc::clone(store),
                    Arc::downgrade(&self.inner),
                    self.marker,
                ));
            }
            if let Some(v) = inner.by_cluster.get(cluster) {
                return Ok(v.clone());
            }
            inner.generation.get(cluster).copied().unwrap_or_default()
        };
        let value = load().await?;
        let mut inner = self.inner.lock();
        if inner.generation.get(cluster).copied().unwrap_or_default() == generation {
            inner.by_cluster.insert(cluster.to_owned(), value.clone());
        }
        Ok(value)
    }
}

fn invalidate<T>(inner: &Mutex<State<T>>, cluster: &str) {
    let mut inner = inner.lock();
    inner.by_cluster.remove(cluster);
    *inner.generation.entry(cluster.to_owned()).or_default() += 1;
}

async fn watch_changes<T>(
    store: Arc<dyn store::Store>,
    inner: Weak<Mutex<State<T>>>,
    marker: &'static str,
) {
    loop {
        let watch = store
            .watch(store::WatchRequest::prefix(
                bytes::Bytes::from_static(b"/registry/"),
                None,
            ))
            .await;
        match watch {
            Ok(mut events) => {
                while let Some(item) = events.next().await {
                    let Some(inner) = inner.upgrade() else { return };
                    let Ok(store::WatchResponse::Events(events)) = item else {
                        if item.is_err() {
                            break;
                        }
                        continue;
                    };
                    for event in events {
                        let key = String::from_utf8_lossy(&event.kv.key);
                        if !key.contains(marker) {
                            continue;
                        }
                        if let Some(cluster) = key
                            .strip_prefix("/registry/")
                            .and_then(|rest| rest.split('/').next())
                        {
                            invalidate(&inner, cluster);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, marker, "cannot watch changes; retrying"),
        }
        let Some(inner) = inner.upgrade() else { return };
        {
            let mut inner = inner.lock();
            let clusters: Vec<String> = inner.by_cluster.keys().cloned().collect();
            inner.by_cluster.clear();
            for c in clusters {
                *inner.generation.entry(c).or_default() += 1;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
