//! The CertificateSigningRequest loop: upstream's `csrapproving` controller for kubelet client
//! certificates (approval after a SubjectAccessReview as the requester), then its `csrsigning`
//! controllers for the kubelet client and API server client signers, when the manager was given
//! a [`Signer`] (only the server holds each cluster's CA), and its `csrcleaner`, which deletes
//! requests an hour after they were decided on (a day if nobody did) or when their certificate
//! expires.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use controllers::csr as core;
use runtime::informer::Change;
use runtime::resource::{self, Resource};
use runtime::{Action, Key};

use crate::{Cluster, Error, Shared, client};

/// `certificatesigningrequests`.
pub(crate) const CERTIFICATE_SIGNING_REQUESTS: Resource = Resource::new(
    "certificates.k8s.io",
    "v1",
    "CertificateSigningRequest",
    "certificatesigningrequests",
    false,
);

/// `subjectaccessreviews`, created to ask the authorizer.
const SUBJECT_ACCESS_REVIEWS: Resource = Resource::new(
    "authorization.k8s.io",
    "v1",
    "SubjectAccessReview",
    "subjectaccessreviews",
    false,
);

/// How long a recognized request whose requester was not allowed waits before it is asked
/// about again (a binding may be created meanwhile).
const NOT_ALLOWED_RETRY: Duration = Duration::from_secs(30);

/// Why a cluster's CA did not sign a request.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The request cannot be signed as it is; it gets a `Failed` condition with this message.
    #[error("{0}")]
    Refused(String),
    /// Signing failed for now (the CA could not be read); the request is retried.
    #[error("signing is unavailable: {0}")]
    Unavailable(String),
}

/// Signs certificate requests with a cluster's client CA.
#[async_trait::async_trait]
pub trait Signer: Send + Sync + 'static {
    /// A certificate (PEM) for the PEM `CERTIFICATE REQUEST` `csr_pem`, issued by cluster
    /// `cluster`'s client CA and valid for `validity`.
    async fn sign(
        &self,
        cluster: &str,
        csr_pem: &str,
        validity: Duration,
    ) -> Result<String, SignError>;
}

impl std::fmt::Debug for dyn Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

pub(crate) fn wire(cluster: &Arc<Cluster>, shared: &Arc<Shared>) {
    let (c, s) = (Arc::clone(cluster), Arc::clone(shared));
    cluster.on_change(CERTIFICATE_SIGNING_REQUESTS, move |change| {
        if let Change::Applied { new, .. } = change {
            s.queues.csrs.add(c.key("", resource::name(new)));
        }
    });
}

pub(crate) async fn reconcile(shared: Arc<Shared>, key: Key) -> Result<Action, Error> {
    let Some(cluster) = shared.cluster(&key.cluster) else {
        return Ok(Action::await_change());
    };
    let Some(csr) = cluster
        .cache(&CERTIFICATE_SIGNING_REQUESTS)
        .get("", &key.name)
    else {
        return Ok(Action::await_change());
    };
    let csr = (*csr).clone();
    if core::cleanup(&csr, SystemTime::now()) == core::Cleanup::Delete {
        return clean_up(&cluster, &csr).await;
    }
    let recognized = core::recognize(&csr);
    if !recognized.is_empty() {
        for r in &recognized {
            let review = client::create(
                &cluster.client,
                &SUBJECT_ACCESS_REVIEWS,
                &core::access_review(&csr, r.subresource),
            )
            .await?;
            if review.pointer("/status/allowed").and_then(|v| v.as_bool()) == Some(true) {
                let approved = core::approve(&csr, r.message, SystemTime::now());
                return match client::replace_subresource(
                    &cluster.client,
                    &CERTIFICATE_SIGNING_REQUESTS,
                    "approval",
                    &approved,
                )
                .await
                {
                    // The informer brings the approved request back, to be signed.
                    Ok(_) => Ok(Action::await_change()),
                    Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => {
                        Ok(Action::await_change())
                    }
                    Err(e) => Err(e.into()),
                };
            }
        }
        tracing::debug!(
            cluster = %cluster.id(),
            csr = %key.name,
            tried = ?recognized.iter().map(|r| r.subresource).collect::<Vec<_>>(),
            "recognized the request but its requester may not have it approved"
        );
        return Ok(Action::requeue(NOT_ALLOWED_RETRY));
    }
    let Some(signer) = shared.config.signer.as_ref() else {
        return clean_up(&cluster, &csr).await;
    };
    let update = match core::signing(&csr) {
        core::Signing::Nothing => return clean_up(&cluster, &csr).await,
        core::Signing::Fail(message) => core::failed(&csr, &message, SystemTime::now()),
        core::Signing::Sign(validity) => {
            let pem = core::request_pem(&csr).unwrap_or_default();
            match signer.sign(cluster.id(), &pem, validity).await {
                Ok(certificate) => core::issued(&csr, &certificate),
                Err(SignError::Refused(message)) => core::failed(&csr, &message, SystemTime::now()),
                Err(e @ SignError::Unavailable(_)) => {
                    tracing::warn!(cluster = %cluster.id(), csr = %key.name, error = %e, "cannot sign");
                    return Ok(Action::requeue(NOT_ALLOWED_RETRY));
                }
            }
        }
    };
    match client::replace_status(&cluster.client, &CERTIFICATE_SIGNING_REQUESTS, &update).await {
        Ok(_) => Ok(Action::await_change()),
        // A newer version is on its way through the informer; it is looked at again.
        Err(e) if client::is_conflict(&e) || client::is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// Upstream's `csrcleaner`: requests go once they are done with (or forgotten); until then the
/// key comes back when the next deadline is due.
async fn clean_up(cluster: &Cluster, csr: &serde_json::Value) -> Result<Action, Error> {
    match core::cleanup(csr, SystemTime::now()) {
        core::Cleanup::Never => Ok(Action::await_change()),
        core::Cleanup::After(d) => Ok(Action::requeue(d)),
        core::Cleanup::Delete => {
            client::delete(
                &cluster.client,
                &CERTIFICATE_SIGNING_REQUESTS,
                "",
                resource::name(csr),
                Some(resource::uid(csr)),
                None,
            )
            .await?;
            Ok(Action::await_change())
        }
    }
}
