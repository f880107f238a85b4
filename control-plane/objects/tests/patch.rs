//! Patch cases: strategic merge patch modelled on upstream's `patch_test.go` tables (written
//! against real kinds here), kubectl's actual payloads, and RFC 7386 / RFC 6902 examples with
//! kube-apiserver's quirks and messages.

use objects::GroupKind;
use objects::patch::{
    PatchError, json_merge, json_patch, meta, strategic_merge, validate_merge_patch,
};
use serde_json::{Value, json};

const POD: GroupKind<'static> = GroupKind::core("Pod");
const DEPLOYMENT: GroupKind<'static> = GroupKind::new("apps", "Deployment");

/// One strategic merge patch case: the object, the patch, and the expected object or error text.
struct Case {
    name: &'static str,
    kind: GroupKind<'static>,
    original: Value,
    patch: Value,
    want: Result<Value, (u16, &'static str)>,
}

fn ok(
    name: &'static str,
    kind: GroupKind<'static>,
    original: Value,
    patch: Value,
    want: Value,
) -> Case {
    Case {
        name,
        kind,
        original,
        patch,
        want: Ok(want),
    }
}

fn err(
    name: &'static str,
    kind: GroupKind<'static>,
    original: Value,
    patch: Value,
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        name,
        kind,
        original,
        patch,
        want: Err((status, message)),
    }
}

fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let got = strategic_merge(case.kind, &case.original, &case.patch);
        match (&got, &case.want) {
            (Ok(got), Ok(want)) if got == want => {}
            (Err(e), Err((status, message)))
                if e.to_string().contains(message) && e.status_code() == *status => {}
            _ => failures.push(format!(
                "{}:\n  got  {:?}\n  want {:?}",
                case.name,
                got.map_err(|e| (e.status_code(), e.to_string())),
                case.want
            )),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A pod spec with the given containers.
fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn containers(list: Value) -> Value {
    pod(json!({ "containers": list }))
}

fn finalizers(list: Value) -> Value {
    json!({"metadata": {"name": "p", "finalizers": list}})
}

#[test]
fn maps_and_nulls() {
    run(vec![
        ok(
            "add a label",
            POD,
            json!({"metadata": {"name": "p", "labels": {"x": "y"}}}),
            json!({"metadata": {"labels": {"a": "b"}}}),
            json!({"metadata": {"name": "p", "labels": {"x": "y", "a": "b"}}}),
        ),
        ok(
            "null deletes a label",
            POD,
            json!({"metadata": {"name": "p", "labels": {"x": "y", "a": "b"}}}),
            json!({"metadata": {"labels": {"x": null}}}),
            json!({"metadata": {"name": "p", "labels": {"a": "b"}}}),
        ),
        ok(
            "null for an absent field is dropped",
            POD,
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"labels": null, "annotations": {"a": null, "b": "c"}}}),
            json!({"metadata": {"name": "p", "annotations": {"b": "c"}}}),
        ),
        ok(
            "delete all fields of a map",
            POD,
            json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"a": null, "b": null}}}),
            json!({"metadata": {"name": "p", "labels": {}}}),
        ),
        ok(
            "a scalar replaces a map and a map replaces a scalar",
            GroupKind::core("ConfigMap"),
            json!({"data": {"a": "1"}, "x": "s"}),
            json!({"data": "flat", "x": {"$patch": "delete"}, "y": {"k": "v"}}),
            json!({"data": "flat", "y": {"k": "v"}}),
        ),
        ok(
            "null patch changes nothing",
            POD,
            json!({"metadata": {"name": "p"}}),
            Value::Null,
            json!({"metadata": {"name": "p"}}),
        ),
        ok(
            "empty patch changes nothing",
            POD,
            json!({"metadata": {"name": "p"}}),
            json!({}),
            json!({"metadata": {"name": "p"}}),
        ),
    ]);
}

#[test]
fn map_directives() {
    run(vec![
        ok(
            "$patch: replace replaces a map",
            POD,
            json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            json!({"metadata": {"name": "p", "labels": {"c": "3"}}}),
        ),
        ok(
            "$patch: delete empties a map",
            POD,
            json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            json!({"metadata": {"name": "p", "labels": {}}}),
        ),
        ok(
            "$patch: replace at the top replaces the object",
            GroupKind::core("ConfigMap"),
            json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
            json!({"$patch": "replace", "metadata": {"name": "c"}}),
            json!({"metadata": {"name": "c"}}),
        ),
        ok(
            "a map holding $patch where the original has nothing is dropped",
            POD,
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"labels": {"$patch": "replace", "a": "1"}}}),
            json!({"metadata": {"name": "p"}}),
        ),
        err(
            "$patch: merge is not accepted in a map",
            POD,
            json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"$patch": "merge"}}}),
            500,
            "unknown patch type: merge in map: map[$patch:merge]",
        ),
        err(
            "unknown directive in a map",
            POD,
            json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"$patch": 1}}}),
            500,
            "unknown patch type: %!s(int64=1) in map: map[$patch:1]",
        ),
        ok(
            "replace strategy (PodDisruptionBudget selector) replaces without merging",
            GroupKind::new("policy", "PodDisruptionBudget"),
            json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}),
            json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
            json!({"spec": {"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}}),
        ),
    ]);
}

#[test]
fn merging_lists_of_maps() {
    run(vec![
        ok(
            "containers merge by name",
            POD,
            containers(json!([
                {"name": "a", "image": "a:1", "args": ["x"]},
                {"name": "b", "image": "b:1"}
            ])),
            json!({"spec": {"containers": [{"name": "a", "image": "a:2"}]}}),
            containers(json!([
                {"name": "a", "image": "a:2", "args": ["x"]},
                {"name": "b", "image": "b:1"}
            ])),
        ),
        ok(
            "env merges by name inside a container",
            POD,
            containers(json!([{"name": "a", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
            ]}])),
            json!({"spec": {"containers": [{"name": "a", "env": [
                {"name": "B", "value": "3"}
            ]}]}}),
            containers(json!([{"name": "a", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "value": "3"}
            ]}])),
        ),
        ok(
            "an added container goes first when nothing orders it (upstream's order)",
            POD,
            containers(json!([{"name": "a"}, {"name": "b"}])),
            json!({"spec": {"containers": [{"name": "c", "image": "c"}]}}),
            containers(json!([{"name": "c", "image": "c"}, {"name": "a"}, {"name": "b"}])),
        ),
        ok(
            "$patch: delete removes a container",
            POD,
            containers(json!([{"name": "a"}, {"name": "b"}])),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
            containers(json!([{"name": "b"}])),
        ),
        ok(
            "$patch: delete removes every duplicate",
            POD,
            containers(json!([{"name": "a"}, {"name": "a"}, {"name": "b", "image": "x"}])),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
            containers(json!([{"name": "b", "image": "x"}])),
        ),
        ok(
            "deleting the only copy of duplicates leaves the rest in order",
            POD,
            containers(json!([
                {"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"},
                {"name": "3"}, {"name": "3"}
            ])),
            json!({"spec": {"containers": [
                {"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}
            ]}}),
            containers(json!([{"name": "2", "image": "a"}])),
        ),
        err(
            "$patch: delete without the merge key",
            POD,
            containers(json!([{"name": "a"}])),
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
            500,
            "map: map[$patch:delete] does not contain declared merge key: name",
        ),
        err(
            "an element without the merge key",
            POD,
            containers(json!([{"name": "a", "image": "x"}])),
            json!({"spec": {"containers": [{"image": "y"}]}}),
            500,
            "map: map[image:y] does not contain declared merge key: name",
        ),
        ok(
            "$patch: replace replaces a merging list",
            POD,
            containers(json!([{"name": "a"}, {"name": "b"}])),
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "n", "image": "i"}]}}),
            containers(json!([{"name": "n", "image": "i"}])),
        ),
        ok(
            "$patch: replace alone empties a merging list",
            POD,
            pod(json!({"containers": [{"name": "a"}], "imagePullSecrets": [{"name": "s"}]})),
            json!({"spec": {"imagePullSecrets": [{"$patch": "replace"}]}}),
            pod(json!({"containers": [{"name": "a"}], "imagePullSecrets": []})),
        ),
        err(
            "$patch: merge in a list",
            POD,
            containers(json!([{"name": "a"}])),
            json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}}),
            500,
            "merging lists cannot yet be specified in the patch",
        ),
        err(
            "unknown directive in a list",
            POD,
            containers(json!([{"name": "a"}])),
            json!({"spec": {"containers": [{"$patch": "frob", "name": "a"}]}}),
            500,
            "unknown patch type: frob in map: map[$patch:frob name:a]",
        ),
        ok(
            "preserve the order from the patch",
            POD,
            containers(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])),
            json!({"spec": {"containers": [
                {"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2", "args": ["x"]}
            ]}}),
            containers(json!([
                {"name": "3", "image": "c"}, {"name": "1", "image": "a"},
                {"name": "2", "image": "b", "args": ["x"]}
            ])),
        ),
        ok(
            "preserve the order from the patch, server-only elements first where unordered",
            POD,
            containers(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])),
            json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
            containers(json!([
                {"name": "2", "image": "b"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}
            ])),
        ),
        ok(
            "elements with directives are dropped from a list the original lacks",
            POD,
            containers(json!([{"name": "a"}])),
            json!({"spec": {"initContainers": [
                {"name": "x", "$patch": "delete"}, {"name": "y", "image": "i", "args": null}
            ]}}),
            pod(
                json!({"containers": [{"name": "a"}], "initContainers": [{"name": "y", "image": "i"}]}),
            ),
        ),
        ok(
            "container ports merge by containerPort",
            POD,
            containers(json!([{"name": "a", "ports": [
                {"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}
            ]}])),
            json!({"spec": {"containers": [{"name": "a", "ports": [
                {"containerPort": 80, "name": "http"}
            ]}]}}),
            containers(json!([{"name": "a", "ports": [
                {"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}
            ]}])),
        ),
        ok(
            "volumeMounts merge by mountPath",
            POD,
            containers(json!([{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/a"}]}])),
            json!({"spec": {"containers": [{"name": "a", "volumeMounts": [
                {"mountPath": "/a", "readOnly": true}
            ]}]}}),
            containers(json!([{"name": "a", "volumeMounts": [
                {"name": "v", "mountPath": "/a", "readOnly": true}
            ]}])),
        ),
        ok(
            "Service ports merge by port",
            GroupKind::core("Service"),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
        ),
        ok(
            "ownerReferences merge by uid",
            GroupKind::core("ConfigMap"),
            json!({"metadata": {"ownerReferences": [{"uid": "1", "kind": "A"}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "1", "controller": true}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "1", "kind": "A", "controller": true}]}}),
        ),
        ok(
            "Node status conditions merge by type",
            GroupKind::core("Node"),
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}
            ], "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "n1"}]}}),
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}
            ], "addresses": [
                {"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.1"}
            ]}}),
        ),
        ok(
            "Deployment conditions merge by type",
            DEPLOYMENT,
            json!({"status": {"conditions": [{"type": "Available", "status": "False"}]}}),
            json!({"status": {"conditions": [{"type": "Available", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "Available", "status": "True"}]}}),
        ),
        ok(
            "CronJob job template containers merge by name",
            GroupKind::new("batch", "CronJob"),
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "a", "command": ["x"]}
            ]}}}}}}),
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "b"}
            ]}}}}}}),
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "b", "command": ["x"]}
            ]}}}}}}),
        ),
    ]);
}

#[test]
fn lists_without_a_merge_strategy_are_replaced() {
    run(vec![
        ok(
            "tolerations are replaced",
            POD,
            pod(json!({"tolerations": [{"key": "a"}, {"key": "b"}]})),
            json!({"spec": {"tolerations": [{"key": "c"}]}}),
            pod(json!({"tolerations": [{"key": "c"}]})),
        ),
        ok(
            "container args are replaced",
            POD,
            containers(json!([{"name": "a", "args": ["1", "2"]}])),
            json!({"spec": {"containers": [{"name": "a", "args": ["3"]}]}}),
            containers(json!([{"name": "a", "args": ["3"]}])),
        ),
        ok(
            "directive keys in a replaced list are stripped, as typed decoding drops them",
            POD,
            pod(json!({"tolerations": [{"key": "a"}]})),
            json!({"spec": {"tolerations": [{"key": "c", "$patch": "delete"}]}}),
            pod(json!({"tolerations": [{"key": "c"}]})),
        ),
        ok(
            "Endpoints subsets are replaced",
            GroupKind::core("Endpoints"),
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}),
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]}),
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]}),
        ),
    ]);
}

#[test]
fn primitive_lists() {
    run(vec![
        ok(
            "unique scalars when merging",
            POD,
            finalizers(json!(["1", "2"])),
            json!({"metadata": {"finalizers": ["2", "3"]}}),
            finalizers(json!(["1", "2", "3"])),
        ),
        ok(
            "an added finalizer goes first (upstream's order)",
            POD,
            finalizers(json!(["a", "b"])),
            json!({"metadata": {"finalizers": ["c"]}}),
            finalizers(json!(["c", "a", "b"])),
        ),
        ok(
            "preserve the order from the patch in a merging scalar list",
            POD,
            finalizers(json!(["1", "2", "3"])),
            json!({"metadata": {"finalizers": ["3", "1"]}}),
            finalizers(json!(["2", "3", "1"])),
        ),
        ok(
            "$deleteFromPrimitiveList removes finalizers",
            POD,
            finalizers(json!(["a", "b", "c", "b"])),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            finalizers(json!(["a", "c"])),
        ),
        ok(
            "$deleteFromPrimitiveList on an absent list changes nothing",
            POD,
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            json!({"metadata": {"name": "p"}}),
        ),
        ok(
            "$deleteFromPrimitiveList works on lists without a merge strategy too",
            POD,
            containers(json!([{"name": "a", "args": ["--debug", "--other"]}])),
            json!({"spec": {"containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["--debug"]}]}}),
            containers(json!([{"name": "a", "args": ["--other"]}])),
        ),
        ok(
            "add and delete in one patch",
            POD,
            finalizers(json!(["1", "2", "3"])),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["1", "2", "4"],
                "$deleteFromPrimitiveList/finalizers": ["3"],
                "finalizers": ["4"]
            }}),
            finalizers(json!(["1", "2", "4"])),
        ),
        ok(
            "delete items while others stay (three-way result)",
            POD,
            finalizers(json!(["1", "2", "3", "4"])),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["1", "2"],
                "$deleteFromPrimitiveList/finalizers": ["3"]
            }}),
            finalizers(json!(["1", "2", "4"])),
        ),
        err(
            "a deletion list key without a field",
            POD,
            finalizers(json!(["a"])),
            json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
            400,
            "invalid patch format of primitive list",
        ),
        ok(
            "Node podCIDRs merge as a set",
            GroupKind::core("Node"),
            json!({"spec": {"podCIDRs": ["10.0.0.0/24"]}}),
            json!({"spec": {"podCIDRs": ["10.0.0.0/24", "fd00::/64"]}}),
            json!({"spec": {"podCIDRs": ["10.0.0.0/24", "fd00::/64"]}}),
        ),
        err(
            "lists of lists",
            POD,
            finalizers(json!(["a"])),
            json!({"metadata": {"finalizers": [["b"]]}}),
            422,
            "lists of lists are not supported",
        ),
        err(
            "mixed element types",
            POD,
            finalizers(json!(["a"])),
            json!({"metadata": {"finalizers": [{"b": 1}]}}),
            500,
            "list element types are not identical: [[a] [map[b:1]]]",
        ),
    ]);
}

#[test]
fn set_element_order() {
    run(vec![
        ok(
            "reorders containers without changing them",
            POD,
            containers(json!([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
            containers(json!([{"name": "b", "image": "2"}, {"name": "a", "image": "1"}])),
        ),
        ok(
            "places an added element where the order says",
            POD,
            containers(json!([{"name": "1"}, {"name": "2", "image": "v"}])),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
                "containers": [{"name": "4", "image": "4"}, {"name": "3", "image": "3"}]
            }}),
            containers(json!([
                {"name": "4", "image": "4"}, {"name": "1"}, {"name": "2", "image": "v"},
                {"name": "3", "image": "3"}
            ])),
        ),
        ok(
            "an order naming elements that do not exist",
            POD,
            containers(json!([{"name": "1"}, {"name": "3"}])),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
                "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]
            }}),
            containers(json!([{"name": "3", "image": "3"}, {"name": "1", "image": "1"}])),
        ),
        ok(
            "orders a scalar list",
            POD,
            finalizers(json!(["1", "3"])),
            json!({"metadata": {"$setElementOrder/finalizers": ["3", "2", "1"]}}),
            finalizers(json!(["3", "1"])),
        ),
        ok(
            "a server-only element goes before the first ordered one it preceded live",
            POD,
            containers(json!([{"name": "a"}, {"name": "server"}, {"name": "b"}])),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
            containers(json!([{"name": "server"}, {"name": "b"}, {"name": "a"}])),
        ),
        ok(
            "server-only elements stay after the ordered element they followed live",
            POD,
            containers(json!([
                {"name": "1", "workingDir": "a"}, {"name": "2", "image": "2"}, {"name": "9"},
                {"name": "3", "image": "3"}, {"name": "4", "image": "4"}
            ])),
            json!({"spec": {"$setElementOrder/containers": [
                {"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}
            ]}}),
            containers(json!([
                {"name": "2", "image": "2"}, {"name": "1", "workingDir": "a"}, {"name": "9"},
                {"name": "4", "image": "4"}, {"name": "3", "image": "3"}
            ])),
        ),
        ok(
            "several server-only elements in a row",
            POD,
            containers(json!([
                {"name": "1", "workingDir": "a"}, {"name": "2", "image": "2"}, {"name": "7"},
                {"name": "9"}, {"name": "8"}, {"name": "3", "image": "3"}, {"name": "4", "image": "4"}
            ])),
            json!({"spec": {"$setElementOrder/containers": [
                {"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}
            ]}}),
            containers(json!([
                {"name": "2", "image": "2"}, {"name": "1", "workingDir": "a"}, {"name": "7"},
                {"name": "9"}, {"name": "8"}, {"name": "4", "image": "4"}, {"name": "3", "image": "3"}
            ])),
        ),
        ok(
            "duplicates of a merge key stay together where the order first names them",
            POD,
            containers(json!([
                {"name": "1"}, {"name": "2", "image": "dup1"}, {"name": "3"},
                {"name": "2", "image": "dup2"}, {"name": "4"}
            ])),
            json!({"spec": {"$setElementOrder/containers": [
                {"name": "2"}, {"name": "1"}, {"name": "4"}, {"name": "3"}, {"name": "2"}
            ]}}),
            containers(json!([
                {"name": "2", "image": "dup1"}, {"name": "2", "image": "dup2"}, {"name": "1"},
                {"name": "4"}, {"name": "3"}
            ])),
        ),
        ok(
            "adding an element the live object already has merges it",
            POD,
            containers(json!([
                {"name": "1", "image": "a", "workingDir": "x"}, {"name": "2"}, {"name": "3"}
            ])),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
                "containers": [{"name": "3"}]
            }}),
            containers(json!([
                {"name": "1", "image": "a", "workingDir": "x"}, {"name": "2"}, {"name": "3"}
            ])),
        ),
        ok(
            "an ordered list the original lacks keeps only real elements",
            POD,
            pod(json!({"containers": [{"name": "c"}]})),
            json!({"spec": {"initContainers": [
                {"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}
            ]}}),
            pod(json!({"containers": [{"name": "c"}], "initContainers": [{"name": "hello"}]})),
        ),
        ok(
            "an ordered element absent live goes before server-only ones",
            POD,
            pod(json!({"initContainers": [{"name": "hello2"}]})),
            json!({"spec": {
                "$setElementOrder/initContainers": [{"name": "hello"}, {"name": "doesntexist"}],
                "initContainers": [{"name": "hello"}]
            }}),
            pod(json!({"initContainers": [{"name": "hello"}, {"name": "hello2"}]})),
        ),
        err(
            "the patch list must follow the order",
            POD,
            containers(json!([{"name": "1"}, {"name": "3"}, {"name": "2"}])),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
                "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]
            }}),
            500,
            "doesn't match $setElementOrder list",
        ),
        err(
            "the scalar patch list must follow the order",
            POD,
            finalizers(json!(["1", "3", "2"])),
            json!({"metadata": {"$setElementOrder/finalizers": ["1", "2", "3"], "finalizers": ["3", "1"]}}),
            500,
            "The order in patch list:\n[3 1]\n doesn't match $setElementOrder list:\n[1 2 3]\n",
        ),
        err(
            "the order must be a list",
            POD,
            containers(json!([{"name": "a"}])),
            json!({"spec": {"$setElementOrder/containers": "a"}}),
            500,
            "expected a []interface {}, but received a string",
        ),
        err(
            "an order key without a field",
            POD,
            containers(json!([{"name": "a"}])),
            json!({"spec": {"$setElementOrder": [{"name": "a"}]}}),
            400,
            "invalid patch format of setElementOrder list",
        ),
    ]);
}

#[test]
fn retain_keys() {
    run(vec![
        ok(
            "$retainKeys swaps a volume's source",
            POD,
            pod(
                json!({"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "secret": {"secretName": "s"}}]}),
            ),
            json!({"spec": {
                "$setElementOrder/volumes": [{"name": "v"}, {"name": "w"}],
                "volumes": [{"$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/x"}, "name": "v"}]
            }}),
            pod(
                json!({"volumes": [{"name": "v", "hostPath": {"path": "/x"}}, {"name": "w", "secret": {"secretName": "s"}}]}),
            ),
        ),
        ok(
            "$retainKeys switches a Deployment to Recreate",
            DEPLOYMENT,
            json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}}),
        ),
        ok(
            "a retainKeys field merges normally without the directive",
            DEPLOYMENT,
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": 0}}}}),
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}),
        ),
        ok(
            "nulls need not be retained",
            DEPLOYMENT,
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        ),
        err(
            "the patch may only set retained keys",
            DEPLOYMENT,
            json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
            400,
            "invalid patch format of retainKeys",
        ),
        err(
            "$retainKeys must be a list",
            DEPLOYMENT,
            json!({"spec": {"strategy": {"type": "RollingUpdate"}}}),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            400,
            "invalid patch format of retainKeys",
        ),
    ]);
}

#[test]
fn kubectl_payloads() {
    run(vec![
        ok(
            "kubectl label pod x a=b",
            POD,
            json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}}),
            json!({"metadata": {"labels": {"a": "b"}}}),
            json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}}),
        ),
        ok(
            "kubectl annotate pod x a-",
            POD,
            json!({"metadata": {"name": "x", "annotations": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"annotations": {"a": null}}}),
            json!({"metadata": {"name": "x", "annotations": {"b": "2"}}}),
        ),
        ok(
            "kubectl scale deploy/x --replicas=3",
            DEPLOYMENT,
            json!({"metadata": {"name": "x"}, "spec": {"replicas": 1}}),
            json!({"spec": {"replicas": 3}}),
            json!({"metadata": {"name": "x"}, "spec": {"replicas": 3}}),
        ),
        ok(
            "kubectl set image deploy/x c=img",
            DEPLOYMENT,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "old", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "s"}
            ]}}}}),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "sidecar"}],
                "containers": [{"image": "img", "name": "c"}]
            }}}}),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "img", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "s"}
            ]}}}}),
        ),
        ok(
            "kubectl apply three-way patch: env change and deletion, container added, label removed",
            DEPLOYMENT,
            json!({"metadata": {"name": "x", "labels": {"app": "x", "old": "y"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "nginx", "env": [
                    {"name": "A", "value": "1"}, {"name": "OLD", "value": "x"}
                ], "terminationMessagePath": "/dev/termination-log"}
            ]}}}}),
            json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"},
            "labels": {"old": null}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [
                    {"$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                     "env": [{"name": "B", "value": "2"}, {"$patch": "delete", "name": "OLD"}],
                     "name": "app"},
                    {"image": "busybox", "name": "sidecar"}
                ]}}}}),
            json!({"metadata": {"name": "x", "labels": {"app": "x"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "nginx", "env": [
                    {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
                ], "terminationMessagePath": "/dev/termination-log"},
                {"name": "sidecar", "image": "busybox"}
            ]}}}}),
        ),
        ok(
            "kubectl edit adding resources to a container",
            DEPLOYMENT,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "c"}],
                "containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}]
            }}}}),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}}}
            ]}}}}),
        ),
    ]);
}

#[test]
fn kinds_without_strategy_get_json_merge() {
    let kind = GroupKind::new("example.com", "Widget");
    assert!(!meta::supports_strategic(kind));
    run(vec![ok(
        "a custom resource's lists are replaced",
        kind,
        json!({"spec": {"items": [{"name": "a"}], "keep": 1}}),
        json!({"spec": {"items": [{"name": "b"}], "gone": null}}),
        json!({"spec": {"items": [{"name": "b"}], "keep": 1}}),
    )]);
}

#[test]
fn patches_that_are_not_objects() {
    for (patch, found) in [
        (json!([1]), "array"),
        (json!("x"), "string"),
        (json!(1), "number"),
    ] {
        let e = strategic_merge(POD, &json!({}), &patch).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "json: cannot unmarshal {found} into Go value of type map[string]interface {{}}"
            )
        );
        assert_eq!(e.status_code(), 400);
    }
}

#[test]
fn patch_metadata_covers_the_served_kinds() {
    use meta::Strategy::{Merge, Replace};
    let cases: &[(GroupKind<'_>, &[&str], meta::Strategy, bool)] = &[
        (POD, &["spec", "containers"], Merge(Some("name")), false),
        (POD, &["spec", "initContainers"], Merge(Some("name")), false),
        (
            POD,
            &["spec", "ephemeralContainers"],
            Merge(Some("name")),
            false,
        ),
        (
            POD,
            &["spec", "containers", "ports"],
            Merge(Some("containerPort")),
            false,
        ),
        (
            POD,
            &["spec", "containers", "env"],
            Merge(Some("name")),
            false,
        ),
        (
            POD,
            &["spec", "containers", "volumeMounts"],
            Merge(Some("mountPath")),
            false,
        ),
        (
            POD,
            &["spec", "containers", "volumeDevices"],
            Merge(Some("devicePath")),
            false,
        ),
        (POD, &["spec", "volumes"], Merge(Some("name")), true),
        (
            POD,
            &["spec", "imagePullSecrets"],
            Merge(Some("name")),
            false,
        ),
        (POD, &["spec", "hostAliases"], Merge(Some("ip")), false),
        (
            POD,
            &["spec", "topologySpreadConstraints"],
            Merge(Some("topologyKey")),
            false,
        ),
        (POD, &["spec", "resourceClaims"], Merge(Some("name")), true),
        (
            POD,
            &["spec", "schedulingGates"],
            Merge(Some("name")),
            false,
        ),
        (POD, &["status", "conditions"], Merge(Some("type")), false),
        (POD, &["status", "podIPs"], Merge(Some("ip")), false),
        (POD, &["metadata", "finalizers"], Merge(None), false),
        (
            POD,
            &["metadata", "ownerReferences"],
            Merge(Some("uid")),
            false,
        ),
        (
            POD,
            &[
                "spec",
                "volumes",
                "ephemeral",
                "volumeClaimTemplate",
                "metadata",
                "finalizers",
            ],
            Merge(None),
            false,
        ),
        (
            DEPLOYMENT,
            &["spec", "template", "spec", "containers", "env"],
            Merge(Some("name")),
            false,
        ),
        (
            DEPLOYMENT,
            &["spec", "strategy"],
            meta::Strategy::Default,
            true,
        ),
        (
            DEPLOYMENT,
            &["status", "conditions"],
            Merge(Some("type")),
            false,
        ),
        (
            GroupKind::new("batch", "CronJob"),
            &[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers",
            ],
            Merge(Some("name")),
            false,
        ),
        (
            GroupKind::core("Service"),
            &["spec", "ports"],
            Merge(Some("port")),
            false,
        ),
        (
            GroupKind::core("Node"),
            &["status", "addresses"],
            Merge(Some("type")),
            false,
        ),
        (
            GroupKind::core("ServiceAccount"),
            &["secrets"],
            Merge(Some("name")),
            false,
        ),
        (
            GroupKind::new("policy", "PodDisruptionBudget"),
            &["spec", "selector"],
            Replace,
            false,
        ),
        (
            GroupKind::new(
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
            ),
            &["webhooks", "matchConditions"],
            Merge(Some("name")),
            false,
        ),
        (
            GroupKind::new("storage.k8s.io", "CSINode"),
            &["spec", "drivers"],
            Merge(Some("name")),
            false,
        ),
        (
            GroupKind::new("resource.k8s.io", "ResourceClaim"),
            &["status", "reservedFor"],
            Merge(Some("uid")),
            false,
        ),
    ];
    for (kind, path, strategy, retain_keys) in cases {
        let field = meta::field_at(*kind, path).unwrap_or_else(|| panic!("{kind:?} {path:?}"));
        assert_eq!(field.strategy, *strategy, "{kind:?} {path:?}");
        assert_eq!(field.retain_keys, *retain_keys, "{kind:?} {path:?}");
    }
    for (kind, path) in [
        (POD, &["spec", "tolerations"][..]),
        (POD, &["spec", "readinessGates"][..]),
        (POD, &["status", "containerStatuses"][..]),
        (GroupKind::core("Endpoints"), &["subsets"][..]),
    ] {
        assert!(
            meta::field_at(kind, path).is_none(),
            "{path:?} has no strategy upstream"
        );
    }
    for kind in [
        GroupKind::core("ConfigMap"),
        GroupKind::core("Secret"),
        GroupKind::new("apps", "StatefulSet"),
        GroupKind::new("rbac.authorization.k8s.io", "ClusterRole"),
        GroupKind::new("apiextensions.k8s.io", "CustomResourceDefinition"),
    ] {
        assert!(meta::supports_strategic(kind), "{kind:?}");
    }
}

#[test]
fn json_merge_patch() {
    let cases = [
        // RFC 7386, appendix A.
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
        // kube-apiserver (evanphx/json-patch) also prunes nulls inside objects in new lists.
        (
            json!({}),
            json!({"a": [{"b": null, "c": 1}, null]}),
            json!({"a": [{"c": 1}, null]}),
        ),
        // Lists are replaced even where strategic merge would merge them.
        (
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}),
            json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}),
        ),
    ];
    for (original, patch, want) in cases {
        assert_eq!(json_merge(&original, &patch), want, "{original} + {patch}");
    }
    assert_eq!(validate_merge_patch(&json!({})), Ok(()));
    assert_eq!(validate_merge_patch(&json!([])), Ok(()));
    let e = validate_merge_patch(&json!(null)).unwrap_err();
    assert_eq!(
        (e.status_code(), e.to_string().as_str()),
        (400, "Invalid JSON Patch")
    );
    assert_eq!(
        validate_merge_patch(&json!("x")),
        Err(PatchError::InvalidMergePatch)
    );
}

#[test]
fn json_patch_operations() {
    let doc = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"list": [1, 2, 3]}});
    let cases = [
        (
            json!([{"op": "add", "path": "/metadata/labels/app~1name", "value": "v"}]),
            json!({"metadata": {"name": "x", "labels": {"a": "1", "app/name": "v"}}, "spec": {"list": [1, 2, 3]}}),
        ),
        (
            json!([{"op": "add", "path": "/spec/list/1", "value": 9}]),
            json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"list": [1, 9, 2, 3]}}),
        ),
        (
            json!([{"op": "add", "path": "/spec/list/-", "value": 4}]),
            json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"list": [1, 2, 3, 4]}}),
        ),
        (
            json!([{"op": "remove", "path": "/spec/list/-1"}]),
            json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"list": [1, 2]}}),
        ),
        (
            json!([{"op": "replace", "path": "/metadata/labels/a", "value": "2"}]),
            json!({"metadata": {"name": "x", "labels": {"a": "2"}}, "spec": {"list": [1, 2, 3]}}),
        ),
        (
            // Upstream quirk: replacing a missing member adds it.
            json!([{"op": "replace", "path": "/metadata/labels/b", "value": "2"}]),
            json!({"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}, "spec": {"list": [1, 2, 3]}}),
        ),
        (
            json!([{"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/b"}]),
            json!({"metadata": {"name": "x", "labels": {"b": "1"}}, "spec": {"list": [1, 2, 3]}}),
        ),
        (
            json!([{"op": "copy", "from": "/spec/list/0", "path": "/spec/first"}]),
            json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"list": [1, 2, 3], "first": 1}}),
        ),
        (
            json!([
                {"op": "test", "path": "/metadata/name", "value": "x"},
                {"op": "test", "path": "/metadata/missing", "value": null},
                {"op": "remove", "path": "/metadata/labels"}
            ]),
            json!({"metadata": {"name": "x"}, "spec": {"list": [1, 2, 3]}}),
        ),
        (
            json!([{"op": "replace", "path": "", "value": {"kind": "Other"}}]),
            json!({"kind": "Other"}),
        ),
        (Value::Null, doc.clone()),
        (json!([]), doc.clone()),
    ];
    for (patch, want) in cases {
        assert_eq!(json_patch(&doc, &patch), Ok(want), "{patch}");
    }

    let errors = [
        (
            json!({"op": "add"}),
            400,
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        ),
        (
            json!(["add"]),
            400,
            "json: cannot unmarshal string into Go value of type jsonpatch.Operation",
        ),
        (
            json!([{"op": "add", "path": "/nope/x", "value": 1}]),
            422,
            "add operation does not apply: doc is missing path: \"/nope/x\": missing value",
        ),
        (
            json!([{"op": "remove", "path": "/metadata/nope"}]),
            422,
            "error in remove for path: '/metadata/nope': Unable to remove nonexistent key: nope: missing value",
        ),
        (
            json!([{"op": "add", "path": "/spec/list/5", "value": 1}]),
            422,
            "error in add for path: '/spec/list/5': Unable to access invalid index: 5: invalid index referenced",
        ),
        (
            json!([{"op": "add", "path": "/spec/list/x", "value": 1}]),
            422,
            "error in add for path: '/spec/list/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        (
            json!([{"op": "replace", "path": "/spec/list/3", "value": 1}]),
            422,
            "replace operation does not apply: doc is missing key: /spec/list/3: missing value",
        ),
        (
            json!([{"op": "test", "path": "/metadata/name", "value": "y"}]),
            422,
            "testing value /metadata/name failed: test failed",
        ),
        (
            json!([{"op": "frob", "path": "/a"}]),
            422,
            "Unexpected kind: frob",
        ),
        (json!([{"path": "/a"}]), 422, "Unexpected kind: unknown"),
        (
            json!([{"op": "add", "value": 1}]),
            422,
            "add operation failed to decode path: missing value",
        ),
        (
            json!([{"op": "move", "path": "/a"}]),
            422,
            "move operation failed to decode from: operation, missing from field: missing value",
        ),
        (
            json!([{"op": "remove", "path": ""}]),
            422,
            "remove operation does not apply: doc is missing path: \"\": missing value",
        ),
    ];
    for (patch, status, message) in errors {
        let e = json_patch(&doc, &patch).unwrap_err();
        assert_eq!(
            (e.status_code(), e.to_string()),
            (status, message.to_owned()),
            "{patch}"
        );
    }

    let many = Value::Array(vec![
        json!({"op": "test", "path": "/metadata/name", "value": "x"});
        10_001
    ]);
    let e = json_patch(&doc, &many).unwrap_err();
    assert_eq!(e.status_code(), 413);
    assert_eq!(
        e.to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}
