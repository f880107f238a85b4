//! Printers of the other groups: coordination (Lease), discovery (EndpointSlice), networking
//! (Ingress, IngressClass, NetworkPolicy), policy (PodDisruptionBudget), scheduling
//! (PriorityClass), storage (StorageClass), autoscaling (HorizontalPodAutoscaler) and RBAC
//! (RoleBinding, ClusterRoleBinding).

use std::collections::BTreeSet;

use serde_json::Value;

use super::descriptions::*;
use super::duration::Nanos;
use super::selector::format_label_selector;
use super::{
    Column, age, age_column, at, bool_at, column, int_at, list_at, list_with_more, name,
    name_column, quantity_text, str_at, wide,
};

pub(super) fn lease_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Holder", "string", D_LEASE_HOLDER),
        age_column(),
    ]
}

pub(super) fn lease(o: &Value, now: Nanos) -> Vec<Value> {
    vec![
        name(o).into(),
        str_at(o, &["spec", "holderIdentity"]).into(),
        age(o, now),
    ]
}

pub(super) fn slice_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("AddressType", "string", D_ES_ADDRESS_TYPE),
        column("Ports", "string", D_ES_PORTS),
        column("Endpoints", "string", D_ES_ENDPOINTS),
        age_column(),
    ]
}

/// `printEndpointSlice`: up to three ports (number, else name, else `*`) and three addresses,
/// `<unset>` when there are none.
pub(super) fn slice(o: &Value, now: Nanos) -> Vec<Value> {
    const MAX: usize = 3;
    let ports = list_at(o, &["ports"]);
    let shown: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| match (at(p, &["port"]), at(p, &["name"])) {
            (Some(_), _) => int_at(p, &["port"]).to_string(),
            (None, Some(n)) => n.as_str().unwrap_or("").to_owned(),
            (None, None) => "*".to_owned(),
        })
        .collect();
    let addresses: Vec<&Value> = list_at(o, &["endpoints"])
        .iter()
        .flat_map(|e| list_at(e, &["addresses"]))
        .collect();
    let shown_addresses: Vec<String> = addresses
        .iter()
        .take(MAX)
        .map(|a| a.as_str().unwrap_or("").to_owned())
        .collect();
    vec![
        name(o).into(),
        str_at(o, &["addressType"]).into(),
        list_with_more(&shown, ports.len(), MAX).into(),
        list_with_more(&shown_addresses, addresses.len(), MAX).into(),
        age(o, now),
    ]
}

pub(super) fn ingress_columns() -> Vec<Column> {
    vec![
        name_column(),
        column(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        column(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        column(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer",
        ),
        column("Ports", "string", "Ports of TLS configurations that open"),
        age_column(),
    ]
}

/// `printIngress`: the first three hosts (and how many rules there are beyond three, `*` when no
/// rule names a host), the load balancer's addresses sorted and unique, `80` or `80, 443`.
pub(super) fn ingress(o: &Value, now: Nanos) -> Vec<Value> {
    const MAX: usize = 3;
    let class = match at(o, &["spec", "ingressClassName"]) {
        Some(c) => c.as_str().unwrap_or("").to_owned(),
        None => "<none>".to_owned(),
    };
    let rules = list_at(o, &["spec", "rules"]);
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_owned()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let address: BTreeSet<&str> = list_at(o, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| match (str_at(i, &["ip"]), str_at(i, &["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    let ports = if list_at(o, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(o).into(),
        class.into(),
        hosts.into(),
        address.into_iter().collect::<Vec<_>>().join(",").into(),
        ports.into(),
        age(o, now),
    ]
}

pub(super) fn ingress_class_columns() -> Vec<Column> {
    vec![
        name_column(),
        column(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
        ),
        column(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
        ),
        age_column(),
    ]
}

/// `printIngressClass`: parameters as `Kind[.apiGroup]/name`, `<none>` without them.
pub(super) fn ingress_class(o: &Value, now: Nanos) -> Vec<Value> {
    let parameters = match at(o, &["spec", "parameters"]) {
        None => "<none>".to_owned(),
        Some(p) => {
            let mut text = str_at(p, &["kind"]).to_owned();
            if let Some(group) = at(p, &["apiGroup"]) {
                text.push('.');
                text.push_str(group.as_str().unwrap_or(""));
            }
            format!("{text}/{}", str_at(p, &["name"]))
        }
    };
    vec![
        name(o).into(),
        str_at(o, &["spec", "controller"]).into(),
        parameters.into(),
        age(o, now),
    ]
}

pub(super) fn network_policy_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Pod-Selector", "string", D_NP_POD_SELECTOR),
        age_column(),
    ]
}

pub(super) fn network_policy(o: &Value, now: Nanos) -> Vec<Value> {
    vec![
        name(o).into(),
        format_label_selector(at(o, &["spec", "podSelector"])).into(),
        age(o, now),
    ]
}

pub(super) fn pdb_columns() -> Vec<Column> {
    vec![
        name_column(),
        column(
            "Min Available",
            "string",
            "The minimum number of pods that must be available.",
        ),
        column(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable.",
        ),
        column(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        age_column(),
    ]
}

/// `printPodDisruptionBudget`: each bound as written (a count or a percentage), `N/A` if unset.
pub(super) fn pdb(o: &Value, now: Nanos) -> Vec<Value> {
    let int_or_string = |field: &str| match at(o, &["spec", field]) {
        None => "N/A".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => int_at(o, &["spec", field]).to_string(),
    };
    vec![
        name(o).into(),
        int_or_string("minAvailable").into(),
        int_or_string("maxUnavailable").into(),
        int_at(o, &["status", "disruptionsAllowed"]).into(),
        age(o, now),
    ]
}

pub(super) fn csr_columns() -> Vec<Column> {
    vec![
        name_column(),
        age_column(),
        column("SignerName", "string", D_CSR_SIGNER),
        column("Requestor", "string", D_CSR_REQUESTOR),
        column("RequestedDuration", "string", D_CSR_DURATION),
        column("Condition", "string", D_CSR_CONDITION),
    ]
}

/// `printCertificateSigningRequest`: the condition is `Denied`, `Approved` or `Pending` (in that
/// precedence), then `,Failed` and `,Issued` when they apply.
pub(super) fn csr(o: &Value, now: Nanos) -> Vec<Value> {
    let types: Vec<&str> = list_at(o, &["status", "conditions"])
        .iter()
        .filter_map(|c| c.get("type").and_then(Value::as_str))
        .collect();
    let mut condition = if types.contains(&"Denied") {
        "Denied".to_owned()
    } else if types.contains(&"Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if types.contains(&"Failed") {
        condition.push_str(",Failed");
    }
    if !str_at(o, &["status", "certificate"]).is_empty() {
        condition.push_str(",Issued");
    }
    let signer = match str_at(o, &["spec", "signerName"]) {
        "" => "<none>",
        s => s,
    };
    let duration = match at(o, &["spec", "expirationSeconds"]).and_then(Value::as_i64) {
        Some(s) => super::duration::human_duration(s.saturating_mul(1_000_000_000)),
        None => "<none>".to_owned(),
    };
    vec![
        name(o).into(),
        age(o, now),
        signer.into(),
        str_at(o, &["spec", "username"]).into(),
        duration.into(),
        condition.into(),
    ]
}

pub(super) fn priority_class_columns() -> Vec<Column> {
    // Upstream gives the PreemptionPolicy column priority 0, though it only fills it for wide
    // output (which the API server always asks for).
    vec![
        name_column(),
        column("Value", "integer", D_PC_VALUE),
        column("Global-Default", "boolean", D_PC_DEFAULT),
        age_column(),
        column("PreemptionPolicy", "string", D_PC_PREEMPTION),
    ]
}

pub(super) fn priority_class(o: &Value, now: Nanos) -> Vec<Value> {
    vec![
        name(o).into(),
        int_at(o, &["value"]).into(),
        bool_at(o, &["globalDefault"]).into(),
        age(o, now),
        str_at(o, &["preemptionPolicy"]).into(),
    ]
}

pub(super) fn storage_class_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Provisioner", "string", D_SC_PROVISIONER),
        column("ReclaimPolicy", "string", D_SC_RECLAIM),
        column("VolumeBindingMode", "string", D_SC_BINDING),
        column("AllowVolumeExpansion", "string", D_SC_EXPANSION),
        age_column(),
    ]
}

/// `printStorageClass`: `name (default)` for the default class; the policies with their
/// defaults (`Delete`, `Immediate`, false) when unset.
pub(super) fn storage_class(o: &Value, now: Nanos) -> Vec<Value> {
    let annotation = |key: &str| str_at(o, &["metadata", "annotations", key]) == "true";
    let mut shown = name(o).to_owned();
    if annotation("storageclass.kubernetes.io/is-default-class")
        || annotation("storageclass.beta.kubernetes.io/is-default-class")
    {
        shown.push_str(" (default)");
    }
    let or = |field: &str, default: &str| match at(o, &[field]) {
        Some(v) => v.as_str().unwrap_or("").to_owned(),
        None => default.to_owned(),
    };
    vec![
        shown.into(),
        str_at(o, &["provisioner"]).into(),
        or("reclaimPolicy", "Delete").into(),
        or("volumeBindingMode", "Immediate").into(),
        bool_at(o, &["allowVolumeExpansion"]).into(),
        age(o, now),
    ]
}

pub(super) fn hpa_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Reference", "string", D_HPA_REF),
        column("Targets", "string", D_HPA_METRICS),
        column("MinPods", "string", D_HPA_MIN),
        column("MaxPods", "string", D_HPA_MAX),
        column("Replicas", "string", D_HPA_REPLICAS),
        age_column(),
    ]
}

/// `printHorizontalPodAutoscaler` (autoscaling/v2 objects).
pub(super) fn hpa(o: &Value, now: Nanos) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(o, &["spec", "scaleTargetRef", "kind"]),
        str_at(o, &["spec", "scaleTargetRef", "name"])
    );
    let min_pods = match at(o, &["spec", "minReplicas"]) {
        Some(_) => int_at(o, &["spec", "minReplicas"]).to_string(),
        None => "<unset>".to_owned(),
    };
    vec![
        name(o).into(),
        reference.into(),
        hpa_metrics(
            list_at(o, &["spec", "metrics"]),
            list_at(o, &["status", "currentMetrics"]),
        )
        .into(),
        min_pods.into(),
        int_at(o, &["spec", "maxReplicas"]).into(),
        int_at(o, &["status", "currentReplicas"]).into(),
        age(o, now),
    ]
}

/// A quantity's text, or `<nil>` where upstream prints a pointer it did not check.
fn quantity_or_nil(v: Option<&Value>) -> String {
    v.map_or_else(|| "<nil>".to_owned(), quantity_text)
}

/// `formatHPAMetrics`: each metric as `current/target` (the status at the same position giving
/// the current value), two of them and `+ N more...`; `<none>` without metrics.
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        // The status's source of this metric type, if it has one.
        let current = |source: &str| status.and_then(|s| at(s, &[source]));
        let text = match str_at(spec, &["type"]) {
            kind @ ("External" | "Object") => {
                let source = if kind == "External" {
                    "external"
                } else {
                    "object"
                };
                if let Some(target) = at(spec, &[source, "target", "averageValue"]) {
                    let now = current(source)
                        .and_then(|c| at(c, &["current", "averageValue"]))
                        .map_or_else(|| "<unknown>".to_owned(), quantity_text);
                    format!("{now}/{} (avg)", quantity_text(target))
                } else {
                    let now = match current(source) {
                        Some(c) => quantity_or_nil(at(c, &["current", "value"])),
                        None => "<unknown>".to_owned(),
                    };
                    let target = quantity_or_nil(at(spec, &[source, "target", "value"]));
                    format!("{now}/{target}")
                }
            }
            "Pods" => {
                let now = match current("pods") {
                    Some(c) => quantity_or_nil(at(c, &["current", "averageValue"])),
                    None => "<unknown>".to_owned(),
                };
                let target = quantity_or_nil(at(spec, &["pods", "target", "averageValue"]));
                format!("{now}/{target}")
            }
            kind @ ("Resource" | "ContainerResource") => {
                let source = if kind == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let resource = str_at(spec, &[source, "name"]);
                if let Some(target) = at(spec, &[source, "target", "averageValue"]) {
                    let now = match current(source) {
                        Some(c) => quantity_or_nil(at(c, &["current", "averageValue"])),
                        None => "<unknown>".to_owned(),
                    };
                    format!("{resource}: {now}/{}", quantity_text(target))
                } else {
                    let now = match current(source)
                        .and_then(|c| at(c, &["current", "averageUtilization"]))
                    {
                        Some(u) => format!("{}%", u.as_i64().unwrap_or(0)),
                        None => "<unknown>".to_owned(),
                    };
                    let target = match at(spec, &[source, "target", "averageUtilization"]) {
                        Some(u) => format!("{}%", u.as_i64().unwrap_or(0)),
                        None => "<auto>".to_owned(),
                    };
                    format!("{resource}: {now}/{target}")
                }
            }
            _ => "<unknown type>".to_owned(),
        };
        list.push(text);
    }
    if list.len() > MAX {
        let more = list.len() - MAX;
        format!("{} + {more} more...", list[..MAX].join(", "))
    } else {
        list.join(", ")
    }
}

pub(super) fn role_binding_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Role", "string", D_RB_ROLE),
        age_column(),
        wide("Users", "string", "Users in the roleBinding"),
        wide("Groups", "string", "Groups in the roleBinding"),
        wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the roleBinding",
        ),
    ]
}

pub(super) fn cluster_role_binding_columns() -> Vec<Column> {
    vec![
        name_column(),
        column("Role", "string", D_CRB_ROLE),
        age_column(),
        wide("Users", "string", "Users in the clusterRoleBinding"),
        wide("Groups", "string", "Groups in the clusterRoleBinding"),
        wide(
            "ServiceAccounts",
            "string",
            "ServiceAccounts in the clusterRoleBinding",
        ),
    ]
}

/// `printRoleBinding` and `printClusterRoleBinding`: the role as `Kind/name`, and the subjects
/// by kind (service accounts as `namespace/name`), each joined by `, `.
pub(super) fn role_binding(o: &Value, now: Nanos) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(o, &["roleRef", "kind"]),
        str_at(o, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for s in list_at(o, &["subjects"]) {
        let subject = str_at(s, &["name"]);
        match str_at(s, &["kind"]) {
            "ServiceAccount" => {
                accounts.push(format!("{}/{subject}", str_at(s, &["namespace"])));
            }
            "User" => users.push(subject.to_owned()),
            "Group" => groups.push(subject.to_owned()),
            _ => {}
        }
    }
    vec![
        name(o).into(),
        role.into(),
        age(o, now),
        users.join(", ").into(),
        groups.join(", ").into(),
        accounts.join(", ").into(),
    ]
}
