//! `berth`: one binary for the control plane (`berth server`), its tools and its benchmarks.
//!
//! This file only parses flags and hands over to the modules that wire the libraries together.

mod cli;
mod member;
mod server;
mod simulate;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Berth: a multi-tenant Kubernetes control plane"
)]
struct Cli {
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Send OpenTelemetry traces (OTLP over HTTP) to this collector, e.g. `http://127.0.0.1:4318`.
    /// Off unless set.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a control-plane replica: the API server on its embedded, replicated store.
    Server(Box<server::ServerArgs>),
    /// Add, remove or list store replicas of a running cluster.
    Member {
        #[command(subcommand)]
        command: member::MemberCommand,
        /// Raft listener (`host:port`) of any replica.
        #[arg(long, default_value = "127.0.0.1:2380")]
        endpoint: String,
    },
    /// Test tool: simulate N nodes (a kubelet that runs nothing) in a cluster, for tests and
    /// benchmarks of the scheduler and controllers.
    SimulateNodes(simulate::SimulateArgs),
    /// Create, list or delete tenant clusters (Cluster objects of the root cluster).
    Cluster {
        #[command(subcommand)]
        command: cli::ClusterCommand,
        #[command(flatten)]
        root: cli::RootArgs,
    },
    /// Print the admin kubeconfig of a Ready tenant cluster.
    Kubeconfig {
        #[command(flatten)]
        args: cli::KubeconfigArgs,
        #[command(flatten)]
        root: cli::RootArgs,
    },
}

/// Parses `1=127.0.0.1:2380,2=127.0.0.2:2380`.
pub(crate) fn parse_peers(s: &str) -> anyhow::Result<std::collections::BTreeMap<u64, String>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (id, addr) = p
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("peer {p:?} is not ID=HOST:PORT"))?;
            let id: u64 = id
                .parse()
                .map_err(|_| anyhow::anyhow!("peer id {id:?} is not a number"))?;
            addr.parse::<SocketAddr>()
                .map_err(|_| anyhow::anyhow!("peer address {addr:?} is not HOST:PORT"))?;
            Ok((id, addr.to_owned()))
        })
        .collect()
}

/// Sets up logs (stderr) and, when an OTLP endpoint is given, trace export. Returns the trace
/// provider, which must be shut down to flush the last spans.
fn init_telemetry(
    format: &str,
    otlp: Option<&str>,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Each output has its own filter. The store's spans are at debug level: logs leave them
    // out (they cost a few per cent of a busy server's CPU), exported traces keep them so a
    // request's trace reaches down to its store write.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,openraft=warn".into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if format == "json" {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let registry = tracing_subscriber::registry().with(fmt.with_filter(filter));
    let Some(endpoint) = otlp.filter(|e| !e.is_empty()) else {
        registry.init();
        return Ok(None);
    };
    let url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up trace export to {url}: {e}"))?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("berth")
                .build(),
        )
        .build();
    let tracer = provider.tracer("berth");
    let traced = tracing_subscriber::EnvFilter::new("info,store=debug,openraft=warn");
    registry
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(traced),
        )
        .init();
    tracing::info!(endpoint = %url, "exporting traces");
    Ok(Some(provider))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let traces = init_telemetry(&cli.log_format, cli.otlp_endpoint.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(*args).await,
            Command::Member { command, endpoint } => member::run(command, &endpoint).await,
            Command::SimulateNodes(args) => simulate::run(args).await,
            Command::Cluster { command, root } => cli::cluster(command, &root).await,
            Command::Kubeconfig { args, root } => cli::kubeconfig(args, &root).await,
        }
    });
    if let Some(provider) = traces {
        let _ = provider.shutdown();
    }
    result
}

/// A data directory path from a flag, made absolute so that messages name it unambiguously.
pub(crate) fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}
