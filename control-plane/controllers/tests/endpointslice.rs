//! EndpointSlice core scenarios: reconcile, assert the slices, apply the plan as the API server
//! would, and check that the next reconcile writes nothing.

use controllers::endpointslice::{
    self, CONTROLLER_NAME, MANAGED_BY_LABEL, Plan, SERVICE_NAME_LABEL,
};
use serde_json::{Value, json};

fn service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10",
            "ipFamilies": ["IPv4"],
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
        }
    })
}

fn pod(name: &str, ip: &str, ready: bool) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                     "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip,
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

#[derive(Default)]
struct Store {
    slices: Vec<Value>,
    next: usize,
}

impl Store {
    fn apply(&mut self, plan: &Plan) {
        self.slices.retain(|s| {
            !plan
                .delete
                .iter()
                .any(|n| s["metadata"]["name"] == json!(n))
        });
        for s in &plan.update {
            let i = self
                .slices
                .iter()
                .position(|x| x["metadata"]["name"] == s["metadata"]["name"]);
            self.slices[i.expect("updates name a stored slice")] = s.clone();
        }
        for s in &plan.create {
            let mut s = s.clone();
            self.next += 1;
            s["metadata"]["name"] = json!(format!("web-{}", self.next));
            self.slices.push(s);
        }
    }

    /// Reconciles, applies, and checks the second reconcile writes nothing.
    fn sync(&mut self, svc: &Value, pods: &[Value]) -> Plan {
        let plan = endpointslice::reconcile(svc, pods, &self.slices);
        self.apply(&plan);
        let again = endpointslice::reconcile(svc, pods, &self.slices);
        assert!(
            again.is_empty(),
            "second reconcile writes nothing: {again:#?}"
        );
        plan
    }

    fn endpoint_count(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .slices
            .iter()
            .map(|s| s["endpoints"].as_array().unwrap().len())
            .collect();
        v.sort();
        v
    }
}

fn endpoint<'a>(store: &'a Store, pod: &str) -> &'a Value {
    store
        .slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().unwrap())
        .find(|e| e["targetRef"]["name"] == pod)
        .unwrap_or_else(|| panic!("no endpoint for {pod}"))
}

#[test]
fn services_without_selector_or_external_name_are_left_alone() {
    let mut svc = service();
    svc["spec"].as_object_mut().unwrap().remove("selector");
    assert!(endpointslice::reconcile(&svc, &[pod("a", "10.0.0.1", true)], &[]).is_empty());
    let mut svc = service();
    svc["spec"]["type"] = json!("ExternalName");
    assert!(endpointslice::reconcile(&svc, &[pod("a", "10.0.0.1", true)], &[]).is_empty());
}

#[test]
fn creates_a_slice_with_resolved_ports_labels_and_owner() {
    let mut store = Store::default();
    let pods = vec![pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)];
    let plan = store.sync(&service(), &pods);
    assert_eq!(plan.create.len(), 1);
    let s = &plan.create[0];
    assert_eq!(s["metadata"]["generateName"], "web-");
    assert_eq!(
        s["metadata"]["labels"],
        json!({"team": "a", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME})
    );
    assert_eq!(
        s["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc-uid",
                "controller": true, "blockOwnerDeletion": true}])
    );
    assert_eq!(s["addressType"], "IPv4");
    assert_eq!(
        s["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        endpoint(&store, "a"),
        &json!({"addresses": ["10.0.0.1"],
                "conditions": {"ready": true, "serving": true, "terminating": false},
                "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"},
                "nodeName": "node-1"})
    );
}

#[test]
fn endpoint_conditions() {
    // (pod ready, pod terminating, publishNotReadyAddresses) -> (ready, serving, terminating)
    let cases = [
        ((true, false, false), (true, true, false)),
        ((false, false, false), (false, false, false)),
        ((false, false, true), (true, false, false)),
        ((true, true, false), (false, true, true)),
        ((false, true, false), (false, false, true)),
        ((true, true, true), (true, true, true)),
    ];
    for ((ready, terminating, publish), want) in cases {
        let mut svc = service();
        svc["spec"]["publishNotReadyAddresses"] = json!(publish);
        let mut p = pod("a", "10.0.0.1", ready);
        if terminating {
            p["metadata"]["deletionTimestamp"] = json!("2027-01-15T00:00:00Z");
        }
        let mut store = Store::default();
        store.sync(&svc, &[p]);
        let c = &endpoint(&store, "a")["conditions"];
        assert_eq!(
            (
                c["ready"].as_bool().unwrap(),
                c["serving"].as_bool().unwrap(),
                c["terminating"].as_bool().unwrap()
            ),
            want,
            "{ready} {terminating} {publish}"
        );
    }
}

#[test]
fn pods_without_ip_finished_or_unselected_are_skipped() {
    let mut done = pod("done", "10.0.0.3", false);
    done["status"]["phase"] = json!("Succeeded");
    let mut other = pod("other", "10.0.0.4", true);
    other["metadata"]["labels"] = json!({"app": "other"});
    let pods = vec![
        pod("a", "10.0.0.1", true),
        pod("no-ip", "", false),
        done,
        other,
    ];
    let mut store = Store::default();
    store.sync(&service(), &pods);
    assert_eq!(store.endpoint_count(), vec![1]);
}

#[test]
fn different_resolved_ports_get_separate_slices() {
    let mut alt = pod("alt", "10.0.0.2", true);
    alt["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(9090);
    let mut unresolved = pod("none", "10.0.0.3", true);
    unresolved["spec"]["containers"][0]["ports"] = json!([]);
    let pods = vec![pod("a", "10.0.0.1", true), alt, unresolved];
    let mut store = Store::default();
    store.sync(&service(), &pods);
    let mut ports: Vec<Value> = store.slices.iter().map(|s| s["ports"].clone()).collect();
    ports.sort_by_key(|p| p.to_string());
    assert_eq!(
        ports,
        vec![
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
            json!([{"name": "http", "port": 9090, "protocol": "TCP"}]),
            // A pod where the named port does not resolve gets a slice without ports.
            Value::Null,
        ]
    );
}

#[test]
fn numeric_target_port_and_app_protocol() {
    let mut svc = service();
    svc["spec"]["ports"] = json!([
        {"name": "web", "port": 80, "targetPort": 8000, "protocol": "TCP", "appProtocol": "http"},
        {"name": "dns", "port": 53, "protocol": "UDP"}
    ]);
    let mut store = Store::default();
    store.sync(&svc, &[pod("a", "10.0.0.1", true)]);
    assert_eq!(
        store.slices[0]["ports"],
        json!([{"name": "web", "port": 8000, "protocol": "TCP", "appProtocol": "http"},
               {"name": "dns", "port": 53, "protocol": "UDP"}])
    );
}

#[test]
fn splits_at_one_hundred_and_updates_in_place() {
    let pods: Vec<Value> = (0..250)
        .map(|i| {
            pod(
                &format!("p{i:03}"),
                &format!("10.0.{}.{}", i / 200, i % 200 + 1),
                true,
            )
        })
        .collect();
    let mut store = Store::default();
    let plan = store.sync(&service(), &pods);
    assert_eq!(plan.create.len(), 3);
    assert_eq!(store.endpoint_count(), vec![50, 100, 100]);
    // Ten pods go: only the slices that held them change.
    let fewer: Vec<Value> = pods[10..].to_vec();
    let plan = store.sync(&service(), &fewer);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(store.endpoint_count(), vec![50, 90, 100]);
    // Twenty new pods all go to the fullest unchanged slice they fit in whole: the one of 50.
    let mut more = fewer.clone();
    more.extend((0..20).map(|i| pod(&format!("q{i:02}"), &format!("10.1.0.{}", i + 1), true)));
    store.sync(&service(), &more);
    assert_eq!(store.endpoint_count(), vec![70, 90, 100]);
    // A pod turning unready updates its endpoint where it is.
    let mut changed = more.clone();
    changed[0]["status"]["conditions"][0]["status"] = json!("False");
    let plan = store.sync(&service(), &changed);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(endpoint(&store, "p010")["conditions"]["ready"], false);
}

#[test]
fn placeholder_slice_when_nothing_is_selected() {
    let mut store = Store::default();
    let plan = store.sync(&service(), &[]);
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0]["endpoints"], json!([]));
    assert!(plan.create[0].get("ports").is_none());
    // The first pod turns the placeholder into a real slice by update, not delete and create.
    let plan = store.sync(&service(), &[pod("a", "10.0.0.1", true)]);
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(store.slices.len(), 1);
    // And back.
    let plan = store.sync(&service(), &[]);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(store.slices[0]["endpoints"], json!([]));
}

#[test]
fn labels_follow_the_service_and_headless_marker() {
    let mut store = Store::default();
    store.sync(&service(), &[pod("a", "10.0.0.1", true)]);
    let mut svc = service();
    svc["metadata"]["labels"] = json!({"team": "b"});
    svc["spec"]["clusterIP"] = json!("None");
    let plan = store.sync(&svc, &[pod("a", "10.0.0.1", true)]);
    assert_eq!(plan.update.len(), 1);
    assert_eq!(
        store.slices[0]["metadata"]["labels"],
        json!({"team": "b", "service.kubernetes.io/headless": "",
               SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME})
    );
}

#[test]
fn hostname_for_matching_subdomain() {
    let mut p = pod("a", "10.0.0.1", true);
    p["spec"]["hostname"] = json!("a-0");
    p["spec"]["subdomain"] = json!("web");
    let mut store = Store::default();
    store.sync(&service(), &[p]);
    assert_eq!(endpoint(&store, "a")["hostname"], "a-0");
}

#[test]
fn dual_stack_gets_a_slice_per_family() {
    let mut svc = service();
    svc["spec"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
    let mut p = pod("a", "10.0.0.1", true);
    p["status"]["podIPs"] = json!([{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]);
    let mut store = Store::default();
    store.sync(&svc, &[p]);
    let mut families: Vec<&str> = store
        .slices
        .iter()
        .map(|s| s["addressType"].as_str().unwrap())
        .collect();
    families.sort();
    assert_eq!(families, vec!["IPv4", "IPv6"]);
    assert_eq!(
        store
            .slices
            .iter()
            .find(|s| s["addressType"] == "IPv6")
            .unwrap()["endpoints"][0]["addresses"],
        json!(["fd00::1"])
    );
    // Dropping IPv6 from the Service deletes its slice.
    svc["spec"]["ipFamilies"] = json!(["IPv4"]);
    let plan = store.sync(&svc, &[pod("a", "10.0.0.1", true)]);
    assert_eq!(plan.delete.len(), 1);
}

#[test]
fn foreign_slices_are_ignored() {
    let foreign = json!({"metadata": {"name": "manual", "namespace": "ns",
        "labels": {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: "someone-else"}},
        "addressType": "IPv4", "endpoints": []});
    let plan = endpointslice::reconcile(&service(), &[pod("a", "10.0.0.1", true)], &[foreign]);
    assert_eq!(plan.create.len(), 1);
    assert!(plan.delete.is_empty() && plan.update.is_empty());
}
