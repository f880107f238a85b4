//! Rendering a [`Record`] as an `audit.k8s.io/v1` `Event` line.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::{Decision, Level, Record};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    kind: &'static str,
    api_version: &'static str,
    level: Level,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: &'static str,
    #[serde(rename = "requestURI")]
    request_uri: &'a str,
    verb: &'a str,
    user: User<'a>,
    #[serde(rename = "sourceIPs", skip_serializing_if = "Vec::is_empty")]
    source_ips: Vec<String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_ref: Option<ObjectRef<'a>>,
    response_status: ResponseStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_object: Option<Value>,
    request_received_timestamp: String,
    stage_timestamp: String,
    cluster: &'a str,
    latency: String,
}

#[derive(Serialize)]
struct User<'a> {
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    uid: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef<'a> {
    resource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    api_group: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    api_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    subresource: &'a str,
}

#[derive(Serialize)]
struct ResponseStatus {
    metadata: serde_json::Map<String, Value>,
    code: u16,
}

/// Appends the event line of `record` at the decided level to `out`.
pub(crate) fn render(record: &Record, decision: Decision, out: &mut Vec<u8>) {
    let generated;
    let audit_id = match &record.audit_id {
        Some(id) => id.as_str(),
        None => {
            generated = uuid::Uuid::new_v4().to_string();
            &generated
        }
    };
    let body = |value: &Option<Value>, level: Level| {
        if decision.level < level {
            return None;
        }
        let mut value = value.clone()?;
        if decision.omit_managed_fields
            && let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.remove("managedFields");
        }
        Some(value)
    };
    let object_ref = (!record.resource.is_empty()).then(|| ObjectRef {
        resource: &record.resource,
        namespace: &record.namespace,
        name: &record.name,
        api_group: &record.api_group,
        api_version: &record.api_version,
        subresource: &record.subresource,
    });
    let event = Event {
        kind: "Event",
        api_version: "audit.k8s.io/v1",
        level: decision.level,
        audit_id,
        stage: "ResponseComplete",
        request_uri: &record.request_uri,
        verb: &record.verb,
        user: User {
            username: &record.user,
            uid: &record.uid,
            groups: &record.groups,
        },
        source_ips: record.source_ip.iter().map(ToString::to_string).collect(),
        user_agent: &record.user_agent,
        object_ref,
        response_status: ResponseStatus {
            metadata: serde_json::Map::new(),
            code: record.code,
        },
        request_object: body(&record.request_object, Level::Request),
        response_object: body(&record.response_object, Level::RequestResponse),
        request_received_timestamp: micro_time(record.received),
        stage_timestamp: micro_time(record.received + record.latency),
        cluster: &record.cluster,
        latency: latency(record.latency),
    };
    // Serializing plain structs and JSON values into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, &event).is_ok() {
        out.push(b'\n');
    }
}

/// Upstream's `MicroTime`: RFC 3339 in UTC with six fractional digits.
pub(crate) fn micro_time(at: SystemTime) -> String {
    match jiff::Timestamp::try_from(at) {
        Ok(ts) => format!("{ts:.6}"),
        Err(_) => "1970-01-01T00:00:00.000000Z".to_owned(),
    }
}

/// A duration as milliseconds with three decimals: `"0.250ms"`, `"1234.567ms"`.
pub(crate) fn latency(d: Duration) -> String {
    let micros = d.as_micros();
    format!("{}.{:03}ms", micros / 1000, micros % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_latencies() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(micro_time(at), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            micro_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20.000000Z"
        );
        assert_eq!(latency(Duration::from_micros(1234)), "1.234ms");
        assert_eq!(latency(Duration::from_micros(250)), "0.250ms");
        assert_eq!(latency(Duration::from_nanos(999)), "0.000ms");
        assert_eq!(latency(Duration::from_millis(1_234_567)), "1234567.000ms");
    }
}
