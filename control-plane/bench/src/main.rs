//! `berth-bench`: benchmarks that run Berth and a peer (or its own lower layer) in the same run
//! and print both.
//!
//! It is a binary of its own, not a `berth` subcommand, so that the etcd client it compares
//! against (gRPC code generated with `protoc`) is not a build dependency of the control plane.

mod api_bench;
mod crd_bench;
mod etcd;
mod scheduler_bench;
mod stats;
mod store_bench;
mod tenants_bench;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth-bench",
    about = "Berth benchmarks, measured side by side with a peer"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Berth's store (embedded, in-process) against etcd (over gRPC on loopback).
    Store(store_bench::Args),
    /// The API server over HTTP against its own store's raw put throughput.
    Api(api_bench::Args),
    /// The hosted scheduler and controllers rolling out a large Deployment onto simulated
    /// nodes, against the scheduler core alone.
    Scheduler(scheduler_bench::Args),
    /// Creates of custom objects (a CRD with a schema and CEL rules) against creates of
    /// ConfigMaps of the same size.
    Crd(crd_bench::Args),
    /// Tenants sharing one server: a noisy neighbour against a steady tenant alone, and
    /// creating many tenant clusters (throughput and memory).
    Tenants(tenants_bench::Args),
    /// Internal: load keys into a fresh store in this process and print its RSS.
    #[command(hide = true)]
    StoreMemory {
        #[arg(long)]
        keys: u64,
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.bench {
            Bench::Store(args) => store_bench::run(args).await,
            Bench::Api(args) => api_bench::run(args).await,
            Bench::Scheduler(args) => scheduler_bench::run(args).await,
            Bench::Tenants(args) => tenants_bench::run(args).await,
            Bench::Crd(args) => crd_bench::run(args).await,
            Bench::StoreMemory { keys, dir } => store_bench::memory_child(keys, &dir).await,
        }
    })
}
