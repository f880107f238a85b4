//! Extending the API with stock kubectl: the Gateway API CustomResourceDefinitions are
//! installed, served within seconds (discovery, `explain`, tables), their objects defaulted and
//! validated by schema and CEL rules with upstream's messages, and deleted with their CRDs.

mod support;

use std::time::Duration;

use support::kubectl::{Kubectl, kubectls};
use support::start_with_kubectl as start;

/// The Gateway API release the tests install (from the machine's shared data).
const GATEWAY_API: &str = "/work/shared/data/crds/gateway-api";

fn crd_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(GATEWAY_API)
        .expect("the Gateway API CRDs")
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".yaml") && !p.contains("_vap_"))
        .collect();
    files.sort();
    files
}

const OBJECTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: example}
spec: {controllerName: example.com/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: example
  listeners:
  - {name: http, protocol: HTTP, port: 80}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: svc, port: 8080}]
"#;

#[test]
fn gateway_api_crds_are_served_validated_and_removed() {
    let (_dir, _replica, k) = start();
    let mut args = vec!["apply"];
    let files = crd_files();
    for f in &files {
        args.extend(["-f", f.as_str()]);
    }
    let out = k.ok(&args);
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/gateways.gateway.networking.k8s.io created"),
        "{out}"
    );
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/gateways.gateway.networking.k8s.io",
        "crd/httproutes.gateway.networking.k8s.io",
        "crd/gatewayclasses.gateway.networking.k8s.io",
    ]);
    let names = k.ok(&[
        "get",
        "crd",
        "gateways.gateway.networking.k8s.io",
        "-o",
        "jsonpath={.status.acceptedNames.kind} {.status.conditions[?(@.type==\"NamesAccepted\")].reason}",
    ]);
    assert_eq!(names, "Gateway NoConflicts");

    // Discovery: short names, categories; OpenAPI: explain.
    let resources = k.ok(&["api-resources", "--api-group=gateway.networking.k8s.io"]);
    assert!(
        resources
            .lines()
            .any(|l| l.starts_with("gateways") && l.contains("gtw") && l.contains("Gateway")),
        "{resources}"
    );
    let explain = k.ok(&["explain", "gateway.spec.listeners.port"]);
    assert!(explain.contains("FIELD: port <integer>"), "{explain}");
    assert!(explain.contains("Port is the network port."), "{explain}");

    // Valid objects, with their schema defaults.
    k.ok_in(&["apply", "-f", "-"], Some(OBJECTS));
    let route = k.ok(&[
        "get",
        "httproute",
        "route",
        "-o",
        "jsonpath={.spec.rules[0].matches[0].path.type} {.spec.rules[0].matches[0].path.value} {.spec.parentRefs[0].kind} {.spec.rules[0].backendRefs[0].weight}",
    ]);
    assert_eq!(route, "PathPrefix / Gateway 1");
    // additionalPrinterColumns, and the `gateway-api` category.
    let table = k.ok(&["get", "gateways"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]);
    assert!(table.contains("gw     example"), "{table}");
    let category = k.ok(&["get", "gateway-api", "-o", "name"]);
    assert!(
        category.contains("gateway.gateway.networking.k8s.io/gw")
            && category.contains("httproute.gateway.networking.k8s.io/route"),
        "{category}"
    );

    // What upstream refuses, with upstream's messages: list-map keys, CEL rules, types.
    let err = k.fails(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: dup, namespace: default}
spec:
  gatewayClassName: example
  listeners:
  - {name: http, protocol: HTTP, port: 80}
  - {name: http, protocol: HTTP, port: 81}
"#,
        ),
    );
    assert!(
        err.contains("The Gateway \"dup\" is invalid")
            && err.contains("spec.listeners: Invalid value: \"array\": Listener name must be unique within the Gateway"),
        "{err}"
    );
    let err = k.fails(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: relative, namespace: default}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: "foo"}}]
"#,
        ),
    );
    assert!(
        err.contains("spec.rules[0].matches[0].path: Invalid value: \"object\": value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
        "{err}"
    );
    let err = k.fails(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: typed, namespace: default}
spec:
  gatewayClassName: example
  listeners:
  - {name: http, protocol: HTTP, port: "eighty"}
"#,
        ),
    );
    assert!(
        err.contains(
            "spec.listeners[0].port: Invalid value: \"string\": spec.listeners[0].port in body must be of type integer: \"string\""
        ),
        "{err}"
    );
    let err = k.fails(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ranged, namespace: default}
spec:
  gatewayClassName: example
  listeners:
  - {name: http, protocol: HTTP, port: 70000}
"#,
        ),
    );
    assert!(
        err.contains("spec.listeners[0].port: Invalid value: 70000: spec.listeners[0].port in body should be less than or equal to 65535"),
        "{err}"
    );
    // Unknown fields are pruned, and refused when asked to be strict.
    let err = k.fails(
        &["apply", "--validate=strict", "-f", "-"],
        Some(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: strict}
spec: {controllerName: example.com/x, colour: blue}
"#,
        ),
    );
    assert!(err.contains("unknown field \"spec.colour\""), "{err}");

    // Deleting a CRD deletes its objects and stops serving them.
    k.ok(&[
        "delete",
        "crd",
        "httproutes.gateway.networking.k8s.io",
        "--timeout=30s",
    ]);
    // kubectl names the missing resource differently with and without cached discovery.
    let err = k.fails(&["get", "httproutes"], None);
    assert!(
        err.contains("the server could not find the requested resource")
            || err.contains("the server doesn't have a resource type \"httproutes\""),
        "{err}"
    );
    // Recreated, the CRD starts empty.
    let httproutes = files
        .iter()
        .find(|f| f.ends_with("httproutes.yaml"))
        .unwrap();
    k.ok(&["apply", "-f", httproutes]);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/httproutes.gateway.networking.k8s.io",
    ]);
    let listed = k.eventually(
        &["get", "httproutes", "-A", "-o", "name"],
        Duration::from_secs(20),
        |_| true,
    );
    assert_eq!(listed.trim(), "");
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: IMAGE}]
"#;

fn deployment(replicas: u32, image: &str) -> String {
    DEPLOYMENT
        .replace("REPLICAS", &replicas.to_string())
        .replace("IMAGE", image)
}

#[test]
fn server_side_apply_tracks_owners_conflicts_and_force() {
    let (_dir, _replica, k) = start();
    // CRDs install with server-side apply too, and a second apply changes nothing.
    let gateways = format!("{GATEWAY_API}/gateway.networking.k8s.io_gateways.yaml");
    let out = k.ok(&["apply", "--server-side", "-f", &gateways]);
    assert!(out.contains("serverside-applied"), "{out}");
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/gateways.gateway.networking.k8s.io",
    ]);
    let before = k.ok(&[
        "get",
        "crd",
        "gateways.gateway.networking.k8s.io",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    k.ok(&["apply", "--server-side", "-f", &gateways]);
    let after = k.ok(&[
        "get",
        "crd",
        "gateways.gateway.networking.k8s.io",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(before, after, "a repeated apply writes nothing");

    // Manager "alice" applies a Deployment; "bob" applies a different replica count.
    k.ok_in(
        &["apply", "--server-side", "--field-manager=alice", "-f", "-"],
        Some(&deployment(2, "nginx:1.27")),
    );
    let managers = k.ok(&[
        "get",
        "deploy",
        "web",
        "--show-managed-fields",
        "-o",
        "jsonpath={range .metadata.managedFields[*]}{.manager}/{.operation} {end}",
    ]);
    assert!(managers.contains("alice/Apply"), "{managers}");
    let err = k.fails(
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        Some(&deployment(5, "nginx:1.27")),
    );
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"),
        "{err}"
    );
    // Co-owning by applying the same value is no conflict.
    k.ok_in(
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        Some(&deployment(2, "nginx:1.27")),
    );
    // Forcing takes the field: alice no longer owns it.
    k.ok_in(
        &[
            "apply",
            "--server-side",
            "--field-manager=bob",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&deployment(5, "nginx:1.27")),
    );
    let replicas = k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "5");
    let fields = k.ok(&[
        "get",
        "deploy",
        "web",
        "--show-managed-fields",
        "-o",
        "jsonpath={range .metadata.managedFields[?(@.manager==\"alice\")]}{.fieldsV1}{end}",
    ]);
    assert!(
        !fields.contains("f:replicas"),
        "alice lost .spec.replicas: {fields}"
    );
    assert!(
        fields.contains("f:image"),
        "alice still owns the image: {fields}"
    );
    // An update by another client takes what it changes (kubectl scale → Update entry).
    k.ok(&["scale", "deploy", "web", "--replicas=1"]);
    let err = k.fails(
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        Some(&deployment(5, "nginx:1.27")),
    );
    assert!(err.contains("conflict with \"kubectl"), "{err}");

    // kubectl diff shows what an apply would change (bob co-owns the image, so alice forces).
    let diff = k.run(
        &[
            "diff",
            "--server-side",
            "--force-conflicts",
            "--field-manager=alice",
            "-f",
            "-",
        ],
        Some(&deployment(2, "nginx:1.28")),
    );
    let text = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with('-') && l.ends_with("image: nginx:1.27"))
            && text
                .lines()
                .any(|l| l.starts_with('+') && l.ends_with("image: nginx:1.28")),
        "{text}"
    );
    let image = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:1.27", "diff is a dry run");
}

const WIDGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1beta1
    served: true
    storage: false
    deprecated: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer, minimum: 0}
              size: {type: string, default: small}
          status:
            type: object
            properties:
              replicas: {type: integer}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "!has(oldSelf.size) || self.size == oldSelf.size"
              message: size cannot change
            properties:
              replicas: {type: integer, minimum: 0}
              size: {type: string, default: small}
          status:
            type: object
            properties:
              replicas: {type: integer}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Size, type: string, jsonPath: .spec.size, priority: 1}
"#;

#[test]
fn versions_subresources_and_transition_rules_of_a_crd() {
    let (_dir, _replica, k) = start();
    k.ok_in(&["apply", "-f", "-"], Some(WIDGETS));
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/widgets.example.com",
    ]);
    // Created at the deprecated version (with its warning), read at the storage version.
    let out = k.run(
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1beta1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {replicas: 1}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("example.com/v1beta1 Widget is deprecated"),
        "{stderr}"
    );
    let w = k.ok(&[
        "get",
        "widgets.v1.example.com",
        "w",
        "-o",
        "jsonpath={.apiVersion} {.spec.size}",
    ]);
    assert_eq!(w, "example.com/v1 small");
    let stored = k.ok(&[
        "get",
        "crd",
        "widgets.example.com",
        "-o",
        "jsonpath={.status.storedVersions}",
    ]);
    assert_eq!(stored, r#"["v1"]"#);
    // Printer columns, with priority-1 columns only in -o wide.
    let table = k.ok(&["get", "wd"]);
    assert!(table.starts_with("NAME   REPLICAS"), "{table}");
    assert!(!table.contains("SIZE"), "{table}");
    let wide = k.ok(&["get", "wd", "-o", "wide"]);
    assert!(wide.contains("SIZE") && wide.contains("small"), "{wide}");
    // The scale subresource, kubectl scale and the status subresource.
    k.ok(&["scale", "widget", "w", "--replicas=4"]);
    let replicas = k.ok(&["get", "wd", "w", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "4");
    let out = k.ok(&[
        "patch",
        "widget",
        "w",
        "--type=merge",
        "-p",
        r#"{"status": {"replicas": 9}, "spec": {"replicas": 2}}"#,
    ]);
    assert!(out.contains("patched"), "{out}");
    let both = k.ok(&[
        "get",
        "wd",
        "w",
        "-o",
        "jsonpath={.spec.replicas} {.status.replicas}",
    ]);
    assert_eq!(both, "2 ", "the main resource ignores status");
    k.ok(&[
        "patch",
        "widget",
        "w",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"replicas": 2}}"#,
    ]);
    let scale = k.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets/w/scale",
    ]);
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["status"]["replicas"], 2);
    assert_eq!(scale["spec"]["replicas"], 2);
    // A transition rule (oldSelf) refuses the change with the CRD's message.
    let err = k.fails(
        &[
            "patch",
            "widget",
            "w",
            "--type=merge",
            "-p",
            r#"{"spec": {"size": "large"}}"#,
        ],
        None,
    );
    assert!(
        err.contains("spec: Invalid value: \"object\": size cannot change"),
        "{err}"
    );
    // A default added to the schema later shows on objects stored before it, as upstream
    // defaults objects when it reads them.
    k.ok(&[
        "patch",
        "crd",
        "widgets.example.com",
        "--type=json",
        "-p",
        r#"[{"op": "add", "path": "/spec/versions/1/schema/openAPIV3Schema/properties/spec/properties/color", "value": {"type": "string", "default": "blue"}}]"#,
    ]);
    k.eventually(
        &[
            "get",
            "widgets.v1.example.com",
            "w",
            "-o",
            "jsonpath={.spec.color}",
        ],
        Duration::from_secs(20),
        |out| out == "blue",
    );
    // An invalid CRD is refused with upstream's messages.
    let err = k.fails(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, properties: {spec: {properties: {a: {type: string}}}}}}
"#,
        ),
    );
    assert!(
        err.contains("The CustomResourceDefinition \"gadgets.example.com\" is invalid"),
        "{err}"
    );
    assert!(
        err.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"),
        "{err}"
    );
}

/// The oldest, default and newest kubectl of the machine image install CRDs (client-side and
/// server-side), explain them, and see the same defaults and refusals.
#[test]
fn every_kubectl_installs_explains_and_validates_custom_resources() {
    let (_dir, _replica, default) = start();
    let gateways = format!("{GATEWAY_API}/gateway.networking.k8s.io_gateways.yaml");
    let classes = format!("{GATEWAY_API}/gateway.networking.k8s.io_gatewayclasses.yaml");
    for (i, bin) in kubectls().into_iter().enumerate() {
        let k = Kubectl {
            bin,
            kubeconfig: default.kubeconfig.clone(),
            cache: tempfile::tempdir().unwrap(),
        };
        let version = k.bin.display().to_string();
        // Alternate client-side and server-side installs; both end in the same CRDs.
        let mut install = vec!["apply"];
        if i % 2 == 1 {
            install.push("--server-side");
        }
        install.extend(["-f", gateways.as_str(), "-f", classes.as_str()]);
        k.ok(&install);
        k.ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=20s",
            "crd/gateways.gateway.networking.k8s.io",
        ]);
        let explain = k.ok(&["explain", "gateway.spec.gatewayClassName"]);
        assert!(
            explain.contains("GatewayClassName used for this Gateway."),
            "{version}: {explain}"
        );
        let name = format!("gw{i}");
        let gateway = format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  gatewayClassName: example\n  listeners:\n  - {{name: http, protocol: HTTP, port: 80}}\n"
        );
        k.ok_in(&["apply", "--server-side", "-f", "-"], Some(&gateway));
        let mode = k.ok(&[
            "get",
            "gateway",
            &name,
            "-o",
            "jsonpath={.spec.listeners[0].allowedRoutes.namespaces.from}",
        ]);
        assert_eq!(mode, "Same", "{version}: the schema default");
        let bad = gateway.replace("port: 80", "port: 0");
        let err = k.fails(&["apply", "-f", "-"], Some(&bad));
        assert!(
            err.contains("spec.listeners[0].port: Invalid value: 0: spec.listeners[0].port in body should be greater than or equal to 1"),
            "{version}: {err}"
        );
    }
}

/// ownerReferences to and from custom objects are followed by the garbage collector, as for
/// any resource upstream's collector discovers.
#[test]
fn the_garbage_collector_follows_custom_owners_and_dependents() {
    let (_dir, _replica, k) = start();
    k.ok_in(&["apply", "-f", "-"], Some(WIDGETS));
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/widgets.example.com",
    ]);
    k.ok_in(
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: owner, namespace: default}\nspec: {replicas: 1}\n"),
    );
    let uid = k.ok(&["get", "widget", "owner", "-o", "jsonpath={.metadata.uid}"]);
    // A ConfigMap owned by the Widget, and a Widget owned by a ConfigMap.
    k.ok_in(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: default\n  ownerReferences:\n  - {{apiVersion: example.com/v1, kind: Widget, name: owner, uid: {uid}}}\n"
        )),
    );
    k.ok(&["create", "configmap", "parent"]);
    let parent = k.ok(&["get", "cm", "parent", "-o", "jsonpath={.metadata.uid}"]);
    k.ok_in(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: child\n  namespace: default\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: parent, uid: {parent}}}\nspec: {{replicas: 1}}\n"
        )),
    );
    k.ok(&["delete", "widget", "owner"]);
    k.eventually(
        &["get", "cm", "-o", "name"],
        Duration::from_secs(30),
        |out| !out.contains("configmap/owned"),
    );
    k.ok(&["delete", "cm", "parent"]);
    k.eventually(
        &["get", "widgets", "-o", "name"],
        Duration::from_secs(30),
        |out| !out.contains("child"),
    );
}
