//! The root CA publisher loop: every namespace has the ConfigMap `kube-root-ca.crt` holding
//! the CA bundle that verifies the API server, recreated or repaired when deleted or edited.
//!
//! The bundle is [`crate::Config::ca_bundle`]; without one the loop is not wired, as upstream
//! runs no publisher without a root CA.

use std::sync::Arc;

use controllers::rootcacert::{self, CONFIG_MAP_NAME, Write};
use runtime::informer::Change;
use runtime::resource::{self, CONFIG_MAPS, NAMESPACES};
use runtime::{Action, Key};

use crate::{Cluster, Error, Shared, client};

/// The field selector of the published ConfigMaps.
const SELECTOR: &str = concat!("metadata.name=", "kube-root-ca.crt");

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    if shared.config.ca_bundle.is_none() {
        return;
    }
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(NAMESPACES, move |change| {
        if let Change::Applied { new, .. } = change {
            s.queues.rootcacerts.add(c.key("", resource::name(new)));
        }
    });
    // Only the published ConfigMaps, as upstream's publisher watches: a cluster may hold
    // very many ConfigMaps, and this loop reads one per namespace.
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster
        .filtered_informer(CONFIG_MAPS, SELECTOR)
        .on_change(move |change| {
            let cm = change.object();
            s.queues.rootcacerts.add(c.key("", resource::namespace(cm)));
        });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(bundle) = shared.config.ca_bundle.as_deref() else {
        return Ok(Action::await_change());
    };
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(ns) = cluster.cache(&NAMESPACES).get("", &key.name) else {
        return Ok(Action::await_change());
    };
    let existing = cluster
        .filtered_cache(&CONFIG_MAPS, SELECTOR)
        .get(&key.name, CONFIG_MAP_NAME);
    let result = match rootcacert::reconcile(&ns, existing.as_deref(), bundle) {
        None => return Ok(Action::await_change()),
        Some(Write::Create(cm)) => client::create(&cluster.client, &CONFIG_MAPS, &cm).await,
        Some(Write::Update(cm)) => client::replace(&cluster.client, &CONFIG_MAPS, &cm).await,
    };
    match result {
        Ok(_) => Ok(Action::await_change()),
        // A stale cache: the watch brings the newer object, which queues the namespace again.
        // A namespace gone or terminating is not retried, as upstream.
        Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => Ok(Action::await_change()),
        Err(e) if resource::is_deleting(&ns) => {
            tracing::debug!(namespace = %key.name, error = %e, "namespace terminating");
            Ok(Action::await_change())
        }
        Err(e) => Err(e.into()),
    }
}
