//! List + watch of one resource in one logical cluster, into a shared [`Cache`].
//!
//! The watch client is kube's `watcher`: it lists, watches from the list's resourceVersion,
//! resumes from the last seen resourceVersion when a watch ends, and relists when the server
//! answers 410 Gone. Each change is applied to the cache first and then announced to the
//! handlers, so a handler that enqueues a key sees the new state when the key is processed.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::watch as signal;

use crate::cache::{Cache, IndexFn};
use crate::resource::{self, Resource};

/// One change an informer saw.
#[derive(Debug, Clone)]
pub enum Change {
    /// The object was created (`old` is `None`) or updated.
    Applied {
        /// The copy the cache held before, if any.
        old: Option<Arc<Value>>,
        /// The new copy.
        new: Arc<Value>,
    },
    /// The object was deleted; this is its last known state.
    Deleted(Arc<Value>),
}

impl Change {
    /// The object as it is now (or was when deleted).
    pub fn object(&self) -> &Arc<Value> {
        match self {
            Change::Applied { new, .. } => new,
            Change::Deleted(obj) => obj,
        }
    }
}

/// A subscriber to an informer's changes. Handlers run on the informer's task: they must be
/// quick (typically they compute keys and add them to a queue).
pub type Handler = Box<dyn Fn(&Change) + Send + Sync>;

/// An informer: a cache plus the handlers told about every change.
pub struct Informer {
    resource: Resource,
    cache: Arc<Cache>,
    handlers: Arc<RwLock<Vec<Handler>>>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    metadata_only: bool,
    projection: Option<fn(Value) -> Value>,
}

impl std::fmt::Debug for Informer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("resource", &self.resource.plural)
            .field("cache", &self.cache)
            .finish()
    }
}

impl Informer {
    /// An informer for `resource` whose cache has the standard indexes plus `indexes`.
    pub fn new(resource: Resource, indexes: Vec<(&'static str, IndexFn)>) -> Self {
        Informer {
            resource,
            cache: Arc::new(Cache::new(indexes)),
            handlers: Arc::default(),
            label_selector: None,
            field_selector: None,
            metadata_only: false,
            projection: None,
        }
    }

    /// An informer that lists and watches only objects' metadata (`PartialObjectMetadata`):
    /// for loops that read nothing else, such as the garbage collector, it keeps the cache a
    /// fraction of the size.
    /// Its cache has no index and keeps objects as JSON text (see [`Cache::compact`]).
    pub fn metadata(resource: Resource) -> Self {
        Informer {
            metadata_only: true,
            cache: Arc::new(Cache::compact()),
            ..Informer::new(resource, Vec::new())
        }
    }

    /// Keeps only what `project` returns of each object, in the cache and in the changes
    /// handlers see: for loops that hold many objects and read few of their fields.
    pub fn projected(mut self, project: fn(Value) -> Value) -> Self {
        self.projection = Some(project);
        self
    }

    /// Restricts the informer to objects matching a field selector (e.g. `spec.nodeName=n1`).
    pub fn with_field_selector(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Restricts the informer to objects matching a label selector.
    pub fn with_label_selector(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Whether the cache holds only metadata.
    pub fn is_metadata_only(&self) -> bool {
        self.metadata_only
    }

    /// The cache this informer fills.
    pub fn cache(&self) -> Arc<Cache> {
        Arc::clone(&self.cache)
    }

    /// Subscribes `handler` to every change from now on (and to the initial list).
    pub fn on_change(&self, handler: impl Fn(&Change) + Send + Sync + 'static) {
        self.handlers.write().push(Box::new(handler));
    }

    /// Runs the informer against `client` until `shutdown` turns true.
    pub fn spawn(
        &self,
        client: kube::Client,
        mut shutdown: signal::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let api = self.resource.api(&client, None);
        let mut config = watcher::Config::default();
        if let Some(s) = &self.label_selector {
            config = config.labels(s);
        }
        if let Some(s) = &self.field_selector {
            config = config.fields(s);
        }
        let cache = Arc::clone(&self.cache);
        let handlers = Arc::clone(&self.handlers);
        let plural = self.resource.plural.clone();
        let project = self.projection.unwrap_or(|v| v);
        // Objects are cached without `metadata.managedFields`, dropped before they are
        // converted: no loop reads them, upstream's controller manager trims them from its
        // informers too, and they are often the larger part of a small object's metadata.
        let stream: futures::stream::BoxStream<'static, watcher::Result<watcher::Event<Value>>> =
            if self.metadata_only {
                let ar = self.resource.api_resource();
                let api: kube::Api<kube::core::PartialObjectMeta<kube::core::DynamicObject>> =
                    kube::Api::all_with(client.clone(), &ar);
                watcher(api, config)
                    .default_backoff()
                    .map(move |e| {
                        e.map(|e| {
                            as_values(e, |mut o| {
                                o.metadata.managed_fields = None;
                                project(serde_json::to_value(o).unwrap_or(Value::Null))
                            })
                        })
                    })
                    .boxed()
            } else {
                watcher(api, config)
                    .default_backoff()
                    .map(move |e| {
                        e.map(|e| {
                            as_values(e, |mut o| {
                                o.metadata.managed_fields = None;
                                project(resource::to_value(o))
                            })
                        })
                    })
                    .boxed()
            };
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            let mut buffer: Vec<Arc<Value>> = Vec::new();
            loop {
                let event = tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return,
                    event = stream.next() => event,
                };
                let Some(event) = event else { return };
                let event = match event {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(resource = %plural, error = %e, "watch failed; retrying with backoff");
                        continue;
                    }
                };
                match event {
                    watcher::Event::Init => buffer.clear(),
                    watcher::Event::InitApply(obj) => buffer.push(Arc::new(obj)),
                    watcher::Event::InitDone => {
                        let fresh = std::mem::take(&mut buffer);
                        let olds: Vec<Option<Arc<Value>>> = fresh
                            .iter()
                            .map(|o| cache.get(resource::namespace(o), resource::name(o)))
                            .collect();
                        let removed = cache.replace(fresh.clone());
                        let handlers = handlers.read();
                        for gone in removed {
                            let change = Change::Deleted(gone);
                            handlers.iter().for_each(|h| h(&change));
                        }
                        for (new, old) in fresh.into_iter().zip(olds) {
                            if old.as_ref().is_some_and(|o| {
                                resource::resource_version(o) == resource::resource_version(&new)
                            }) {
                                continue;
                            }
                            let change = Change::Applied { old, new };
                            handlers.iter().for_each(|h| h(&change));
                        }
                    }
                    watcher::Event::Apply(obj) => {
                        let new = Arc::new(obj);
                        let old = cache.apply(Arc::clone(&new));
                        let change = Change::Applied { old, new };
                        handlers.read().iter().for_each(|h| h(&change));
                    }
                    watcher::Event::Delete(obj) => {
                        let last = cache.delete(&obj).unwrap_or_else(|| Arc::new(obj));
                        let change = Change::Deleted(last);
                        handlers.read().iter().for_each(|h| h(&change));
                    }
                }
            }
        })
    }
}

/// A watcher event with its object in JSON form.
fn as_values<K>(event: watcher::Event<K>, convert: impl Fn(K) -> Value) -> watcher::Event<Value> {
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(convert(o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(convert(o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(convert(o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}
