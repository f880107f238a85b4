//! `berth-bench crd`: creates of custom objects whose CRD has a structural schema with defaults
//! and `x-kubernetes-validations` CEL rules, against creates of ConfigMaps of the same size, on
//! the same server in the same run (rounds interleaved, so both see the same machine).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::api_bench::{https_client, start_server};
use crate::stats::{Samples, fan_out, ms};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The `berth` binary; default: next to this one.
    #[arg(long)]
    berth: Option<PathBuf>,
    /// Objects created per round and kind.
    #[arg(long, default_value_t = 1_000)]
    objects: usize,
    /// Rounds (each creates `objects` ConfigMaps, then `objects` custom objects).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Tiny counts, for a smoke test of the benchmark itself.
    #[arg(long)]
    quick: bool,
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.bench.berth.dev}
spec:
  group: bench.berth.dev
  scope: Namespaced
  names: {plural: widgets, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [mode, listeners]
            x-kubernetes-validations:
            - {rule: "self.minReplicas <= self.maxReplicas", message: minReplicas must not exceed maxReplicas}
            - {rule: "self.mode == oldSelf.mode", message: mode is immutable}
            properties:
              mode: {type: string, enum: [Fast, Safe]}
              minReplicas: {type: integer, default: 1, minimum: 0}
              maxReplicas: {type: integer, default: 3, maximum: 100}
              payload: {type: string, maxLength: 2048}
              listeners:
                type: array
                maxItems: 16
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                x-kubernetes-validations:
                - {rule: "self.all(l1, self.exists_one(l2, l1.port == l2.port))", message: ports must be unique}
                items:
                  type: object
                  required: [name, port]
                  x-kubernetes-validations:
                  - {rule: "self.protocol == 'HTTPS' ? has(self.hostname) : true", message: HTTPS listeners need a hostname}
                  properties:
                    name: {type: string, maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
                    port: {type: integer, minimum: 1, maximum: 65535}
                    protocol: {type: string, default: HTTP, enum: [HTTP, HTTPS]}
                    hostname: {type: string, maxLength: 253}
"#;

/// A CRD in the style of the Gateway API's: nested objects, a list-map, enums, patterns,
/// defaults, and CEL rules at several levels (one a transition rule).
fn crd() -> anyhow::Result<Value> {
    Ok(serde_saphyr::from_str(CRD)?)
}

fn widget(name: &str) -> Value {
    json!({
        "apiVersion": "bench.berth.dev/v1", "kind": "Widget", "metadata": {"name": name},
        "spec": {
            "mode": "Fast",
            "payload": "x".repeat(800),
            "listeners": [
                {"name": "http", "port": 80},
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "example.com"},
            ],
        },
    })
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
        "data": {"payload": "x".repeat(1024)}})
}

async fn creates(
    client: &reqwest::Client,
    url: String,
    clients: usize,
    total: usize,
    make: fn(&str) -> Value,
    prefix: String,
) -> anyhow::Result<Samples> {
    let url = Arc::new(url);
    let client = client.clone();
    let prefix = Arc::new(prefix);
    fan_out(clients, total, move |c, i| {
        let (client, url, prefix) = (client.clone(), Arc::clone(&url), Arc::clone(&prefix));
        async move {
            let r = client
                .post(url.as_str())
                .json(&make(&format!("{prefix}-{c}-{i}")))
                .send()
                .await?;
            let status = r.status();
            let body = r.bytes().await?;
            anyhow::ensure!(
                status.as_u16() == 201,
                "create answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            Ok(())
        }
    })
    .await
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let berth = match args.berth {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("berth"),
    };
    let (objects, rounds) = if args.quick {
        (20, 1)
    } else {
        (args.objects, args.rounds)
    };
    let say = |s: &str| eprintln!("[berth-bench crd] {s}");
    let server = start_server(&berth, temp.path(), &[]).await?;
    let base = server.base.clone();
    let client = https_client(&server.tls, 128)?;

    say("creating the CRD and waiting until it is served");
    let r = client
        .post(format!(
            "{base}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        ))
        .json(&crd()?)
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "creating the CRD: {}",
        r.text().await?
    );
    let widgets = format!("{base}/apis/bench.berth.dev/v1/namespaces/default/widgets");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(&widgets).send().await?;
        if r.status().is_success() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the CRD was not served within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A rule violation is refused: the rules really run.
    let mut bad = widget("bad");
    bad["spec"]["minReplicas"] = json!(5);
    bad["spec"]["maxReplicas"] = json!(2);
    let r = client.post(&widgets).json(&bad).send().await?;
    let text = r.text().await?;
    anyhow::ensure!(
        text.contains("minReplicas must not exceed maxReplicas"),
        "a Widget breaking a rule was not refused: {text}"
    );
    let configmaps = format!("{base}/api/v1/namespaces/default/configmaps");

    // Warm both paths (connections, caches) before measuring.
    creates(
        &client,
        configmaps.clone(),
        args.clients,
        64,
        configmap,
        "warm".into(),
    )
    .await?;
    creates(
        &client,
        widgets.clone(),
        args.clients,
        64,
        widget,
        "warm".into(),
    )
    .await?;

    let mut cm = Samples::default();
    let mut cr = Samples::default();
    for round in 0..rounds {
        say(&format!(
            "round {}: {objects} ConfigMaps, then {objects} Widgets, {} clients",
            round + 1,
            args.clients
        ));
        cm.merge(
            creates(
                &client,
                configmaps.clone(),
                args.clients,
                objects,
                configmap,
                format!("cm{round}"),
            )
            .await?,
        );
        cr.merge(
            creates(
                &client,
                widgets.clone(),
                args.clients,
                objects,
                widget,
                format!("w{round}"),
            )
            .await?,
        );
    }
    let stored = client.get(format!("{widgets}/w0-0-0")).send().await?;
    let stored: Value = stored.json().await.context("reading a Widget back")?;
    anyhow::ensure!(
        stored.pointer("/spec/minReplicas") == Some(&json!(1))
            && stored.pointer("/spec/listeners/0/protocol") == Some(&json!("HTTP")),
        "defaults were not applied: {stored}"
    );

    println!();
    println!(
        "CRD benchmark: berth server (1 replica, raft + redb) over HTTPS on 127.0.0.1, {} clients,",
        args.clients
    );
    println!(
        "{rounds} interleaved round(s) of {objects} creates per kind; the Widget CRD has a structural schema"
    );
    println!("with defaults, a list-map, enums, patterns and 4 CEL rules (one a transition rule).");
    println!();
    println!("| workload | ops/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    for (name, s) in [
        ("create ConfigMap (1 KiB)", &cm),
        ("create Widget (CEL rules)", &cr),
    ] {
        println!(
            "| {name} | {:.0} | {} | {} |",
            s.throughput(),
            ms(s.quantile(0.5)),
            ms(s.quantile(0.99))
        );
    }
    let ratio = cr.throughput() / cm.throughput();
    println!();
    println!(
        "custom objects / ConfigMaps create throughput: {ratio:.2} (target at least 0.70) {}",
        if ratio >= 0.7 { "MET" } else { "NOT MET" }
    );
    Ok(())
}
