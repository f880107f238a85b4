//! Reads and writes of JSON objects through a `kube::Client`.

use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use runtime::resource::{self, Resource};
use serde_json::Value;

/// What a write can fail with.
pub(crate) type Error = kube::Error;

/// Whether `e` is the API's 404 NotFound.
pub(crate) fn is_not_found(e: &Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether `e` is the API's 409 Conflict or AlreadyExists.
pub(crate) fn is_conflict(e: &Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn ns_of(obj: &Value) -> Option<&str> {
    Some(resource::namespace(obj)).filter(|s| !s.is_empty())
}

/// Creates `obj`; returns it as stored.
pub(crate) async fn create(
    client: &kube::Client,
    r: &Resource,
    obj: &Value,
) -> Result<Value, Error> {
    let api = r.api(client, ns_of(obj));
    let obj = resource::from_value(obj.clone()).map_err(kube::Error::SerdeError)?;
    Ok(resource::to_value(
        api.create(&PostParams::default(), &obj).await?,
    ))
}

/// Replaces `obj` (its resourceVersion is the precondition); returns it as stored.
pub(crate) async fn replace(
    client: &kube::Client,
    r: &Resource,
    obj: &Value,
) -> Result<Value, Error> {
    let api = r.api(client, ns_of(obj));
    let name = resource::name(obj).to_string();
    let obj = resource::from_value(obj.clone()).map_err(kube::Error::SerdeError)?;
    Ok(resource::to_value(
        api.replace(&name, &PostParams::default(), &obj).await?,
    ))
}

/// Replaces `obj`'s status through the status subresource.
pub(crate) async fn replace_status(
    client: &kube::Client,
    r: &Resource,
    obj: &Value,
) -> Result<Value, Error> {
    let api = r.api(client, ns_of(obj));
    let body = resource::from_value(obj.clone()).map_err(kube::Error::SerdeError)?;
    Ok(resource::to_value(
        api.replace_status(resource::name(obj), &PostParams::default(), &body)
            .await?,
    ))
}

/// Replaces `obj` through subresource `subresource` (e.g. `approval`).
pub(crate) async fn replace_subresource(
    client: &kube::Client,
    r: &Resource,
    subresource: &str,
    obj: &Value,
) -> Result<Value, Error> {
    let api = r.api(client, ns_of(obj));
    Ok(resource::to_value(
        api.replace_subresource(
            subresource,
            resource::name(obj),
            &PostParams::default(),
            obj,
        )
        .await?,
    ))
}

/// Applies a JSON merge patch to `namespace/name`.
pub(crate) async fn merge_patch(
    client: &kube::Client,
    r: &Resource,
    namespace: &str,
    name: &str,
    patch: &Value,
) -> Result<(), Error> {
    let api = r.api(client, Some(namespace).filter(|s| !s.is_empty()));
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// Deletes `namespace/name` if its uid is still `uid` (when given), with `propagation`
/// (`Background`, `Foreground`, `Orphan`) when given. A missing object is not an error.
pub(crate) async fn delete(
    client: &kube::Client,
    r: &Resource,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
    propagation: Option<kube::api::PropagationPolicy>,
) -> Result<(), Error> {
    let api = r.api(client, Some(namespace).filter(|s| !s.is_empty()));
    let params = DeleteParams {
        preconditions: uid.map(|u| Preconditions {
            uid: Some(u.to_string()),
            resource_version: None,
        }),
        propagation_policy: propagation,
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) if is_conflict(&e) && uid.is_some() => Ok(()),
        Err(e) => Err(e),
    }
}

/// POSTs `body` to a subresource of `namespace/name` (e.g. `binding`).
pub(crate) async fn post_subresource(
    client: &kube::Client,
    r: &Resource,
    namespace: &str,
    name: &str,
    subresource: &str,
    body: &Value,
) -> Result<(), Error> {
    let api = r.api(client, Some(namespace).filter(|s| !s.is_empty()));
    let _: Value = api
        .create_subresource(subresource, name, &PostParams::default(), body)
        .await?;
    Ok(())
}

/// Applies the strategic merge `patch` to `namespace/name`; returns the object as stored, or
/// `None` when it is gone.
pub(crate) async fn patch(
    client: &kube::Client,
    r: &Resource,
    namespace: &str,
    name: &str,
    patch: &Value,
) -> Result<Option<Value>, Error> {
    let api = r.api(client, Some(namespace).filter(|s| !s.is_empty()));
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(obj) => Ok(Some(resource::to_value(obj))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads `namespace/name` live, bypassing the caches; `None` when it does not exist.
pub(crate) async fn get(
    client: &kube::Client,
    r: &Resource,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, Error> {
    let api = r.api(client, Some(namespace).filter(|s| !s.is_empty()));
    Ok(api.get_opt(name).await?.map(resource::to_value))
}

/// Deletes `namespace/name` at once (grace period 0) if its uid is still `uid`. A missing
/// object, or one replaced since, is not an error.
pub(crate) async fn force_delete(
    client: &kube::Client,
    r: &Resource,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<(), Error> {
    let api = r.api(client, Some(namespace).filter(|s| !s.is_empty()));
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(e),
    }
}
