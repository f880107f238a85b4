//! Leader election over a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection`.
//!
//! A candidate takes the Lease when nobody holds it or when the holder has not renewed it for
//! `lease_duration`, measured on the candidate's own clock from when it last saw the record
//! change (so clock skew between replicas does not matter), and keeps it by renewing every
//! `retry_period`. Every write carries the resourceVersion it read, so two candidates can never
//! both win. A leader that cannot renew for `renew_deadline` steps down.

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use kube::core::DynamicObject;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::resource::{self, LEASES};

/// How to elect.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This candidate's identity, written to `holderIdentity`.
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down.
    pub renew_deadline: Duration,
    /// How often candidates retry and leaders renew.
    pub retry_period: Duration,
}

impl Config {
    /// Upstream kube-controller-manager's timings (15 s, 10 s, 2 s) for Lease `namespace/name`.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Config {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Runs the election until `shutdown`; the returned receiver says whether this candidate
/// leads right now.
pub fn spawn(
    config: Config,
    client: kube::Client,
    mut shutdown: watch::Receiver<bool>,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let api: Api<DynamicObject> = LEASES.api(&client, Some(&config.namespace));
        let mut observed: Option<(Value, Instant)> = None;
        let mut last_renew = Instant::now();
        loop {
            let leading = *tx.borrow();
            match try_acquire_or_renew(&api, &config, &mut observed).await {
                Ok(true) => {
                    last_renew = Instant::now();
                    if !leading {
                        tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
                        tx.send_replace(true);
                    }
                }
                Ok(false) => {
                    if leading {
                        tracing::warn!(lease = %config.name, "lost the lease to another candidate");
                        tx.send_replace(false);
                    }
                }
                Err(e) => {
                    tracing::warn!(lease = %config.name, error = %e, "cannot read or write the lease");
                    if leading && last_renew.elapsed() > config.renew_deadline {
                        tracing::warn!(lease = %config.name, "renew deadline passed; stepping down");
                        tx.send_replace(false);
                    }
                }
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(config.retry_period) => {}
            }
        }
        if *tx.borrow() {
            // Hand over quickly: expire our own record instead of waiting out the duration.
            let _ = release(&api, &config).await;
            tx.send_replace(false);
        }
    });
    rx
}

async fn try_acquire_or_renew(
    api: &Api<DynamicObject>,
    config: &Config,
    observed: &mut Option<(Value, Instant)>,
) -> Result<bool, kube::Error> {
    let now = resource::micro_time_now();
    let seconds = config.lease_duration.as_secs() as i64;
    let Some(current) = api.get_opt(&config.name).await? else {
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": config.name, "namespace": config.namespace},
            "spec": {
                "holderIdentity": config.identity,
                "leaseDurationSeconds": seconds,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        });
        return match api
            .create(
                &PostParams::default(),
                &resource::from_value(lease).map_err(kube::Error::SerdeError)?,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let current = resource::to_value(current);
    let spec = current.get("spec").cloned().unwrap_or(json!({}));
    let holder = spec
        .get("holderIdentity")
        .and_then(Value::as_str)
        .unwrap_or("");
    let record = json!([holder, spec.get("renewTime")]);
    let seen_at = match observed {
        Some((r, at)) if *r == record => *at,
        _ => {
            *observed = Some((record, Instant::now()));
            Instant::now()
        }
    };
    let ours = holder == config.identity;
    let expired = holder.is_empty() || seen_at.elapsed() > config.lease_duration;
    if !ours && !expired {
        return Ok(false);
    }
    let mut lease = current.clone();
    lease["spec"]["holderIdentity"] = json!(config.identity);
    lease["spec"]["leaseDurationSeconds"] = json!(seconds);
    lease["spec"]["renewTime"] = json!(now);
    if !ours {
        lease["spec"]["acquireTime"] = json!(now);
        let transitions = spec
            .get("leaseTransitions")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        lease["spec"]["leaseTransitions"] = json!(transitions + 1);
    }
    match api
        .replace(
            &config.name,
            &PostParams::default(),
            &resource::from_value(lease).map_err(kube::Error::SerdeError)?,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn release(api: &Api<DynamicObject>, config: &Config) -> Result<(), kube::Error> {
    let Some(current) = api.get_opt(&config.name).await? else {
        return Ok(());
    };
    let mut lease = resource::to_value(current);
    if resource::str_at(&lease, "/spec/holderIdentity") != config.identity {
        return Ok(());
    }
    lease["spec"]["holderIdentity"] = Value::Null;
    lease["spec"]["leaseDurationSeconds"] = json!(1);
    api.replace(
        &config.name,
        &PostParams::default(),
        &resource::from_value(lease).map_err(kube::Error::SerdeError)?,
    )
    .await?;
    Ok(())
}
