//! `berth`: one binary for the control plane (`berth server`), its tools and its benchmarks.
//!
//! This file only parses flags and hands over to the modules that wire the libraries together.

mod member;
mod server;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a control-plane replica: the API server on its embedded, replicated store.
    Server(server::ServerArgs),
    /// Add, remove or list store replicas of a running cluster.
    Member {
        #[command(subcommand)]
        command: member::MemberCommand,
        /// Raft listener (`host:port`) of any replica.
        #[arg(long, default_value = "127.0.0.1:2380")]
        endpoint: String,
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,openraft=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Member { command, endpoint } => member::run(command, &endpoint).await,
        }
    })
}

/// A data directory path from a flag, made absolute so that messages name it unambiguously.
pub(crate) fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}
