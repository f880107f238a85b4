//! `berth-bench api`: the API server over HTTP against its own store, measured in one run.
//!
//! A real `berth server` process (single replica, on disk) serves the API on loopback; the
//! benchmark is its client. The raw store's put throughput is measured in the same run (embedded
//! in this process, same disk), so the API's cost over its store is a ratio, not a lone number.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use store::{RaftStore, Store};

use crate::stats::{Samples, cpu_time, fan_out, ms, rss_bytes};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the server and the raw store keep their data (a real disk). Default: a temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `berth` binary; default: next to this one.
    #[arg(long)]
    berth: Option<PathBuf>,
    /// ConfigMaps held for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    memory_objects: usize,
    /// Concurrent watches.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Tiny counts, for a smoke test of the benchmark itself.
    #[arg(long)]
    quick: bool,
    /// Only the creates, the raw store (the throughput ratio) and the CPU per create, e.g. while
    /// profiling; `--memory-objects` sizes the creates whose CPU is measured.
    #[arg(long)]
    creates_only: bool,
    /// An extra flag for `berth server` (repeat for several), e.g. `--server-arg=--controllers=false`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    /// The CA clients trust and the admin's client certificate.
    pub(crate) tls: Tls,
}

/// What a client needs to reach a cluster: the CA that verifies the server and a client
/// certificate (PEM).
#[derive(Clone, Debug, Default)]
pub(crate) struct Tls {
    pub(crate) ca_pem: String,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl Tls {
    /// The credentials of a kubeconfig (inline data, as Berth writes them).
    pub(crate) fn from_kubeconfig(yaml: &str) -> anyhow::Result<Tls> {
        use base64::Engine;
        let doc: Value = serde_saphyr::from_str(yaml)?;
        let field = |pointer: &str| -> anyhow::Result<String> {
            let b64 = doc
                .pointer(pointer)
                .and_then(Value::as_str)
                .with_context(|| format!("the kubeconfig has no {pointer}"))?;
            Ok(String::from_utf8(
                base64::engine::general_purpose::STANDARD.decode(b64)?,
            )?)
        };
        Ok(Tls {
            ca_pem: field("/clusters/0/cluster/certificate-authority-data")?,
            cert_pem: field("/users/0/user/client-certificate-data")?,
            key_pem: field("/users/0/user/client-key-data")?,
        })
    }
}

/// An HTTPS client with `tls` (HTTP/1.1, as most clients speak).
pub(crate) fn https_client(tls: &Tls, idle_per_host: usize) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(tls, false)?
        .pool_max_idle_per_host(idle_per_host)
        .build()?)
}

/// An HTTPS client with `tls` that speaks HTTP/2 (ALPN `h2`): all its requests share one
/// connection as streams, as client-go's (kubectl's, controllers') do.
pub(crate) fn https2_client(tls: &Tls) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(tls, true)?.http2_prior_knowledge().build()?)
}

fn client_builder(tls: &Tls, h2: bool) -> anyhow::Result<reqwest::ClientBuilder> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(tls.ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let chain =
        CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    if h2 {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .tcp_nodelay(true))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) async fn start_server(
    berth: &Path,
    dir: &Path,
    extra: &[String],
) -> anyhow::Result<Server> {
    let (api, raft) = (free_port()?, free_port()?);
    let log = std::fs::File::create(dir.join("server.log"))?;
    let child = Command::new(berth)
        .args(["server", "--data-dir"])
        .arg(dir.join("server"))
        .args([
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--raft-listen",
            &format!("127.0.0.1:{raft}"),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {}; build it with cargo build --release -p berth",
                berth.display()
            )
        })?;
    let mut server = Server {
        child,
        base: format!("https://127.0.0.1:{api}"),
        tls: Tls::default(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let kubeconfig = dir.join("server/admin.kubeconfig");
    let mut last_error = String::from("no kubeconfig yet");
    loop {
        if let Ok(tls) = std::fs::read_to_string(&kubeconfig)
            .map_err(anyhow::Error::from)
            .and_then(|yaml| Tls::from_kubeconfig(&yaml))
        {
            let client = https_client(&tls, 1)?;
            match client
                .get(format!("{}/api/v1/namespaces/default", server.base))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    server.tls = tls;
                    return Ok(server);
                }
                Ok(r) => last_error = format!("answered {}", r.status()),
                Err(e) => last_error = format!("{e:?}"),
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "berth server did not come up ({last_error}); see {}",
            dir.join("server.log").display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"payload": "x".repeat(1024)}})
}

async fn create_namespace(client: &reqwest::Client, base: &str, ns: &str) -> anyhow::Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let r = client
        .post(format!("{base}/api/v1/namespaces"))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "creating namespace {ns}: {}",
        r.status()
    );
    Ok(())
}

/// `total` creates of 1 KiB ConfigMaps in `ns` from `clients` concurrent clients.
async fn creates(
    client: &reqwest::Client,
    base: &str,
    ns: &str,
    clients: usize,
    total: usize,
) -> anyhow::Result<Samples> {
    let url = Arc::new(format!("{base}/api/v1/namespaces/{ns}/configmaps"));
    let client = client.clone();
    fan_out(clients, total, move |c, i| {
        let (client, url) = (client.clone(), Arc::clone(&url));
        async move {
            let r = client
                .post(url.as_str())
                .json(&configmap(&format!("cm-{c}-{i}")))
                .send()
                .await?;
            anyhow::ensure!(r.status().as_u16() == 201, "create answered {}", r.status());
            r.bytes().await?;
            Ok(())
        }
    })
    .await
}

async fn gets(
    client: &reqwest::Client,
    base: &str,
    ns: &str,
    clients: usize,
    total: usize,
) -> anyhow::Result<Samples> {
    let base = Arc::new(format!("{base}/api/v1/namespaces/{ns}/configmaps"));
    let client = client.clone();
    fan_out(clients, total, move |c, i| {
        let (client, base) = (client.clone(), Arc::clone(&base));
        async move {
            let r = client
                .get(format!("{base}/cm-{c}-{}", i % 10))
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "get answered {}", r.status());
            r.bytes().await?;
            Ok(())
        }
    })
    .await
}

async fn lists(
    client: &reqwest::Client,
    base: &str,
    ns: &str,
    expect: usize,
    rounds: usize,
) -> anyhow::Result<Samples> {
    let start = Instant::now();
    let mut lat = Vec::new();
    for _ in 0..rounds {
        // Latency is until the whole answer has arrived, as `curl -w %{time_total}` counts
        // it; decoding it is the client's work, checked after the clock stops.
        let t = Instant::now();
        let bytes = client
            .get(format!("{base}/api/v1/namespaces/{ns}/configmaps"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        lat.push(t.elapsed());
        let body: Value = serde_json::from_slice(&bytes)?;
        // Every namespace also holds `kube-root-ca.crt` (the root CA publisher's).
        let n = body["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|i| i["metadata"]["name"] != "kube-root-ca.crt")
                .count()
        });
        anyhow::ensure!(n == expect, "list returned {n} items, expected {expect}");
    }
    Ok(Samples::new(lat, start.elapsed()))
}

/// `watchers` watches on one namespace; `events` creates stamped with the send time.
async fn watches(base: &str, tls: &Tls, watchers: usize, events: usize) -> anyhow::Result<Samples> {
    let clock = Instant::now();
    create_namespace(&https_client(tls, 1)?, base, "bench-watch").await?;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        // One connection per watch, as informers in separate processes would have.
        let client = https_client(tls, 0)?;
        let url = format!(
            "{base}/api/v1/namespaces/bench-watch/configmaps?watch=true&timeoutSeconds=120"
        );
        let response = client.get(url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "watch answered {}",
            response.status()
        );
        tasks.push(tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut buf = Vec::new();
            let mut lat = Vec::with_capacity(events);
            while lat.len() < events {
                let Some(chunk) = body.next().await else {
                    break;
                };
                buf.extend_from_slice(&chunk?);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let event: Value = serde_json::from_slice(&line)?;
                    if let Some(sent) = event.pointer("/object/data/sent").and_then(Value::as_str) {
                        let sent = Duration::from_nanos(sent.parse()?);
                        lat.push(clock.elapsed().saturating_sub(sent));
                    }
                }
            }
            anyhow::Ok(lat)
        }));
    }
    let client = https_client(tls, 1)?;
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..events {
        tick.tick().await;
        let sent = clock.elapsed().as_nanos().to_string();
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("w-{i}")}, "data": {"sent": sent}});
        let r = client
            .post(format!("{base}/api/v1/namespaces/bench-watch/configmaps"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 201, "create answered {}", r.status());
    }
    let mut all = Vec::new();
    for t in tasks {
        let lat = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .context("watchers fell behind")???;
        anyhow::ensure!(
            lat.len() == events,
            "a watcher received {} of {events} events",
            lat.len()
        );
        all.extend(lat);
    }
    Ok(Samples::new(all, start.elapsed()))
}

/// The raw store: puts of 1 KiB values from `writers` writers, embedded in this process.
async fn raw_store(dir: &Path, writers: usize, total: usize) -> anyhow::Result<Samples> {
    let store = RaftStore::open_single(dir.join("raw-store")).await?;
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let samples = fan_out(writers, total, move |w, i| {
        let s = Arc::clone(&shared);
        async move {
            s.put(format!("/raw/{w}/{i}").as_bytes(), &[b'x'; 1100])
                .await?;
            Ok(())
        }
    })
    .await?;
    store.shutdown().await;
    Ok(samples)
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
    let berth = match args.berth {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("berth"),
    };
    let q = args.quick;
    let say = |s: &str| eprintln!("[berth-bench api] {s}");
    let server = start_server(&berth, &dir, &args.server_args).await?;
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_bytes(pid).context("no /proc")?;
    let base = server.base.clone();
    let client = https_client(&server.tls, 128)?;

    let mut rows = Vec::new();
    for (clients, total) in [
        (1usize, if q { 20 } else { 500 }),
        (16, if q { 64 } else { 4_000 }),
        (64, if q { 128 } else { 12_000 }),
    ] {
        let ns = format!("bench-create-{clients}");
        create_namespace(&client, &base, &ns).await?;
        say(&format!("creates with {clients} clients ({total})"));
        rows.push((
            format!("create ConfigMap 1 KiB, {clients} client(s)"),
            creates(&client, &base, &ns, clients, total).await?,
        ));
    }
    // The same load as client-go sends it: 64 callers sharing one HTTP/2 connection.
    let h2 = https2_client(&server.tls)?;
    create_namespace(&h2, &base, "bench-create-h2").await?;
    say("creates with 64 clients over one HTTP/2 connection");
    rows.push((
        "create ConfigMap 1 KiB, 64 clients, one HTTP/2 connection".into(),
        creates(
            &h2,
            &base,
            "bench-create-h2",
            64,
            if q { 128 } else { 12_000 },
        )
        .await?,
    ));
    let mut list_rows = Vec::new();
    let mut watch = None;
    if !args.creates_only {
        say("gets with 64 clients");
        rows.push((
            "get ConfigMap, 64 clients".into(),
            gets(
                &client,
                &base,
                "bench-create-64",
                64,
                if q { 128 } else { 20_000 },
            )
            .await?,
        ));
        for n in [1_000usize, 10_000] {
            let n = if q { n / 100 } else { n };
            let ns = format!("bench-list-{n}");
            create_namespace(&client, &base, &ns).await?;
            creates(&client, &base, &ns, 64, n).await?;
            say(&format!("lists of {n} objects"));
            list_rows.push((
                n,
                lists(&client, &base, &ns, n, if q { 2 } else { 10 }).await?,
            ));
        }
        let watchers = if q { 10 } else { args.watchers };
        let events = if q { 5 } else { 50 };
        say(&format!("{watchers} watches, {events} writes"));
        watch = Some((
            watchers,
            events,
            watches(&base, &server.tls, watchers, events).await?,
        ));
    }
    say("raw store puts with 64 writers, same disk, embedded");
    let puts = if q { 128 } else { 20_000 };
    let before = cpu_time(std::process::id()).context("no /proc")?;
    let raw = raw_store(&dir, 64, puts).await?;
    let raw_cpu = cpu_time(std::process::id())
        .context("no /proc")?
        .saturating_sub(before)
        .as_secs_f64()
        * 1e6
        / puts as f64;

    let held = if q { 200 } else { args.memory_objects };
    say(&format!("memory: holding {held} ConfigMaps of 1 KiB"));
    create_namespace(&client, &base, "bench-memory").await?;
    // CPU per create, from the processes' own accounting: unlike throughput, it does not
    // move with what else the machine runs.
    let cpu = |pid| cpu_time(pid).context("no /proc");
    let (server_cpu, client_cpu) = (cpu(pid)?, cpu(std::process::id())?);
    creates(&client, &base, "bench-memory", 64, held).await?;
    let per_create = |before: Duration, now: Duration| {
        now.saturating_sub(before).as_secs_f64() * 1e6 / held as f64
    };
    let server_cpu = per_create(server_cpu, cpu(pid)?);
    let client_cpu = per_create(client_cpu, cpu(std::process::id())?);
    // Measured once the server has settled: it hands the pages a burst of writes freed back
    // to the kernel every 5 s (`heap::trim_periodically`), and what it holds is what counts.
    tokio::time::sleep(Duration::from_secs(if q { 1 } else { 6 })).await;
    let full_rss = rss_bytes(pid).context("no /proc")?;

    println!();
    println!(
        "API benchmark: berth server (1 replica, raft + redb on disk) over HTTPS (HTTP/1.1) on 127.0.0.1,"
    );
    println!(
        "client in this process; raw store measured embedded in this process in the same run."
    );
    println!();
    println!("| workload | ops/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    for (name, s) in &rows {
        println!(
            "| {name} | {:.0} | {} | {} |",
            s.throughput(),
            ms(s.quantile(0.5)),
            ms(s.quantile(0.99))
        );
    }
    for (n, s) in &list_rows {
        println!(
            "| list {n} ConfigMaps (JSON) | {:.1} | {} | {} |",
            s.throughput(),
            ms(s.quantile(0.5)),
            ms(s.quantile(0.99))
        );
    }
    if let Some((watchers, events, watch)) = &watch {
        println!(
            "| watch delivery, {watchers} watches × {events} writes | {} deliveries | {} | {} |",
            watch.count(),
            ms(watch.quantile(0.5)),
            ms(watch.quantile(0.99))
        );
    }
    println!(
        "| raw store put 1 KiB, 64 writers | {:.0} | {} | {} |",
        raw.throughput(),
        ms(raw.quantile(0.5)),
        ms(raw.quantile(0.99))
    );
    println!();
    let (create64, create64_h2) = (&rows[2].1, &rows[3].1);
    println!(
        "create throughput at 64 clients / raw store put throughput at 64 writers = {:.2} (64 HTTP/1.1 connections), {:.2} (one HTTP/2 connection)",
        create64.throughput() / raw.throughput(),
        create64_h2.throughput() / raw.throughput()
    );
    println!(
        "CPU per create at 64 clients ({held} creates): server {server_cpu:.0} µs, benchmark client {client_cpu:.0} µs; raw store per put: {raw_cpu:.0} µs"
    );
    println!(
        "server RSS: idle {} MiB; holding {held} ConfigMaps of 1 KiB (plus the workloads above) {} MiB",
        idle_rss >> 20,
        full_rss >> 20
    );
    drop(server);
    Ok(())
}
