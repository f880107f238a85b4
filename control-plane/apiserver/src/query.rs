//! Query parameters of resource requests, parsed once, with upstream's defaults and errors.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::error::{ApiError, ApiResult};

/// The query parameters a resource request may carry.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub label_selector: String,
    pub field_selector: String,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub watch: bool,
    pub allow_bookmarks: bool,
    pub timeout: Option<Duration>,
    pub send_initial_events: Option<bool>,
    pub dry_run: bool,
    pub field_validation: Option<String>,
    pub field_manager: Option<String>,
    /// `force`: a server-side apply takes the fields other managers own.
    pub force: bool,
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub orphan_dependents: Option<bool>,
    pub include_object: Option<String>,
}

fn bool_param(v: &str) -> bool {
    matches!(v, "true" | "1" | "True" | "TRUE")
}

impl Params {
    /// Parses a query string.
    pub fn parse(query: Option<&str>) -> ApiResult<Self> {
        let mut p = Params::default();
        let Some(query) = query else { return Ok(p) };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let v = v.into_owned();
            match &*k {
                "labelSelector" => p.label_selector = v,
                "fieldSelector" => p.field_selector = v,
                "limit" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid limit {v:?}")))?;
                    p.limit = n.max(0) as usize;
                }
                "continue" if !v.is_empty() => p.continue_token = Some(v),
                "resourceVersion" if !v.is_empty() => p.resource_version = Some(v),
                "resourceVersionMatch" if !v.is_empty() => p.resource_version_match = Some(v),
                "watch" => p.watch = bool_param(&v),
                "allowWatchBookmarks" => p.allow_bookmarks = bool_param(&v),
                "timeoutSeconds" => {
                    let secs: u64 = v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid timeoutSeconds {v:?}"))
                    })?;
                    p.timeout = Some(Duration::from_secs(secs));
                }
                "sendInitialEvents" => p.send_initial_events = Some(bool_param(&v)),
                "dryRun" => {
                    if v != "All" {
                        return Err(ApiError::bad_request(format!(
                            "Invalid dry run value: {v:?}: supported values: \"All\""
                        )));
                    }
                    p.dry_run = true;
                }
                "fieldValidation" => p.field_validation = Some(v),
                "fieldManager" => p.field_manager = Some(v),
                "force" => p.force = v == "true",
                "propagationPolicy" => p.propagation_policy = Some(v),
                "gracePeriodSeconds" => {
                    p.grace_period_seconds = Some(v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid gracePeriodSeconds {v:?}"))
                    })?)
                }
                "orphanDependents" => p.orphan_dependents = Some(bool_param(&v)),
                "includeObject" => p.include_object = Some(v),
                _ => {}
            }
        }
        Ok(p)
    }

    /// The resourceVersion as a revision, if set; 400 when it is not a number.
    pub fn revision(&self) -> ApiResult<Option<u64>> {
        match &self.resource_version {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {v:?}"))),
        }
    }
}

/// A list continuation: where the next page starts and at which revision, as an opaque token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    /// Revision the first page was read at.
    pub revision: u64,
    /// Key the next page starts after, relative to the list prefix.
    pub start_after: String,
}

impl Continue {
    /// Encodes as upstream does: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"..."}`.
    pub fn encode(&self) -> String {
        let doc = json!({"v": "meta.k8s.io/v1", "rv": self.revision, "start": self.start_after});
        base64::engine::general_purpose::URL_SAFE.encode(doc.to_string())
    }

    /// Decodes a token; 400 when it is not one of ours.
    pub fn decode(token: &str) -> ApiResult<Self> {
        let bad = || ApiError::bad_request("continue key is not valid: invalid continue token");
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(token)
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
            .map_err(|_| bad())?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if doc["v"] != "meta.k8s.io/v1" {
            return Err(bad());
        }
        let revision = doc["rv"].as_u64().filter(|r| *r > 0).ok_or_else(bad)?;
        let start_after = doc["start"].as_str().ok_or_else(bad)?.to_owned();
        if start_after.contains("..") || start_after.starts_with('/') {
            return Err(bad());
        }
        Ok(Continue {
            revision,
            start_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_refuse_tampering() {
        let c = Continue {
            revision: 42,
            start_after: "default/web-1".into(),
        };
        assert_eq!(Continue::decode(&c.encode()).unwrap(), c);
        assert!(Continue::decode("not-base64!").is_err());
        let forged = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../../other-cluster"}"#);
        assert!(Continue::decode(&forged).is_err());
    }

    #[test]
    fn params_parse_with_upstream_errors() {
        let p = Params::parse(Some(
            "labelSelector=app%3Dweb&limit=5&watch=true&dryRun=All",
        ))
        .unwrap();
        assert_eq!(
            (p.label_selector.as_str(), p.limit, p.watch, p.dry_run),
            ("app=web", 5, true, true)
        );
        assert!(Params::parse(Some("dryRun=Some")).is_err());
        assert!(Params::parse(Some("limit=x")).is_err());
    }
}
