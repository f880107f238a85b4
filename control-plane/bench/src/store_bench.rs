//! `berth-bench store`: Berth's store against etcd, same workload, same durability, same run.
//!
//! Berth runs embedded in this process (a single-replica raft store on disk, fsync per batch);
//! etcd 3.4 runs as a separate process on loopback (fsync per batch, its default) and is reached
//! over gRPC. The table says so, because the in-process side saves a network round trip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use store::{RaftStore, RangeRequest, Store, WatchRequest, WatchResponse};

use crate::etcd::Etcd;
use crate::stats::{Samples, fan_out, ms, rss_bytes};

const VALUE_BYTES: usize = 256;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the stores keep their data; must be a real disk (not tmpfs) for fsync to mean
    /// anything. Default: a fresh directory under the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The etcd binary.
    #[arg(long, default_value = "etcd")]
    etcd: String,
    /// Keys loaded for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    memory_keys: u64,
    /// Watchers for the watch-delivery measurement.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Tiny counts, for a smoke test of the benchmark itself.
    #[arg(long)]
    quick: bool,
}

/// One side of the comparison.
#[derive(Clone)]
enum Target {
    Berth(Arc<dyn Store>),
    Etcd(Box<etcd_client::Client>),
}

impl Target {
    async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Target::Berth(store) => {
                store.put(&key, &value).await?;
            }
            Target::Etcd(client) => {
                client.clone().put(key, value, None).await?;
            }
        }
        Ok(())
    }

    /// A linearizable range read; returns the number of keys.
    async fn range(&self, prefix: &[u8]) -> anyhow::Result<usize> {
        Ok(match self {
            Target::Berth(store) => store
                .range(RangeRequest::prefix(Bytes::copy_from_slice(prefix)))
                .await?
                .kvs
                .len(),
            Target::Etcd(client) => {
                let opts = etcd_client::GetOptions::new().with_prefix();
                client.clone().get(prefix, Some(opts)).await?.kvs().len()
            }
        })
    }

    /// The values written under `prefix` from now on.
    async fn watch(&self, prefix: &[u8]) -> anyhow::Result<BoxStream<'static, Vec<Vec<u8>>>> {
        Ok(match self {
            Target::Berth(store) => store
                .watch(WatchRequest::prefix(Bytes::copy_from_slice(prefix), None))
                .await?
                .filter_map(|item| async move {
                    match item {
                        Ok(WatchResponse::Events(events)) => {
                            Some(events.into_iter().map(|e| e.kv.value.to_vec()).collect())
                        }
                        _ => None,
                    }
                })
                .boxed(),
            Target::Etcd(client) => {
                let opts = etcd_client::WatchOptions::new().with_prefix();
                let stream = client.clone().watch(prefix, Some(opts)).await?;
                futures::stream::unfold(stream, |mut stream| async move {
                    let msg = stream.message().await.ok()??;
                    let values = msg
                        .events()
                        .iter()
                        .filter_map(|e| e.kv().map(|kv| kv.value().to_vec()));
                    Some((values.collect::<Vec<_>>(), stream))
                })
                .boxed()
            }
        })
    }
}

fn value(tag: u64) -> Vec<u8> {
    let mut v = vec![b'v'; VALUE_BYTES];
    v[..8].copy_from_slice(&tag.to_le_bytes());
    v
}

/// `ops` puts of 256-byte values spread over `writers` concurrent writers.
async fn puts(target: &Target, run: &str, writers: usize, ops: usize) -> anyhow::Result<Samples> {
    let (target, run) = (target.clone(), Arc::new(run.to_owned()));
    fan_out(writers, ops, move |w, i| {
        let (target, run) = (target.clone(), Arc::clone(&run));
        async move {
            target
                .put(
                    format!("/bench/put/{run}/{w}/{i}").into_bytes(),
                    value(i as u64),
                )
                .await
        }
    })
    .await
}

/// Sequential linearizable reads of a 1,000-key range.
async fn ranges(target: &Target, reads: usize) -> anyhow::Result<Samples> {
    let keys = 1000;
    let load: Vec<_> = (0..keys)
        .map(|i| target.put(format!("/bench/range/{i:04}").into_bytes(), value(i)))
        .collect();
    futures::stream::iter(load)
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(reads);
    for _ in 0..reads {
        let t = Instant::now();
        let n = target.range(b"/bench/range/").await?;
        lat.push(t.elapsed());
        anyhow::ensure!(
            n == keys as usize,
            "range returned {n} keys, expected {keys}"
        );
    }
    Ok(Samples::new(lat, start.elapsed()))
}

/// `watchers` watchers on one prefix; a writer puts `events` values stamped with the time, one
/// every `interval`; every watcher must receive every write. Returns delivery latencies.
async fn watch_delivery(
    target: &Target,
    watchers: usize,
    events: usize,
    interval: Duration,
) -> anyhow::Result<Samples> {
    let base = Instant::now();
    let mut streams = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        streams.push(target.watch(b"/bench/watch/").await?);
    }
    let mut tasks = Vec::with_capacity(watchers);
    for mut stream in streams {
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(events);
            while lat.len() < events {
                let Some(values) = stream.next().await else {
                    break;
                };
                let now = base.elapsed();
                for v in values {
                    let sent = Duration::from_nanos(u64::from_le_bytes(v[..8].try_into().unwrap()));
                    lat.push(now.saturating_sub(sent));
                }
            }
            lat
        }));
    }
    let start = Instant::now();
    let mut tick = tokio::time::interval(interval);
    for i in 0..events {
        tick.tick().await;
        let stamp = base.elapsed().as_nanos() as u64;
        target
            .put(format!("/bench/watch/{i}").into_bytes(), value(stamp))
            .await?;
    }
    let mut all = Vec::with_capacity(watchers * events);
    for t in tasks {
        let lat = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .context("watchers fell behind")??;
        anyhow::ensure!(
            lat.len() == events,
            "a watcher received {} of {events} events",
            lat.len()
        );
        all.extend(lat);
    }
    Ok(Samples::new(all, start.elapsed()))
}

/// The cost of one small write followed by `fdatasync` on the benchmark's disk.
fn fsync_floor(dir: &Path, rounds: usize) -> anyhow::Result<Samples> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::create(dir.join("fsync-probe"))?;
    let mut lat = Vec::with_capacity(rounds);
    let start = Instant::now();
    for i in 0..rounds {
        let t = Instant::now();
        file.write_at(&value(i as u64), (i * VALUE_BYTES) as u64)?;
        file.sync_data()?;
        lat.push(t.elapsed());
    }
    Ok(Samples::new(lat, start.elapsed()))
}

/// Loads `keys` keys with 256 writers.
async fn load(target: &Target, keys: u64) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let writers = 256u64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < keys {
                target
                    .put(format!("/bench/mem/{i:08}").into_bytes(), value(i))
                    .await?;
                i += writers;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}

/// Run in a child process: a fresh store loaded with `keys` keys; prints `rss=<bytes>`.
pub(crate) async fn memory_child(keys: u64, dir: &Path) -> anyhow::Result<()> {
    let store = RaftStore::open_single(dir.join("berth-mem")).await?;
    let target = Target::Berth(Arc::new(store.clone()));
    let took = load(&target, keys).await?;
    let rss = rss_bytes(std::process::id()).context("no /proc")?;
    println!("rss={rss} load_secs={:.1}", took.as_secs_f64());
    store.shutdown().await;
    Ok(())
}

struct Row {
    name: String,
    berth: Samples,
    etcd: Samples,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?.keep()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let q = args.quick;
    let say = |s: &str| {
        eprintln!("[berth-bench] {s}");
        let _ = std::io::stderr().flush();
    };
    say(&format!("data in {}", dir.display()));

    let berth_store = RaftStore::open_single(dir.join("berth")).await?;
    let berth = Target::Berth(Arc::new(berth_store.clone()));
    let etcd_proc = Etcd::start(&args.etcd, &dir).await?;
    let etcd = Target::Etcd(Box::new(etcd_proc.connect().await?));

    let floor = fsync_floor(&dir, if q { 20 } else { 300 })?;
    say(&format!("fsync floor: mean {} ms", ms(floor.mean())));

    let mut rows = Vec::new();
    for (writers, ops) in [
        (1usize, if q { 20 } else { 500 }),
        (16, if q { 160 } else { 8_000 }),
        (256, if q { 512 } else { 40_000 }),
    ] {
        say(&format!("puts with {writers} writers ({ops} each side)"));
        let b = puts(&berth, &format!("w{writers}"), writers, ops).await?;
        let e = puts(&etcd, &format!("w{writers}"), writers, ops).await?;
        rows.push(Row {
            name: format!("put 256 B, {writers} writer(s)"),
            berth: b,
            etcd: e,
        });
    }
    say("range reads of 1,000 keys");
    let reads = if q { 5 } else { 200 };
    rows.push(Row {
        name: "range 1,000 keys (linearizable)".into(),
        berth: ranges(&berth, reads).await?,
        etcd: ranges(&etcd, reads).await?,
    });

    let watchers = if q { 10 } else { args.watchers };
    let events = if q { 10 } else { 200 };
    say(&format!(
        "watch delivery: {watchers} watchers, {events} writes at 100/s"
    ));
    let wb = watch_delivery(&berth, watchers, events, Duration::from_millis(10)).await?;
    let we = watch_delivery(&etcd, watchers, events, Duration::from_millis(10)).await?;

    let mem_keys = if q {
        args.memory_keys.min(2_000)
    } else {
        args.memory_keys
    };
    let mut memory = None;
    if mem_keys > 0 {
        say(&format!(
            "memory: loading {mem_keys} keys of 256 B into a fresh Berth process and into etcd"
        ));
        let exe = std::env::current_exe()?;
        let out = std::process::Command::new(exe)
            .args(["store-memory", "--keys", &mem_keys.to_string(), "--dir"])
            .arg(&dir)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "memory child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let berth_rss: u64 = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("rss="))
            .and_then(|v| v.parse().ok())
            .context("memory child printed no rss")?;
        let etcd_before = rss_bytes(etcd_proc.pid()).unwrap_or(0);
        load(&etcd, mem_keys).await?;
        let etcd_rss = rss_bytes(etcd_proc.pid()).context("no etcd rss")?;
        memory = Some((berth_rss, etcd_before, etcd_rss));
    }

    println!();
    println!(
        "Store benchmark: Berth embedded in-process (raft + redb, 1 replica, fsync per batch)"
    );
    println!(
        "vs etcd {} over gRPC on 127.0.0.1 (fsync per batch). Same workload, same run.",
        etcd_version(&args.etcd)
    );
    println!();
    println!(
        "| workload | Berth ops/s | Berth p50 ms | Berth p99 ms | etcd ops/s | etcd p50 ms | etcd p99 ms | Berth/etcd ops/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2}x |",
            r.name,
            r.berth.throughput(),
            ms(r.berth.quantile(0.5)),
            ms(r.berth.quantile(0.99)),
            r.etcd.throughput(),
            ms(r.etcd.quantile(0.5)),
            ms(r.etcd.quantile(0.99)),
            r.berth.throughput() / r.etcd.throughput(),
        );
    }
    println!(
        "| watch delivery, {watchers} watchers × {events} writes | {} deliveries | {} | {} | {} deliveries | {} | {} | |",
        wb.count(),
        ms(wb.quantile(0.5)),
        ms(wb.quantile(0.99)),
        we.count(),
        ms(we.quantile(0.5)),
        ms(we.quantile(0.99)),
    );
    println!();
    let one = &rows[0];
    println!(
        "fsync floor (256 B write + fdatasync, same disk): mean {} ms; Berth 1-writer put mean {} ms = {:.2}x the floor; etcd {} ms = {:.2}x",
        ms(floor.mean()),
        ms(one.berth.mean()),
        one.berth.mean().as_secs_f64() / floor.mean().as_secs_f64(),
        ms(one.etcd.mean()),
        one.etcd.mean().as_secs_f64() / floor.mean().as_secs_f64(),
    );
    if let Some((berth_rss, etcd_before, etcd_rss)) = memory {
        println!(
            "memory with {mem_keys} keys of 256 B: Berth process RSS {} MiB; etcd RSS {} MiB (after this run's other workloads; {} MiB before loading)",
            berth_rss >> 20,
            etcd_rss >> 20,
            etcd_before >> 20
        );
    }
    berth_store.shutdown().await;
    drop(etcd_proc);
    Ok(())
}

fn etcd_version(binary: &str) -> String {
    std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("etcd Version: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "(unknown version)".into())
}
