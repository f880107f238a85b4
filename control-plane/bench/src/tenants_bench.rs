//! `berth-bench tenants`: many tenants sharing one server, each measurement side by side with
//! its own baseline.
//!
//! - **Noisy neighbour.** Tenant B runs a steady load (creates and gets at a fixed rate) alone,
//!   then again while tenant A floods the server with writes from many clients and holds many
//!   watches open. B's latency with A flooding is reported as a ratio of its latency alone.
//! - **Scale.** Tenant clusters are created through the management API (`Cluster` objects in the
//!   root cluster, provisioned by the server's cluster controller) until N exist; creation
//!   throughput, and the server's RSS before and after, per cluster.
//!
//! A real `berth server` process (single replica, on disk, controllers on) serves loopback.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::api_bench::{Tls, https_client, start_server};
use crate::stats::{Samples, cpu_time, ms, rss_bytes};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the server keeps its data. Default: a temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `berth` binary; default: next to this one.
    #[arg(long)]
    berth: Option<PathBuf>,
    /// Tenant clusters created for the scale measurement.
    #[arg(long, default_value_t = 1_000)]
    clusters: usize,
    /// Tenant B's steady request rate (per second).
    #[arg(long, default_value_t = 40)]
    steady_rate: u32,
    /// How long each phase of the noisy-neighbour measurement lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds of the noisy-neighbour measurement: each is a phase with B alone, then one with A
    /// flooding; each side's latencies are pooled over the rounds. Five rounds give each side
    /// 2,000 requests, so one stall of this shared machine does not decide a p99.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Tenant A's concurrent writers.
    #[arg(long, default_value_t = 64)]
    flood_writers: usize,
    /// Tenant A's open watches.
    #[arg(long, default_value_t = 300)]
    flood_watches: usize,
    /// Tenant A's watches start without a resourceVersion, so each is first sent every object
    /// A has (as `kubectl get -w` and a restarting informer's watch are): a storm of initial
    /// events at the start of each flood. By default they start from a list's resourceVersion.
    #[arg(long)]
    watch_initial_events: bool,
    /// Run only one measurement: `noisy` or `scale`.
    #[arg(long)]
    only: Option<String>,
    /// Tiny counts, for a smoke test of the benchmark itself.
    #[arg(long)]
    quick: bool,
    /// An extra flag for `berth server` (repeat for several).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

/// A tenant cluster as its users see it.
struct Tenant {
    base: String,
    tls: Tls,
}

fn cluster(name: &str) -> Value {
    json!({"apiVersion": "berth.dev/v1", "kind": "Cluster", "metadata": {"name": name},
        "spec": {"cloud": "local"}})
}

/// Creates `names` through the root API, `concurrency` at a time, and waits until each is Ready.
async fn create_clusters(
    root: &reqwest::Client,
    base: &str,
    names: Vec<String>,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let url = format!("{base}/apis/berth.dev/v1/namespaces/default/clusters");
    let total = names.len();
    futures::stream::iter(names)
        .map(|name| {
            let (root, url) = (root.clone(), url.clone());
            async move {
                let r = root.post(&url).json(&cluster(&name)).send().await?;
                anyhow::ensure!(
                    r.status().as_u16() == 201,
                    "creating {name}: {}",
                    r.status()
                );
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = 0;
    loop {
        let list: Value = root.get(&url).send().await?.json().await?;
        let ready = list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|c| c.pointer("/status/phase").and_then(Value::as_str) == Some("Ready"))
                    .count()
            })
            .unwrap_or_default();
        if ready >= total {
            return Ok(start.elapsed());
        }
        if ready / 100 != last / 100 {
            eprintln!(
                "  {ready}/{total} clusters Ready after {:.1}s",
                start.elapsed().as_secs_f64()
            );
        }
        last = ready;
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready}/{total} clusters became Ready"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Tenant `name`'s admin kubeconfig, from the Secret the cluster controller wrote.
async fn tenant(root: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<Tenant> {
    use base64::Engine;
    let secret: Value = root
        .get(format!(
            "{base}/api/v1/namespaces/default/secrets/{name}-kubeconfig"
        ))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let b64 = secret
        .pointer("/data/value")
        .and_then(Value::as_str)
        .context("the kubeconfig Secret has no data.value")?;
    let yaml = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64)?)?;
    let doc: Value = serde_saphyr::from_str(&yaml)?;
    Ok(Tenant {
        base: doc
            .pointer("/clusters/0/cluster/server")
            .and_then(Value::as_str)
            .context("the kubeconfig has no server")?
            .to_owned(),
        tls: Tls::from_kubeconfig(&yaml)?,
    })
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
        "data": {"payload": "x".repeat(512)}})
}

/// Latencies of a steady load: all requests, and creates and gets apart.
struct Steady {
    all: Samples,
    creates: Samples,
    gets: Samples,
}

impl Steady {
    fn empty() -> Steady {
        Steady {
            all: Samples::default(),
            creates: Samples::default(),
            gets: Samples::default(),
        }
    }

    /// Adds another phase of the same load.
    fn merge(&mut self, other: Steady) {
        self.all.merge(other.all);
        self.creates.merge(other.creates);
        self.gets.merge(other.gets);
    }
}

/// `rate` requests a second for `duration`, alternating creates and gets; latencies of each.
/// A get reads the object of the latest create answered, so every request is a hit.
async fn steady(t: &Tenant, rate: u32, duration: Duration, tag: &str) -> anyhow::Result<Steady> {
    let client = https_client(&t.tls, 16)?;
    let url = format!("{}/api/v1/namespaces/default/configmaps", t.base);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One more than the index of the latest create answered (0: none yet).
    let answered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut i = 0u64;
    while start.elapsed() < duration {
        tick.tick().await;
        let create = i.is_multiple_of(2);
        let index = if create {
            i / 2
        } else {
            match answered.load(Ordering::Acquire) {
                // Nothing of this phase answered yet: no get this tick.
                0 => continue,
                n => n - 1,
            }
        };
        i += 1;
        let (client, url, answered) = (client.clone(), url.clone(), Arc::clone(&answered));
        let name = format!("{tag}-{index}");
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = if create {
                // The field manager names the phase in the audit log's request URI, where the
                // server-timed figures find B's creates of this phase.
                client
                    .post(format!("{url}?fieldManager=bench-{tag}"))
                    .json(&configmap(&name))
                    .send()
                    .await?
            } else {
                client.get(format!("{url}/{name}")).send().await?
            };
            let code = r.status().as_u16();
            r.bytes().await?;
            let latency = sent.elapsed();
            anyhow::ensure!(code == 200 || code == 201, "tenant B got {code} for {name}");
            if create {
                answered.fetch_max(index + 1, Ordering::AcqRel);
            }
            anyhow::Ok((create, latency))
        }));
    }
    let (mut all, mut creates, mut gets) = (Vec::new(), Vec::new(), Vec::new());
    for t in tasks {
        let (create, latency) = t.await??;
        all.push(latency);
        if create {
            creates.push(latency)
        } else {
            gets.push(latency)
        }
    }
    let wall = start.elapsed();
    Ok(Steady {
        all: Samples::new(all, wall),
        creates: Samples::new(creates, wall),
        gets: Samples::new(gets, wall),
    })
}

/// What tenant A's flood achieved.
#[derive(Default)]
struct Flood {
    accepted: AtomicU64,
    throttled: AtomicU64,
    other: AtomicU64,
    watches: AtomicU64,
}

/// How tenant A floods.
#[derive(Clone, Copy)]
struct FloodPlan {
    writers: usize,
    watches: usize,
    /// Watches start without a resourceVersion (each is sent every existing object first).
    initial_events: bool,
}

/// Tenant A: `writers` loops creating as fast as they are answered, and `watches` open watches,
/// until `stop`. Names carry `round`, so each round creates new objects.
async fn flood(
    t: &Tenant,
    round: usize,
    plan: FloodPlan,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Arc<Flood>> {
    let FloodPlan {
        writers, watches, ..
    } = plan;
    let stats = Arc::new(Flood::default());
    let url = format!("{}/api/v1/namespaces/default/configmaps", t.base);
    // The watches start where a list leaves off, as informers' do (what earlier rounds created
    // is not sent again to each of them), unless the plan asks for initial events.
    let list: Value = https_client(&t.tls, 1)?
        .get(format!("{url}?limit=1"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let from = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .context("a list without a resourceVersion")?;
    let from = if plan.initial_events {
        String::new()
    } else {
        format!("&resourceVersion={from}")
    };
    let mut tasks = Vec::new();
    for w in 0..watches {
        let client = https_client(&t.tls, 0)?;
        let (url, stats, mut stop) = (url.clone(), Arc::clone(&stats), stop.clone());
        let from = from.clone();
        tasks.push(tokio::spawn(async move {
            let watch = client
                .get(format!("{url}?watch=true{from}&timeoutSeconds=600"))
                .send()
                .await;
            let Ok(response) = watch else { return };
            if !response.status().is_success() {
                stats.throttled.fetch_add(1, Ordering::Relaxed);
                return;
            }
            stats.watches.fetch_add(1, Ordering::Relaxed);
            let mut body = response.bytes_stream();
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    chunk = body.next() => if chunk.is_none() { return },
                }
            }
        }));
        if w % 50 == 49 {
            tokio::task::yield_now().await;
        }
    }
    let client = https_client(&t.tls, writers)?;
    for w in 0..writers {
        let (client, url, stats, stop) = (
            client.clone(),
            url.clone(),
            Arc::clone(&stats),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !*stop.borrow() {
                i += 1;
                let Ok(r) = client
                    .post(&url)
                    .json(&configmap(&format!("a{round}-{w}-{i}")))
                    .send()
                    .await
                else {
                    stats.other.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let counter = match r.status().as_u16() {
                    201 => &stats.accepted,
                    429 => &stats.throttled,
                    _ => &stats.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = r.bytes().await;
            }
        }));
    }
    tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
    });
    Ok(stats)
}

fn row(label: &str, s: &Samples) {
    println!(
        "{label:<34} {:>8} {:>10.0} {:>10} {:>10}",
        s.count(),
        s.throughput(),
        ms(s.quantile(0.5)),
        ms(s.quantile(0.99)),
    );
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let berth = match args.berth {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("berth"),
    };
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let (clusters, seconds, rate, rounds) = if args.quick {
        (3, 2, 10, 1)
    } else {
        (
            args.clusters,
            args.seconds,
            args.steady_rate,
            args.rounds.max(1),
        )
    };
    let (writers, watches) = if args.quick {
        (4, 5)
    } else {
        (args.flood_writers, args.flood_watches)
    };
    // The audit log gives each request's latency as the server measured it, apart from the
    // clients sharing this machine's cores.
    let audit_log = dir.join("audit.log");
    let mut server_args = args.server_args.clone();
    server_args.push(format!("--audit-log-path={}", audit_log.display()));
    let server = start_server(&berth, &dir, &server_args).await?;
    let pid = server.child.id();
    let root = https_client(&server.tls, 32)?;
    let base = server.base.clone();
    println!("berth-bench tenants: one berth server on loopback, controllers on");

    let run_noisy = args.only.as_deref() != Some("scale");
    let run_scale = args.only.as_deref() != Some("noisy");
    if run_noisy {
        noisy_neighbour(
            &root,
            &base,
            pid,
            &audit_log,
            rate,
            seconds,
            rounds,
            FloodPlan {
                writers,
                watches,
                initial_events: args.watch_initial_events,
            },
        )
        .await?;
    }
    if !run_scale {
        return Ok(());
    }

    // Scale.&root, &base, vec!["tenant-a".into(), "tenant-b".into()], 2).await?;
    let before = rss_bytes(pid).unwrap_or_default();
    let names: Vec<String> = (0..clusters).map(|i| format!("t{i:04}")).collect();
    let took = create_clusters(&root, &base, names, 16).await?;
    // Let the control loops of the new clusters start and settle.
    tokio::time::sleep(Duration::from_secs(if args.quick { 2 } else { 15 })).await;
    let after = rss_bytes(pid).unwrap_or_default();
    let idle_window = Duration::from_secs(if args.quick { 1 } else { 10 });
    let cpu_before = cpu_time(pid).unwrap_or_default();
    tokio::time::sleep(idle_window).await;
    let idle_cpu = cpu_time(pid).unwrap_or_default().saturating_sub(cpu_before);
    println!();
    println!("scale: {clusters} tenant clusters created through the management API");
    println!(
        "created and Ready in {:.1} s: {:.1} clusters/s",
        took.as_secs_f64(),
        clusters as f64 / took.as_secs_f64()
    );
    println!(
        "server RSS: {:.0} MiB before, {:.0} MiB after (target < 1024); {:.2} MiB per cluster (target < 1)",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1048576.0 / clusters as f64
    );
    println!(
        "server CPU while the {clusters} clusters sit idle: {:.1}% of a core",
        100.0 * idle_cpu.as_secs_f64() / idle_window.as_secs_f64()
    );
    Ok(())
}

/// The noisy-neighbour measurement: rounds of B alone, then B while A floods. Alternating
/// the two within the run, and pooling each side's requests, keeps a slow spell of this
/// shared machine (a stalled disk, another VM's burst) from landing on one side only, and gives
/// each p99 a thousand requests or more rather than a few hundred.
#[allow(clippy::too_many_arguments)]
async fn noisy_neighbour(
    root: &reqwest::Client,
    base: &str,
    pid: u32,
    audit_log: &std::path::Path,
    rate: u32,
    seconds: u64,
    rounds: usize,
    plan: FloodPlan,
) -> anyhow::Result<()> {
    create_clusters(root, base, vec!["tenant-a".into(), "tenant-b".into()], 2).await?;
    let a = Arc::new(tenant(root, base, "tenant-a").await?);
    let b = tenant(root, base, "tenant-b").await?;
    let phase = Duration::from_secs(seconds);
    // Warm connections and caches.
    steady(&b, rate, Duration::from_secs(1), "warm").await?;
    let (mut alone, mut noisy) = (Steady::empty(), Steady::empty());
    let (mut cpu_alone, mut cpu_noisy) = (Duration::ZERO, Duration::ZERO);
    let (mut accepted, mut throttled, mut flood_secs, mut watches_open) = (0, 0, 0.0, 0);
    for round in 0..rounds {
        let cpu0 = cpu_time(pid).unwrap_or_default();
        alone.merge(steady(&b, rate, phase, &format!("alone{round}")).await?);
        cpu_alone += cpu_time(pid).unwrap_or_default().saturating_sub(cpu0);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // A is another client, as it would be on another machine: its own thread and runtime,
        // so reading its watches does not delay B's requests inside this process.
        let (stats_tx, stats_rx) = tokio::sync::oneshot::channel();
        let a = Arc::clone(&a);
        let flood_thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for tenant A");
            runtime.block_on(async move {
                let mut stop = stop_rx.clone();
                match flood(&a, round, plan, stop_rx).await {
                    Ok(stats) => {
                        let _ = stats_tx.send(Ok(stats));
                        let _ = stop.wait_for(|s| *s).await;
                    }
                    Err(e) => {
                        let _ = stats_tx.send(Err(e));
                    }
                }
            });
        });
        let flood_stats = stats_rx.await??;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let flood_start = Instant::now();
        let (accepted0, throttled0) = (
            flood_stats.accepted.load(Ordering::Relaxed),
            flood_stats.throttled.load(Ordering::Relaxed),
        );
        let cpu1 = cpu_time(pid).unwrap_or_default();
        noisy.merge(steady(&b, rate, phase, &format!("noisy{round}")).await?);
        cpu_noisy += cpu_time(pid).unwrap_or_default().saturating_sub(cpu1);
        flood_secs += flood_start.elapsed().as_secs_f64();
        accepted += flood_stats.accepted.load(Ordering::Relaxed) - accepted0;
        throttled += flood_stats.throttled.load(Ordering::Relaxed) - throttled0;
        watches_open = flood_stats.watches.load(Ordering::Relaxed);
        stop_tx.send_replace(true);
        let _ = tokio::task::spawn_blocking(move || flood_thread.join()).await;
        // Let A's connections close before B is alone again.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!();
    println!(
        "noisy neighbour: tenant B at {rate} req/s (creates and gets); {rounds} rounds of {seconds} s alone, then {seconds} s with A flooding"
    );
    println!(
        "{:<34} {:>8} {:>10} {:>10} {:>10}",
        "", "requests", "req/s", "p50", "p99"
    );
    row("B alone", &alone.all);
    row("  creates", &alone.creates);
    row("  gets", &alone.gets);
    row("B while A floods", &noisy.all);
    row("  creates", &noisy.creates);
    row("  gets", &noisy.gets);
    println!(
        "A's flood: {} writers, {watches_open} watches open{}; {:.0} creates/s accepted, {:.0}/s refused with 429",
        plan.writers,
        if plan.initial_events {
            ", each sent every existing object first"
        } else {
            ""
        },
        accepted as f64 / flood_secs,
        throttled as f64 / flood_secs,
    );
    println!(
        "server CPU: {:.0}% of a core with B alone, {:.0}% while A floods (the bench's clients share the machine's cores)",
        100.0 * cpu_alone.as_secs_f64() / alone.all.wall.as_secs_f64(),
        100.0 * cpu_noisy.as_secs_f64() / noisy.all.wall.as_secs_f64(),
    );
    // The audit writer runs behind by up to its flush interval.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut server_alone, mut server_noisy) = (Samples::default(), Samples::default());
    for round in 0..rounds {
        server_alone.merge(audited(
            audit_log,
            "default:tenant-b",
            &format!("alone{round}"),
            alone.all.wall / rounds as u32,
        )?);
        server_noisy.merge(audited(
            audit_log,
            "default:tenant-b",
            &format!("noisy{round}"),
            noisy.all.wall / rounds as u32,
        )?);
    }
    row("B alone, as the server timed it", &server_alone);
    row("B while A floods, server-timed", &server_noisy);
    println!(
        "B's p99 with A flooding / alone, as the server timed it: {:.2}",
        server_noisy.quantile(0.99).as_secs_f64()
            / server_alone.quantile(0.99).as_secs_f64().max(1e-6)
    );
    let (noisy, alone) = (&noisy.all, &alone.all);
    let ratio = noisy.quantile(0.99).as_secs_f64() / alone.quantile(0.99).as_secs_f64().max(1e-6);
    println!("B's p99 with A flooding / alone: {ratio:.2} (target <= 2)");
    println!(
        "B's p50 with A flooding / alone: {:.2}",
        noisy.quantile(0.5).as_secs_f64() / alone.quantile(0.5).as_secs_f64().max(1e-6)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    Ok(())
}

/// The server-measured latencies (audit `latency`, e.g. `"1.234ms"`) of `cluster`'s steady
/// requests of phase `tag`: gets name a `tag-` object, creates carry `fieldManager=bench-tag`.
fn audited(
    path: &std::path::Path,
    cluster: &str,
    tag: &str,
    wall: Duration,
) -> anyhow::Result<Samples> {
    let bytes = std::fs::read(path)?;
    let (get, create) = (format!("/{tag}-"), format!("fieldManager=bench-{tag}"));
    let mut latencies = Vec::new();
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(event) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let uri = event["requestURI"].as_str().unwrap_or_default();
        if event["cluster"] != cluster || !(uri.contains(&get) || uri.ends_with(&create)) {
            continue;
        }
        if let Some(ms) = event["latency"]
            .as_str()
            .and_then(|l| l.strip_suffix("ms"))
            .and_then(|l| l.parse::<f64>().ok())
        {
            latencies.push(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    Ok(Samples::new(latencies, wall))
}
