//! The ServiceAccounts loop: every active namespace has a `default` ServiceAccount, recreated
//! when it is deleted.

use std::sync::Arc;

use runtime::informer::Change;
use runtime::resource::{self, NAMESPACES, SERVICE_ACCOUNTS};
use runtime::{Action, Key};
use serde_json::Value;

use crate::{Cluster, Error, Shared, client};

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(NAMESPACES, move |change| {
        if let Change::Applied { new, .. } = change {
            s.queues.serviceaccounts.add(c.key("", resource::name(new)));
        }
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(SERVICE_ACCOUNTS, move |change| {
        // Only a deletion can leave a namespace without its accounts.
        if let Change::Deleted(sa) = change {
            s.queues
                .serviceaccounts
                .add(c.key("", resource::namespace(sa)));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(ns) = cluster.cache(&NAMESPACES).get("", &key.name) else {
        return Ok(Action::await_change());
    };
    let accounts: Vec<Value> = cluster
        .cache(&SERVICE_ACCOUNTS)
        .in_namespace(&key.name)
        .iter()
        .map(|a| (**a).clone())
        .collect();
    for sa in controllers::serviceaccount::reconcile(&ns, &accounts) {
        match client::create(&cluster.client, &SERVICE_ACCOUNTS, &sa).await {
            Ok(_) => {}
            // Someone made it first, or the namespace went away or began terminating.
            Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => {}
            Err(e) if is_forbidden(&e) && resource::is_deleting(&ns) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::await_change())
}

fn is_forbidden(e: &client::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}
