//! `berth cluster create|list|delete` and `berth kubeconfig`: shorthands for the `berth.dev/v1`
//! Cluster objects of the root cluster, over its API with an admin kubeconfig (the one
//! `berth server` writes as `DATA_DIR/admin.kubeconfig`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_api::{Cluster, ClusterSpec};
use clap::{Args, Subcommand};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};

/// How to reach the root cluster.
#[derive(Args)]
pub(crate) struct RootArgs {
    /// The root cluster's admin kubeconfig (`DATA_DIR/admin.kubeconfig` of `berth server`).
    #[arg(long, env = "KUBECONFIG", global = true)]
    kubeconfig: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum ClusterCommand {
    /// Create a tenant cluster.
    Create {
        /// The cluster's name.
        name: String,
        /// The organisation (namespace of the root cluster) it belongs to.
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// Where its nodes run: `aws`, `gcp` or `local`.
        #[arg(long, default_value = "local")]
        cloud: String,
        /// The cloud region of its nodes (required for `aws` and `gcp`).
        #[arg(long)]
        region: Option<String>,
        /// Wait until it is Ready.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
    /// List tenant clusters.
    List {
        /// The organisation whose clusters to list.
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// List the clusters of every organisation.
        #[arg(long, short = 'A')]
        all_namespaces: bool,
    },
    /// Delete a tenant cluster and everything in it.
    Delete {
        /// The cluster's name.
        name: String,
        /// The organisation it belongs to.
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// Wait until it is gone.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
}

/// `berth kubeconfig NAME`.
#[derive(Args)]
pub(crate) struct KubeconfigArgs {
    /// The cluster's name.
    name: String,
    /// The organisation it belongs to.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
}

async fn root_client(args: &RootArgs) -> anyhow::Result<Client> {
    let path = args.kubeconfig.as_ref().context(
        "no kubeconfig: pass --kubeconfig or set KUBECONFIG to the root cluster's admin \
         kubeconfig (berth server writes DATA_DIR/admin.kubeconfig)",
    )?;
    // `$KUBECONFIG` may list several files; the first that exists is the one used.
    let path = &match path.to_str() {
        Some(list) if !path.exists() && list.contains(':') => list
            .split(':')
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| path.clone()),
        _ => path.clone(),
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("kubeconfig {} cannot be used", path.display()))?;
    Ok(Client::try_from(config)?)
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The API's message for `e` (the Status message when the API answered).
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

fn phase(c: &Cluster) -> &str {
    c.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// The `Ready` condition's message, or the phase when there is none.
fn ready_message(c: &Cluster) -> String {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_else(|| "the cluster controller has not reported on it yet".into())
}

fn is_ready(c: &Cluster) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Ready")
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

pub(crate) async fn cluster(command: ClusterCommand, root: &RootArgs) -> anyhow::Result<()> {
    let client = root_client(root).await?;
    match command {
        ClusterCommand::Create {
            name,
            namespace,
            cloud,
            region,
            wait,
            timeout_secs,
        } => {
            let api: Api<Cluster> = Api::namespaced(client, &namespace);
            let spec = ClusterSpec {
                cloud,
                region,
                ..ClusterSpec::default()
            };
            match api
                .create(
                    &PostParams::default(),
                    &Cluster::new(&namespace, &name, spec),
                )
                .await
            {
                Ok(_) => println!("cluster {namespace}/{name} created"),
                Err(e) if is_status(&e, 409) => {
                    anyhow::bail!("cluster {namespace}/{name} already exists")
                }
                Err(e) => anyhow::bail!(
                    "cannot create cluster {namespace}/{name}: {}",
                    api_message(&e)
                ),
            }
            if wait {
                wait_ready(&api, &namespace, &name, Duration::from_secs(timeout_secs)).await?;
            }
            Ok(())
        }
        ClusterCommand::List {
            namespace,
            all_namespaces,
        } => {
            let api: Api<Cluster> = if all_namespaces {
                Api::all(client)
            } else {
                Api::namespaced(client, &namespace)
            };
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| anyhow::anyhow!("cannot list clusters: {}", api_message(&e)))?;
            if list.items.is_empty() {
                if all_namespaces {
                    eprintln!("No clusters found.");
                } else {
                    eprintln!("No clusters found in {namespace}.");
                }
                return Ok(());
            }
            let rows: Vec<[String; 5]> = list
                .items
                .iter()
                .map(|c| {
                    let status = c.status.clone().unwrap_or_default();
                    [
                        c.metadata.namespace.clone().unwrap_or_default(),
                        c.metadata.name.clone().unwrap_or_default(),
                        phase(c).to_owned(),
                        status.kubernetes_version.unwrap_or_else(|| "<none>".into()),
                        status.endpoint.unwrap_or_else(|| "<none>".into()),
                    ]
                })
                .collect();
            let header = ["NAMESPACE", "NAME", "PHASE", "VERSION", "ENDPOINT"];
            let skip = usize::from(!all_namespaces);
            let widths: Vec<usize> = (0..5)
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].len())
                        .chain([header[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: Vec<&str>| {
                let mut out = String::new();
                for (i, cell) in cells.iter().enumerate().skip(skip) {
                    if i == 4 {
                        out.push_str(cell);
                    } else {
                        out.push_str(&format!("{cell:<w$}   ", w = widths[i]));
                    }
                }
                println!("{}", out.trim_end());
            };
            line(header.to_vec());
            for r in &rows {
                line(r.iter().map(String::as_str).collect());
            }
            Ok(())
        }
        ClusterCommand::Delete {
            name,
            namespace,
            wait,
            timeout_secs,
        } => {
            let api: Api<Cluster> = Api::namespaced(client, &namespace);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => println!("cluster {namespace}/{name} deleted"),
                Err(e) if is_status(&e, 404) => {
                    anyhow::bail!("cluster {namespace}/{name} not found")
                }
                Err(e) => anyhow::bail!(
                    "cannot delete cluster {namespace}/{name}: {}",
                    api_message(&e)
                ),
            }
            if wait {
                wait_gone(&api, &namespace, &name, Duration::from_secs(timeout_secs)).await?;
            }
            Ok(())
        }
    }
}

const POLL: Duration = Duration::from_millis(500);

async fn wait_ready(
    api: &Api<Cluster>,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let c = api
            .get_opt(name)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot read cluster {namespace}/{name}: {}",
                    api_message(&e)
                )
            })?
            .with_context(|| format!("cluster {namespace}/{name} was deleted while waiting"))?;
        if is_ready(&c) {
            eprintln!("cluster {namespace}/{name} is Ready");
            return Ok(());
        }
        let now = format!("{}: {}", phase(&c), ready_message(&c));
        if now != last {
            eprintln!("waiting for cluster {namespace}/{name}: {now}");
            last = now;
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "cluster {namespace}/{name} is not Ready after {}s: {}",
                timeout.as_secs(),
                ready_message(&c)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_gone(
    api: &Api<Cluster>,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let Some(c) = api.get_opt(name).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot read cluster {namespace}/{name}: {}",
                api_message(&e)
            )
        })?
        else {
            eprintln!("cluster {namespace}/{name} is gone");
            return Ok(());
        };
        let now = format!("{}: {}", phase(&c), ready_message(&c));
        if now != last {
            eprintln!("waiting for cluster {namespace}/{name} to be torn down: {now}");
            last = now;
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "cluster {namespace}/{name} is still there after {}s: {}",
                timeout.as_secs(),
                ready_message(&c)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `berth kubeconfig NAME`: prints the admin kubeconfig of a Ready cluster.
pub(crate) async fn kubeconfig(args: KubeconfigArgs, root: &RootArgs) -> anyhow::Result<()> {
    let client = root_client(root).await?;
    let (namespace, name) = (&args.namespace, &args.name);
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), namespace);
    let cluster = clusters
        .get_opt(name)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read cluster {namespace}/{name}: {}",
                api_message(&e)
            )
        })?
        .with_context(|| format!("cluster {namespace}/{name} not found"))?;
    if cluster.metadata.deletion_timestamp.is_some() {
        anyhow::bail!("cluster {namespace}/{name} is being deleted");
    }
    if !is_ready(&cluster) {
        anyhow::bail!(
            "cluster {namespace}/{name} is not Ready yet: {}",
            ready_message(&cluster)
        );
    }
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, namespace);
    let secret_name = format!("{name}-kubeconfig");
    let secret = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read Secret {namespace}/{secret_name}: {}",
                api_message(&e)
            )
        })?
        .with_context(|| {
            format!("cluster {namespace}/{name} is Ready but its Secret {secret_name} is missing")
        })?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get("value"))
        .with_context(|| {
            format!("Secret {namespace}/{secret_name} has no kubeconfig (key `value`)")
        })?;
    let text = String::from_utf8(value.0.clone()).with_context(|| {
        format!("the kubeconfig in Secret {namespace}/{secret_name} is not text")
    })?;
    print!("{text}");
    Ok(())
}
