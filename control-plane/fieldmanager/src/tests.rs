//! Scenario tests: each builds objects, runs writes through `apply` and `update` and checks the
//! exact objects and managedFields upstream produces.

use objects::GroupKind;
use serde_json::{Value, json};

use super::*;

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:01:00Z";
const T2: &str = "2026-01-01T00:02:00Z";

fn deployments() -> BuiltinTypes {
    BuiltinTypes::new(GroupKind::new("apps", "Deployment"))
}

fn configmaps() -> BuiltinTypes {
    BuiltinTypes::new(GroupKind::core("ConfigMap"))
}

/// The managedFields entry of `manager` (any operation).
fn entry_of<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

fn fields_of(obj: &Value, manager: &str) -> Value {
    entry_of(obj, manager)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

fn managers(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| e["manager"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn strip(mut obj: Value) -> Value {
    obj["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    obj
}

fn cm_apply(
    live: Option<&Value>,
    data: Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    let mut config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    if !data.is_null() {
        config["data"] = data;
    }
    apply(
        live,
        &config,
        manager,
        "v1",
        None,
        force,
        now,
        &configmaps(),
    )
}

/// What the API server stores for `kubectl create deployment nginx --image=nginx`, defaulted.
fn created_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"},
                     "uid": "u1", "resourceVersion": "1", "generation": 1,
                     "creationTimestamp": T0},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "Always"
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {},
                    "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

fn nginx_apply_config(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [
                    {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
                ]}
            }
        }
    })
}

#[test]
fn kubectl_create_then_server_side_apply_matches_upstream() {
    let types = deployments();
    let created = update(
        None,
        (created_deployment()).clone(),
        "kubectl-create",
        "apps/v1",
        None,
        T0,
        &types,
    );
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1",
            "time": T0, "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:progressDeadlineSeconds": {}, "f:replicas": {},
                    "f:revisionHistoryLimit": {}, "f:selector": {},
                    "f:strategy": {
                        "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                        "f:type": {}
                    },
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {
                            "f:containers": {"k:{\"name\":\"nginx\"}": {
                                ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                                "f:resources": {}, "f:terminationMessagePath": {},
                                "f:terminationMessagePolicy": {}
                            }},
                            "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                            "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}
                        }
                    }
                }
            }
        }])
    );

    // Changing replicas and the image that kubectl-create set is a conflict, reported by
    // manager with every path.
    let config = nginx_apply_config(3, "nginx:1.25");
    let err = apply(
        Some(&created),
        &config,
        "kubectl",
        "apps/v1",
        None,
        false,
        T1,
        &types,
    )
    .unwrap_err();
    assert_eq!(err.status_code(), 409);
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using apps/v1:\n\
         - .spec.replicas\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let ApplyError::Conflicts(conflicts) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        conflicts.causes(),
        vec![
            StatusCause {
                reason: Some("FieldManagerConflict".into()),
                message: Some("conflict with \"kubectl-create\" using apps/v1".into()),
                field: Some(".spec.replicas".into()),
            },
            StatusCause {
                reason: Some("FieldManagerConflict".into()),
                message: Some("conflict with \"kubectl-create\" using apps/v1".into()),
                field: Some(".spec.template.spec.containers[name=\"nginx\"].image".into()),
            },
        ]
    );
    assert_eq!(conflicts.to_status().code, Some(409));

    // Forced: kubectl takes the two fields; shared values (labels, selector, name) stay with
    // both.
    let applied = apply(
        Some(&created),
        &config,
        "kubectl",
        "apps/v1",
        None,
        true,
        T1,
        &types,
    )
    .unwrap();
    assert_eq!(managers(&applied), ["kubectl", "kubectl-create"]);
    assert_eq!(
        entry_of(&applied, "kubectl").unwrap(),
        &json!({
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {}, "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}
                            }}
                        }}}
                    }
                }
            }
        })
    );
    let create = fields_of(&applied, "kubectl-create");
    assert_eq!(create["f:spec"].get("f:replicas"), None);
    assert_eq!(
        create["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]
            .get("f:image"),
        None
    );
    assert_eq!(applied["spec"]["replicas"], 3);
    assert_eq!(
        applied["spec"]["template"]["spec"]["containers"][0],
        json!({
            "name": "nginx", "image": "nginx:1.25", "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "imagePullPolicy": "Always",
            "ports": [{"containerPort": 80}]
        })
    );

    // Applying the same configuration again changes nothing, not even the time.
    let again = apply(
        Some(&applied),
        &config,
        "kubectl",
        "apps/v1",
        None,
        false,
        T2,
        &types,
    )
    .unwrap();
    assert_eq!(again, applied);
}

#[test]
fn conflict_messages() {
    type Owner<'a> = (&'a str, Operation, &'a str, &'a str);
    let cases: Vec<(Vec<Owner<'_>>, &str)> = vec![
        (
            vec![(
                "kubectl-client-side-apply",
                Operation::Update,
                "apps/v1",
                "",
            )],
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas",
        ),
        (
            vec![("helm", Operation::Apply, "apps/v1", "")],
            "Apply failed with 1 conflict: conflict with \"helm\": .spec.replicas",
        ),
        (
            vec![("kcm", Operation::Update, "apps/v1", "scale")],
            "Apply failed with 1 conflict: conflict with \"kcm\" with subresource \"scale\" using apps/v1: .spec.replicas",
        ),
        (
            vec![
                ("b", Operation::Apply, "apps/v1", ""),
                ("a", Operation::Update, "apps/v1", ""),
            ],
            "Apply failed with 2 conflicts: conflicts with \"a\" using apps/v1:\n- .spec.replicas\nconflicts with \"b\":\n- .spec.replicas",
        ),
    ];
    for (owners, want) in cases {
        let mut managed = ManagedFields::default();
        for (m, op, v, sub) in &owners {
            let mut fields = FieldSet::new();
            fields.insert(&Path::fields(&["spec", "replicas"]).0);
            managed.entries.push(ManagedFieldsEntry {
                manager: (*m).into(),
                operation: *op,
                api_version: (*v).into(),
                time: Some(T0.into()),
                fields,
                subresource: (*sub).into(),
            });
        }
        let mut live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                              "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        managed.write_to(&mut live);
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": "d"}, "spec": {"replicas": 2}});
        let err = apply(
            Some(&live),
            &config,
            "me",
            "apps/v1",
            None,
            false,
            T1,
            &deployments(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn two_appliers_share_equal_values_conflict_on_different_ones_and_force_moves_ownership() {
    let a = cm_apply(None, json!({"x": "1", "y": "1"}), "a", false, T0).unwrap();
    // Same value: shared, no conflict.
    let ab = cm_apply(Some(&a), json!({"x": "1"}), "b", false, T1).unwrap();
    assert_eq!(
        fields_of(&ab, "a"),
        json!({"f:data": {"f:x": {}, "f:y": {}}})
    );
    assert_eq!(fields_of(&ab, "b"), json!({"f:data": {"f:x": {}}}));
    // Different value: conflict.
    let err = cm_apply(Some(&ab), json!({"x": "2"}), "b", false, T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .data.x"
    );
    // Forced: b owns x alone.
    let forced = cm_apply(Some(&ab), json!({"x": "2"}), "b", true, T2).unwrap();
    assert_eq!(forced["data"], json!({"x": "2", "y": "1"}));
    assert_eq!(fields_of(&forced, "a"), json!({"f:data": {"f:y": {}}}));
    assert_eq!(fields_of(&forced, "b"), json!({"f:data": {"f:x": {}}}));
    // An applier that loses everything loses its entry.
    let all = cm_apply(Some(&forced), json!({"x": "3", "y": "3"}), "b", true, T2).unwrap();
    assert_eq!(managers(&all), ["b"]);
}

#[test]
fn dropping_a_field_removes_it_unless_someone_else_owns_it() {
    let a = cm_apply(None, json!({"x": "1", "y": "1", "z": "1"}), "a", false, T0).unwrap();
    let ab = cm_apply(Some(&a), json!({"y": "1"}), "b", false, T0).unwrap();
    let ab = update(
        Some(&ab),
        ({
            let mut o = ab.clone();
            o["data"]["z"] = json!("2");
            o
        })
        .clone(),
        "editor",
        "v1",
        None,
        T1,
        &configmaps(),
    );
    assert_eq!(fields_of(&ab, "editor"), json!({"f:data": {"f:z": {}}}));
    assert_eq!(
        fields_of(&ab, "a"),
        json!({"f:data": {"f:x": {}, "f:y": {}}})
    );
    // a drops x (nobody else owns it: removed), y (b owns it: kept), z (editor owns it: kept).
    let dropped = cm_apply(Some(&ab), Value::Null, "a", false, T2).unwrap();
    assert_eq!(dropped["data"], json!({"y": "1", "z": "2"}));
    assert_eq!(managers(&dropped), ["b", "editor"]);
}

fn pod_spec_config(containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"template": {"spec": {"containers": containers}}}})
}

fn deploy_apply(live: Option<&Value>, config: &Value, manager: &str) -> Value {
    apply(
        live,
        config,
        manager,
        "apps/v1",
        None,
        false,
        T0,
        &deployments(),
    )
    .unwrap()
}

#[test]
fn list_maps_merge_by_key_and_keep_the_live_order() {
    let a = deploy_apply(
        None,
        &pod_spec_config(json!([
            {"name": "app", "image": "app:1",
             "ports": [{"containerPort": 53, "protocol": "UDP"}]},
        ])),
        "a",
    );
    // b adds a sidecar before app and a TCP port with the same number to app.
    let b = deploy_apply(
        Some(&a),
        &pod_spec_config(json!([
            {"name": "sidecar", "image": "s:1"},
            {"name": "app", "ports": [{"containerPort": 53}]},
        ])),
        "b",
    );
    assert_eq!(
        b["spec"]["template"]["spec"]["containers"],
        json!([
            {"name": "sidecar", "image": "s:1"},
            {"name": "app", "image": "app:1",
             "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}]},
        ])
    );
    assert_eq!(
        fields_of(&b, "b")["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({
            "k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:ports": {
                "k:{\"containerPort\":53,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
            }},
            "k:{\"name\":\"sidecar\"}": {".": {}, "f:image": {}, "f:name": {}}
        })
    );
    // b drops the sidecar: gone; app stays (a owns it).
    let b2 = deploy_apply(
        Some(&b),
        &pod_spec_config(json!([{"name": "app", "ports": [{"containerPort": 53}]}])),
        "b",
    );
    assert_eq!(
        b2["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "app:1",
                "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}]}])
    );
}

#[test]
fn list_merge_order_follows_upstream() {
    // Live [a b c], applied [c x a]: shared items keep the applied order among themselves,
    // new ones go where the applied list puts them.
    let live = deploy_apply(
        None,
        &pod_spec_config(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
        "m1",
    );
    let out = deploy_apply(
        Some(&live),
        &pod_spec_config(json!([{"name": "c"}, {"name": "x"}, {"name": "a"}])),
        "m2",
    );
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "c", "x", "a"]);
}

#[test]
fn sets_merge_by_value_and_atomic_lists_replace() {
    let cfg = |finalizers: Value, args: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "d", "finalizers": finalizers},
               "spec": {"template": {"spec": {"containers": [{"name": "c", "args": args}]}}}})
    };
    let a = deploy_apply(None, &cfg(json!(["x/a"]), json!(["--a"])), "a");
    let b = deploy_apply(Some(&a), &cfg(json!(["x/b"]), json!(["--a"])), "b");
    assert_eq!(b["metadata"]["finalizers"], json!(["x/a", "x/b"]));
    assert_eq!(
        fields_of(&b, "b")["f:metadata"],
        json!({"f:finalizers": {"v:\"x/b\"": {}}})
    );
    // The atomic list is one field: same value shared, a different one conflicts as a whole.
    let c = fields_of(&b, "b")["f:spec"]["f:template"]["f:spec"]["f:containers"].clone();
    assert_eq!(c["k:{\"name\":\"c\"}"]["f:args"], json!({}));
    let err = apply(
        Some(&b),
        &cfg(json!([]), json!(["--b"])),
        "c",
        "apps/v1",
        None,
        false,
        T1,
        &deployments(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n\
         - .spec.template.spec.containers[name=\"c\"].args\n\
         conflicts with \"b\":\n\
         - .spec.template.spec.containers[name=\"c\"].args"
    );
    let forced = apply(
        Some(&b),
        &cfg(json!([]), json!(["--b"])),
        "c",
        "apps/v1",
        None,
        true,
        T1,
        &deployments(),
    )
    .unwrap();
    assert_eq!(
        forced["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["--b"])
    );
    // b drops its finalizer: removed, a's stays.
    let dropped = deploy_apply(Some(&b), &cfg(json!([]), json!(["--a"])), "b");
    assert_eq!(dropped["metadata"]["finalizers"], json!(["x/a"]));
}

#[test]
fn update_moves_changed_fields_and_drops_removed_ones() {
    let types = configmaps();
    let v1 = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c", "uid": "u"}, "data": {"x": "1", "y": "1"}});
    let created = update(None, v1.clone(), "creator", "v1", None, T0, &types);
    assert_eq!(
        fields_of(&created, "creator"),
        json!({"f:data": {".": {}, "f:x": {}, "f:y": {}}})
    );
    // The client resends managedFields unchanged (as kubectl edit does): they are kept.
    let mut v2 = created.clone();
    v2["data"] = json!({"x": "2"});
    let edited = update(
        Some(&created),
        v2.clone(),
        "kubectl-edit",
        "v1",
        None,
        T1,
        &types,
    );
    // The map itself stays the creator's; a member without members below is written `{}`.
    assert_eq!(fields_of(&edited, "creator"), json!({"f:data": {}}));
    assert_eq!(
        fields_of(&edited, "kubectl-edit"),
        json!({"f:data": {"f:x": {}}})
    );
    // A client that sends no managedFields (or null, or invalid ones) does not strip them.
    for sent in [Value::Null, json!([{"manager": "x", "operation": "Nope"}])] {
        let mut v3 = strip(edited.clone());
        v3["metadata"]["managedFields"] = sent;
        v3["data"]["x"] = json!("3");
        let out = update(
            Some(&edited),
            v3.clone(),
            "kubectl-edit",
            "v1",
            None,
            T2,
            &types,
        );
        assert_eq!(managers(&out), ["creator", "kubectl-edit"]);
        assert_eq!(entry_of(&out, "kubectl-edit").unwrap()["time"], T2);
    }
    // [] and [{}] clear them, and the object stays untracked afterwards.
    for reset in [json!([]), json!([{}])] {
        let mut v4 = edited.clone();
        v4["metadata"]["managedFields"] = reset;
        v4["data"]["x"] = json!("5");
        let cleared = update(Some(&edited), v4.clone(), "m", "v1", None, T2, &types);
        assert_eq!(cleared["metadata"].get("managedFields"), None);
        let mut v5 = cleared.clone();
        v5["data"]["x"] = json!("4");
        let untracked = update(Some(&cleared), v5.clone(), "m", "v1", None, T2, &types);
        assert_eq!(untracked["metadata"].get("managedFields"), None);
    }
    // Through a subresource the request's managedFields are ignored.
    let mut v6 = edited.clone();
    v6["metadata"]["managedFields"] = json!([]);
    let sub = update(
        Some(&edited),
        v6.clone(),
        "m",
        "v1",
        Some("status"),
        T2,
        &types,
    );
    assert_eq!(managers(&sub), ["creator", "kubectl-edit"]);
    // An update that changes nothing keeps the entries and their times.
    let same = update(
        Some(&edited),
        edited.clone(),
        "other",
        "v1",
        None,
        T2,
        &types,
    );
    assert_eq!(same, edited);
}

#[test]
fn status_is_not_owned_through_the_main_resource_and_spec_not_through_status() {
    let types = deployments();
    let mut d = created_deployment();
    d["status"] = json!({"replicas": 1});
    let created = update(None, d.clone(), "m", "apps/v1", None, T0, &types);
    assert_eq!(fields_of(&created, "m").get("f:status"), None);
    let mut s = created.clone();
    s["status"]["replicas"] = json!(2);
    s["spec"]["replicas"] = json!(5);
    let out = update(
        Some(&created),
        s.clone(),
        "kcm",
        "apps/v1",
        Some("status"),
        T1,
        &types,
    );
    let e = entry_of(&out, "kcm").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
}

#[test]
fn update_entries_past_ten_merge_into_ancient_changes() {
    let types = configmaps();
    let mut obj = update(
        None,
        (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"k0": "v"}}))
        .clone(),
        "m00",
        "v1",
        None,
        "2026-01-01T00:00:00Z",
        &types,
    );
    for i in 1..=11 {
        let mut next = obj.clone();
        next["data"][format!("k{i}")] = json!("v");
        obj = update(
            Some(&obj),
            next.clone(),
            &format!("m{i:02}"),
            "v1",
            None,
            &format!("2026-01-01T00:00:{i:02}Z"),
            &types,
        );
    }
    let ms = managers(&obj);
    assert_eq!(ms.len(), 10, "{ms:?}");
    assert_eq!(ms[0], "ancient-changes");
    let ancient = entry_of(&obj, "ancient-changes").unwrap();
    assert_eq!(
        ancient["fieldsV1"],
        json!({"f:data": {".": {}, "f:k0": {}, "f:k1": {}, "f:k2": {}}})
    );
    assert_eq!(ancient["time"], "2026-01-01T00:00:02Z");
}

#[test]
fn first_apply_to_an_unmanaged_object_records_before_first_apply() {
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "c", "uid": "u"}, "data": {"x": "1"}});
    let err = cm_apply(Some(&live), json!({"x": "2"}), "ssa", false, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.x"
    );
    let ok = cm_apply(Some(&live), json!({"y": "2"}), "ssa", false, T1).unwrap();
    assert_eq!(managers(&ok), ["ssa", "before-first-apply"]);
    assert_eq!(
        fields_of(&ok, "before-first-apply"),
        json!({"f:data": {".": {}, "f:x": {}}})
    );
}

#[test]
fn bad_apply_requests() {
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c", "managedFields": []}}),
            400,
            "metadata.managedFields must be nil",
        ),
        (
            json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            400,
            "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1",
        ),
    ];
    for (config, code, msg) in cases {
        let err = apply(None, &config, "m", "v1", None, false, T0, &configmaps()).unwrap_err();
        assert_eq!((err.status_code(), err.to_string().as_str()), (code, msg));
    }
    let dup = pod_spec_config(json!([{"name": "a"}, {"name": "a"}]));
    let err = apply(None, &dup, "m", "apps/v1", None, false, T0, &deployments()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to create typed patch object (apps/v1, Kind=Deployment): \
         .spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
    );
    let nokey = pod_spec_config(json!([{"image": "a"}]));
    let err = apply(
        None,
        &nokey,
        "m",
        "apps/v1",
        None,
        false,
        T0,
        &deployments(),
    )
    .unwrap_err();
    assert_eq!(err.status_code(), 500);
}

#[test]
fn custom_resources_follow_their_schema_or_deduce() {
    let schema: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps =
        serde_json::from_value(json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "hosts": {"type": "array", "x-kubernetes-list-type": "set",
                          "items": {"type": "string"}},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                "size": {"type": "integer"}
            }}}
        }))
        .unwrap();
    let types = CrdTypes::new(schema);
    let config = json!({"apiVersion": "x.io/v1", "kind": "W", "metadata": {"name": "w"},
                        "spec": {"hosts": ["a"], "tags": {"t": "1"}, "size": 1}});
    let out = apply(None, &config, "m", "x.io/v1", None, false, T0, &types).unwrap();
    assert_eq!(
        fields_of(&out, "m"),
        json!({"f:spec": {"f:hosts": {"v:\"a\"": {}}, "f:size": {},
                          "f:tags": {"f:t": {}}}})
    );
    // Without a schema every map entry is a member of its own, as upstream's deduced type.
    let out = apply(
        None,
        &config,
        "m",
        "x.io/v1",
        None,
        false,
        T0,
        &DeducedTypes,
    )
    .unwrap();
    assert_eq!(
        fields_of(&out, "m"),
        json!({"f:spec": {".": {}, "f:hosts": {}, "f:size": {},
                          "f:tags": {".": {}, "f:t": {}}}})
    );
}

#[test]
fn default_manager_is_the_user_agent_prefix() {
    for (ua, want) in [
        ("kubectl/v1.33.0 (linux/amd64) kubernetes/abc", "kubectl"),
        ("kube-controller-manager/v1.33.0", "kube-controller-manager"),
        ("plain", "plain"),
        ("", ""),
        ("bad\u{7}agent/1", "badagent"),
    ] {
        assert_eq!(default_manager(ua), want);
    }
    assert_eq!(default_manager(&"a".repeat(200)).len(), 128);
}

#[test]
fn managed_fields_validation() {
    let obj = json!({"metadata": {"managedFields": [
        {"manager": "ok", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1"},
        {"manager": "bad\u{1}", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV2"},
    ]}});
    let errs: Vec<String> = validate_managed_fields(&obj)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        [
            "metadata.managedFields[1].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
            "metadata.managedFields[1].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
            "metadata.managedFields[1].manager: Invalid value: \"bad\\u{1}\": invalid character U+0001 (at position 3)",
        ]
    );
}

#[test]
fn managed_fields_round_trip_and_sort() {
    let list = json!([
        {"manager": "z", "operation": "Update", "apiVersion": "v1", "time": T0,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
        {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": T0,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}, "subresource": "status"},
        {"manager": "y", "operation": "Apply", "apiVersion": "v1", "time": T1,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:c": {}}}},
    ]);
    let m = ManagedFields::decode(&list).unwrap();
    let encoded = m.encode();
    let order: Vec<&str> = encoded
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["y", "b", "z"]);
    assert_eq!(ManagedFields::decode(&encoded).unwrap(), {
        let mut sorted = m.clone();
        sorted.entries.sort_by_key(|e| e.manager != "y");
        ManagedFields::decode(&sorted.encode()).unwrap()
    });
    for bad in [
        json!([{"manager": "m", "operation": "Nope", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
        json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1"}]),
        json!([{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1"}]),
        json!([{"manager": "m", "operation": "Apply", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"q:x": {}}}]),
    ] {
        assert!(ManagedFields::decode(&bad).is_err(), "{bad}");
    }
}
