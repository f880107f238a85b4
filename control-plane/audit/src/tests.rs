use std::collections::HashSet;
use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn pod_create() -> Record {
    Record {
        cluster: "acme:prod".to_owned(),
        audit_id: Some("4b1e1c3a-0000-4000-8000-000000000001".to_owned()),
        user: "alice".to_owned(),
        uid: "u-1".to_owned(),
        groups: vec!["dev".to_owned(), "system:authenticated".to_owned()],
        verb: "create".to_owned(),
        api_group: String::new(),
        api_version: "v1".to_owned(),
        resource: "pods".to_owned(),
        namespace: "default".to_owned(),
        name: "web".to_owned(),
        request_uri: "/api/v1/namespaces/default/pods?fieldManager=kubectl".to_owned(),
        source_ip: Some("10.0.0.7".parse().unwrap()),
        user_agent: "kubectl/v1.33.0".to_owned(),
        code: 201,
        received: SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
        latency: Duration::from_micros(1234),
        request_object: Some(json!({
            "kind": "Pod",
            "metadata": {"name": "web", "managedFields": [{"manager": "kubectl"}]},
        })),
        response_object: Some(json!({"kind": "Pod", "metadata": {"name": "web", "uid": "p-1"}})),
        ..Record::default()
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn policy(level: &str) -> Policy {
    Policy::from_yaml(&format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n- level: {level}\n"
    ))
    .unwrap()
}

#[tokio::test]
async fn an_event_line_has_upstreams_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let auditor = Auditor::spawn(Sink::File(path.clone()), Policy::default()).unwrap();
    auditor.log(pod_create());
    auditor.flush().await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count(), 1);
    let event: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(
        event,
        json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": "4b1e1c3a-0000-4000-8000-000000000001",
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/default/pods?fieldManager=kubectl",
            "verb": "create",
            "user": {"username": "alice", "uid": "u-1", "groups": ["dev", "system:authenticated"]},
            "sourceIPs": ["10.0.0.7"],
            "userAgent": "kubectl/v1.33.0",
            "objectRef": {"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 201},
            "requestReceivedTimestamp": "2023-11-14T22:13:20.123456Z",
            "stageTimestamp": "2023-11-14T22:13:20.124690Z",
            "cluster": "acme:prod",
            "latency": "1.234ms",
        })
    );
}

#[tokio::test]
async fn bodies_follow_the_level() {
    let dir = tempfile::tempdir().unwrap();
    for (level, request, response) in [
        ("Metadata", false, false),
        ("Request", true, false),
        ("RequestResponse", true, true),
    ] {
        let path = dir.path().join(level);
        let auditor = Auditor::spawn(Sink::File(path.clone()), policy(level)).unwrap();
        auditor.log(pod_create());
        auditor.flush().await;
        let event = &lines(&path)[0];
        assert_eq!(event["level"], level);
        assert_eq!(event.get("requestObject").is_some(), request, "{level}");
        assert_eq!(event.get("responseObject").is_some(), response, "{level}");
        if request {
            // omitManagedFields strips them from bodies.
            assert_eq!(
                event["requestObject"],
                json!({"kind": "Pod", "metadata": {"name": "web"}})
            );
        }
        if response {
            assert_eq!(event["responseObject"]["metadata"]["uid"], "p-1");
        }
    }
}

#[tokio::test]
async fn non_resource_requests_have_no_object_ref_and_level_none_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let auditor = Auditor::spawn(Sink::File(path.clone()), Policy::default()).unwrap();
    let base = Record {
        user: "bob".to_owned(),
        verb: "get".to_owned(),
        code: 200,
        ..Record::default()
    };
    auditor.log(Record {
        request_uri: "/healthz?verbose=1".to_owned(),
        ..base.clone()
    });
    auditor.log(Record {
        resource: "events".to_owned(),
        namespace: "default".to_owned(),
        request_uri: "/api/v1/namespaces/default/events".to_owned(),
        ..base.clone()
    });
    auditor.log(Record {
        request_uri: "/version".to_owned(),
        ..base
    });
    auditor.flush().await;
    let events = lines(&path);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["requestURI"], "/version");
    assert!(event.get("objectRef").is_none());
    assert!(event.get("sourceIPs").is_none());
    assert_eq!(event["user"], json!({"username": "bob"}));
    // A generated audit ID is a v4 UUID.
    let id = uuid::Uuid::parse_str(event["auditID"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(auditor.dropped(), 0);
}

#[tokio::test]
async fn log_never_waits_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let auditor =
        Auditor::spawn_with_capacity(Sink::File(path.clone()), Policy::default(), 3).unwrap();
    // On this single-threaded runtime the writer cannot run until the test yields, so the
    // channel holds three records and the other two are dropped.
    for _ in 0..5 {
        auditor.log(pod_create());
    }
    assert_eq!(auditor.dropped(), 2);
    // Records the policy does not log are neither queued nor counted.
    auditor.log(Record {
        request_uri: "/livez".to_owned(),
        ..Record::default()
    });
    assert_eq!(auditor.dropped(), 2);
    auditor.flush().await;
    assert_eq!(lines(&path).len(), 3);
    // Once drained, there is room again.
    auditor.log(pod_create());
    auditor.flush().await;
    assert_eq!(lines(&path).len(), 4);
    assert_eq!(auditor.clone().dropped(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_writes_everything_logged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, "").unwrap();
    let auditor = Auditor::spawn(Sink::File(path.clone()), Policy::default()).unwrap();
    let clones: Vec<_> = (0..4).map(|_| auditor.clone()).collect();
    let tasks: Vec<_> = clones
        .into_iter()
        .map(|auditor| {
            tokio::spawn(async move {
                for _ in 0..500 {
                    auditor.log(Record {
                        audit_id: None,
                        ..pod_create()
                    });
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    auditor.flush().await;
    let events = lines(&path);
    assert_eq!(events.len() as u64 + auditor.dropped(), 2000);
    assert_eq!(
        auditor.dropped(),
        0,
        "2,000 records fit the default capacity"
    );
    let ids: HashSet<_> = events.iter().map(|e| e["auditID"].clone()).collect();
    assert_eq!(ids.len(), 2000);
}

#[tokio::test]
async fn files_are_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
    let auditor = Auditor::spawn(Sink::File(path.clone()), Policy::default()).unwrap();
    auditor.log(pod_create());
    auditor.flush().await;
    let events = lines(&path);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], json!({"earlier": true}));
}

#[tokio::test]
async fn an_unopenable_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("audit.log");
    let err = Auditor::spawn(Sink::File(path), Policy::default()).unwrap_err();
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

#[test]
fn sinks_parse_like_upstreams_flag() {
    assert_eq!(Sink::parse("-"), Sink::Stdout);
    assert_eq!(
        Sink::parse("/var/log/audit.log"),
        Sink::File(PathBuf::from("/var/log/audit.log"))
    );
}

#[test]
fn record_attrs_drop_the_query() {
    let record = pod_create();
    let attrs = record.attrs();
    assert_eq!(attrs.path, "/api/v1/namespaces/default/pods");
    assert_eq!(attrs.resource, "pods");
    assert_eq!(attrs.groups.len(), 2);
}
