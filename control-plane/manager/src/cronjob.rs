//! The CronJob loop: creates each CronJob's Job for its latest unmet schedule time, prunes
//! finished Jobs beyond the history limits and keeps `status.active` current.
//!
//! A created Job is an expectation: until the Job cache shows it the CronJob is not synced
//! again, since the core drops an `active` reference whose Job it is not shown.

use std::sync::Arc;
use std::time::SystemTime;

use controllers::cronjob as core;
use kube::api::PropagationPolicy;
use runtime::resource::{self, CRON_JOBS, JOBS};
use runtime::{Action, Key};
use serde_json::Value;

use crate::job::CONFLICT_RETRY;
use crate::owners::{self, Observed};
use crate::replicaset::controller_of;
use crate::{Cluster, Error, Shared, client};

const COMPONENT: &str = "cronjob-controller";

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(CRON_JOBS, move |change| {
        owners::route_owner(&c, change, &s.cj_expectations, &s.queues.cronjobs);
    });
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(JOBS, move |change| {
        let job = change.object();
        let ns = resource::namespace(job);
        if let Some(name) = controller_of(job, "CronJob")
            && owners::observed(change) == Some(Observed::Creation)
        {
            s.cj_expectations.creation_observed(&c.key(ns, name));
        }
        for name in owners::controllers(change, "CronJob") {
            s.queues.cronjobs.add(c.key(ns, name));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(cj) = cluster.cache(&CRON_JOBS).get(&key.namespace, &key.name) else {
        shared.cj_expectations.forget(&key);
        return Ok(Action::await_change());
    };
    if !shared.cj_expectations.satisfied(&key) {
        return Ok(Action::await_change());
    }
    let job_cache = cluster.cache(&JOBS);
    let jobs: Vec<Value> = job_cache
        .controlled_by(resource::uid(&cj))
        .iter()
        .map(|j| (**j).clone())
        .collect();
    let plan = core::reconcile(&cj, &jobs, SystemTime::now());
    let client = &cluster.client;
    let events = cluster.recorder(COMPONENT);
    let ns = key.namespace.as_str();

    for name in &plan.delete {
        let uid = job_cache
            .get(ns, name)
            .map(|j| resource::uid(&j).to_string());
        client::delete(
            client,
            &JOBS,
            ns,
            name,
            uid.as_deref(),
            Some(PropagationPolicy::Background),
        )
        .await?;
    }
    let mut status = plan.status.clone();
    let mut recorded: Vec<controllers::event::Event> = plan.events.clone();
    if let Some(job) = &plan.create {
        shared.cj_expectations.expect(&key, 1, 0);
        let created = match client::create(client, &JOBS, job).await {
            Ok(created) => created,
            Err(e) if client::is_conflict(&e) => {
                // An earlier sync created it; refer to it as it is stored.
                shared.cj_expectations.creation_observed(&key);
                recorded.retain(|e| e.reason != "SuccessfulCreate");
                let existing = client::get(client, &JOBS, ns, resource::name(job)).await?;
                match existing {
                    Some(j) if resource::controller_uid(&j) == Some(resource::uid(&cj)) => j,
                    _ => {
                        owners::record(&events, &cj, &recorded);
                        return Ok(Action::await_change());
                    }
                }
            }
            Err(e) => {
                shared.cj_expectations.creation_observed(&key);
                events.record(
                    &cj,
                    runtime::events::EventType::Warning,
                    "FailedCreate",
                    &format!("Error creating job: {e}"),
                );
                return Err(e.into());
            }
        };
        status = plan.status_with_created(&created);
    }
    if let Some(status) = status {
        let mut obj = (*cj).clone();
        obj["status"] = status;
        match client::replace_status(client, &CRON_JOBS, &obj).await {
            Ok(_) => {}
            Err(e) if client::is_conflict(&e) => {
                owners::record(&events, &cj, &recorded);
                return Ok(Action::requeue(CONFLICT_RETRY));
            }
            Err(e) if client::is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    owners::record(&events, &cj, &recorded);
    Ok(plan
        .requeue_after
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}
