//! `berth server`: one control-plane replica.
//!
//! It opens the replicated store in `DATA_DIR/store`, serves raft and the store API on the raft
//! listener, serves the API server on the API listener, and writes `DATA_DIR/admin.kubeconfig`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apiserver::auth::kubeconfig::{Credential, Kubeconfig};
use clap::Args;
use store::{RaftConfig, RaftStore, Store};
use tokio::net::TcpListener;

#[derive(Args)]
pub(crate) struct ServerArgs {
    /// Where this replica keeps its data; created if missing.
    #[arg(long)]
    data_dir: PathBuf,
    /// Address the Kubernetes API is served on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: String,
    /// Address raft and the store API are served on (use a port other replicas can reach).
    #[arg(long, default_value = "127.0.0.1:2380")]
    raft_listen: String,
    /// Address other replicas reach this one at; defaults to the raft listener's address.
    #[arg(long)]
    advertise: Option<String>,
    /// This replica's id (unique, never reused).
    #[arg(long, default_value_t = 1)]
    node_id: u64,
    /// Initial voters as `ID=HOST:PORT,...` (this replica included). Default: this replica alone.
    #[arg(long)]
    peers: Option<String>,
    /// Start as a new replica of an existing cluster; add it with `berth member add`.
    #[arg(long, conflicts_with = "peers")]
    join: bool,
    /// Compact store history older than this many seconds.
    #[arg(long, default_value_t = 300)]
    compaction_interval_secs: u64,
    /// Raft heartbeat interval in milliseconds (election timeouts are 5-10 times this).
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
    /// Extra names or addresses for the serving certificate (besides localhost and the listen
    /// address); repeat for several.
    #[arg(long)]
    tls_san: Vec<String>,
    /// The range Services get their ClusterIP from.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cluster_ip_range: String,
    /// The range Services of type NodePort and LoadBalancer get node ports from.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// How long Events live after their last write, in seconds.
    #[arg(long, default_value_t = 3600)]
    event_ttl_secs: u64,
    /// Raft log entries between store snapshots.
    #[arg(long, default_value_t = 20_000)]
    snapshot_every: u64,
    /// Raft log entries kept behind a snapshot for lagging replicas.
    #[arg(long, default_value_t = 1_000)]
    snapshot_keep_logs: u64,
    /// Run the scheduler and the controllers in this replica (when several replicas run them,
    /// a Lease elects the one that does).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    controllers: bool,
    /// How long a node may go without renewing its Lease before it is marked Unknown, tainted
    /// unreachable and (after its pods' tolerations run out) emptied, in seconds.
    #[arg(long, default_value_t = 50)]
    node_monitor_grace_period_secs: u64,
    /// How many terminated pods may exist before the pod garbage collector deletes the oldest;
    /// 0 keeps them all.
    #[arg(long, default_value_t = 12_500)]
    terminated_pod_gc_threshold: usize,
    /// The pod range each node's pod CIDR (a /24) is allocated from.
    #[arg(long, default_value = "10.244.0.0/16")]
    cluster_cidr: String,
    /// Write one audit event (JSON) per request to this file, or `-` for standard output.
    #[arg(long)]
    audit_log_path: Option<PathBuf>,
    /// An `audit.k8s.io/v1` Policy (YAML or JSON) choosing what is logged at which level;
    /// default: metadata of every request but reads of events, leases and health.
    #[arg(long, requires = "audit_log_path")]
    audit_policy_file: Option<PathBuf>,
    /// Admission plugins not to run (upstream's names, comma-separated), e.g.
    /// `ServiceAccount,PodSecurity`. Every plugin Berth has runs by default.
    #[arg(long, value_delimiter = ',')]
    disable_admission_plugins: Vec<String>,
    /// Requests served at once, shared fairly among the tenant clusters; more wait in
    /// per-cluster queues.
    #[arg(long, default_value_t = 600)]
    max_requests_inflight: usize,
    /// Lists and watch starts with initial events that one tenant cluster runs at once (each
    /// sends every object of a resource); more wait their turn.
    #[arg(long, default_value_t = 4)]
    tenant_max_concurrent_lists: usize,
    /// Default sustained request rate of a tenant cluster (a `Cluster`'s `spec.limits`
    /// overrides each default); 0 means unlimited.
    #[arg(long, default_value_t = 100)]
    tenant_requests_per_second: u32,
    /// Default request burst of a tenant cluster.
    #[arg(long, default_value_t = 200)]
    tenant_burst: u32,
    /// Default number of open watches of a tenant cluster.
    #[arg(long, default_value_t = 1000)]
    tenant_max_watches: u32,
    /// Default number of stored objects of a tenant cluster.
    #[arg(long, default_value_t = 100_000)]
    tenant_max_objects: u64,
    /// Default stored bytes of a tenant cluster.
    #[arg(long, default_value_t = 1 << 30)]
    tenant_max_stored_bytes: u64,
    /// Accept ID tokens of this OpenID Connect issuer (its `iss`), in every cluster; RBAC in
    /// each cluster decides what its users may do.
    #[arg(long, requires = "oidc_client_id")]
    oidc_issuer_url: Option<String>,
    /// The client id ID tokens must be issued for (their `aud`).
    #[arg(long)]
    oidc_client_id: Option<String>,
    /// The issuer's signing keys (a JWKS document), from a file...
    #[arg(long, conflicts_with = "oidc_jwks_url")]
    oidc_jwks_file: Option<PathBuf>,
    /// ...or fetched from a URL (refreshed every 5 minutes).
    #[arg(long)]
    oidc_jwks_url: Option<String>,
    /// The claim naming the user.
    #[arg(long, default_value = "sub")]
    oidc_username_claim: String,
    /// Put before user names (default: `<issuer>#` unless the claim is `email`; `-` for none).
    #[arg(long)]
    oidc_username_prefix: Option<String>,
    /// The claim listing the user's groups.
    #[arg(long)]
    oidc_groups_claim: Option<String>,
    /// Put before group names.
    #[arg(long, default_value = "")]
    oidc_groups_prefix: String,
}

/// How often a JWKS given by URL is fetched again (key rotation).
const JWKS_REFRESH: Duration = Duration::from_secs(300);

/// Reads a JWKS from `file` or fetches it from `url`.
async fn load_jwks(
    file: Option<&Path>,
    url: Option<&str>,
) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
    match (file, url) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --oidc-jwks-file {}", file.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("--oidc-jwks-file {} is not a JWKS", file.display()))
        }
        (None, Some(url)) => {
            let response = reqwest::get(url)
                .await
                .with_context(|| format!("cannot fetch --oidc-jwks-url {url}"))?
                .error_for_status()
                .with_context(|| format!("cannot fetch --oidc-jwks-url {url}"))?;
            response
                .json()
                .await
                .with_context(|| format!("--oidc-jwks-url {url} did not return a JWKS"))
        }
        (None, None) => {
            anyhow::bail!("--oidc-issuer-url needs --oidc-jwks-file or --oidc-jwks-url")
        }
    }
}

pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    heap::trim_periodically();
    let data_dir = crate::absolute(args.data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let raft_listener = TcpListener::bind(&args.raft_listen)
        .await
        .with_context(|| format!("cannot listen on --raft-listen {}", args.raft_listen))?;
    let advertise = match args.advertise {
        Some(a) => a,
        None => raft_listener.local_addr()?.to_string(),
    };
    let initial_members = match (&args.peers, args.join) {
        (Some(peers), _) => crate::parse_peers(peers)?,
        (None, true) => Default::default(),
        (None, false) => [(args.node_id, advertise.clone())].into(),
    };
    if !initial_members.is_empty() && !initial_members.contains_key(&args.node_id) {
        anyhow::bail!(
            "--peers must include this replica's --node-id {}",
            args.node_id
        );
    }
    let heartbeat = Duration::from_millis(args.heartbeat_ms);
    let config = RaftConfig {
        node_id: args.node_id,
        initial_members,
        heartbeat,
        election_timeout: (heartbeat * 5, heartbeat * 10),
        snapshot_every: args.snapshot_every,
        snapshot_keep_logs: args.snapshot_keep_logs,
        ..RaftConfig::single(data_dir.join("store"), advertise.clone())
    };
    let store = RaftStore::open(config).await.with_context(|| {
        format!(
            "cannot open the store in {}",
            data_dir.join("store").display()
        )
    })?;

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let shutdown = move || {
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let raft_server = tokio::spawn(
        axum::serve(raft_listener, store.router())
            .with_graceful_shutdown(shutdown())
            .into_future(),
    );
    store.bootstrap().await?;

    let api_listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on --listen {}", args.listen))?;
    let api_addr = api_listener.local_addr()?;
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let compactor = store::spawn_compactor(
        Arc::clone(&shared),
        Duration::from_secs(args.compaction_interval_secs),
    );
    let ranges = apiserver::alloc::ServiceRanges::parse(
        &args.service_cluster_ip_range,
        &args.service_node_port_range,
    )
    .map_err(|e| {
        anyhow::anyhow!("invalid --service-cluster-ip-range or --service-node-port-range: {e}")
    })?;
    let fairness = fairness::Config {
        total_seats: args.max_requests_inflight.max(1),
        heavy_reads: args.tenant_max_concurrent_lists.max(1),
        defaults: fairness::Limits {
            requests_per_second: args.tenant_requests_per_second,
            burst: args.tenant_burst,
            max_watches: args.tenant_max_watches,
            max_objects: args.tenant_max_objects,
            max_stored_bytes: args.tenant_max_stored_bytes,
        },
        ..Default::default()
    };
    let mut audit_flush = None;
    let mut api = apiserver::Api::with_options(shared, ranges, fairness)
        .with_event_ttl(Duration::from_secs(args.event_ttl_secs));
    if let (Some(issuer), Some(client_id)) = (&args.oidc_issuer_url, &args.oidc_client_id) {
        let keys = load_jwks(
            args.oidc_jwks_file.as_deref(),
            args.oidc_jwks_url.as_deref(),
        )
        .await?;
        let config = apiserver::auth::oidc::OidcConfig {
            username_claim: args.oidc_username_claim.clone(),
            username_prefix: args.oidc_username_prefix.clone(),
            groups_claim: args.oidc_groups_claim.clone(),
            groups_prefix: args.oidc_groups_prefix.clone(),
            ..apiserver::auth::oidc::OidcConfig::new(issuer, client_id)
        };
        let oidc = Arc::new(apiserver::auth::oidc::Oidc::new(config, keys));
        if let Some(url) = args.oidc_jwks_url.clone() {
            let oidc = Arc::clone(&oidc);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(JWKS_REFRESH).await;
                    match load_jwks(None, Some(&url)).await {
                        Ok(keys) => oidc.set_keys(keys),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot refresh the OIDC issuer's keys; keeping the old ones")
                        }
                    }
                }
            });
        }
        api = api.with_oidc(oidc);
    }
    let plugins = apiserver::admit::Plugins::without(&args.disable_admission_plugins)
        .map_err(|e| anyhow::anyhow!("--disable-admission-plugins: {e}"))?;
    api = api.with_admission_plugins(plugins);
    if let Some(path) = &args.audit_log_path {
        let policy = match &args.audit_policy_file {
            Some(file) => {
                let text = std::fs::read_to_string(file).with_context(|| {
                    format!("cannot read --audit-policy-file {}", file.display())
                })?;
                audit::Policy::from_yaml(&text)
                    .with_context(|| format!("invalid audit policy in {}", file.display()))?
            }
            None => audit::Policy::default(),
        };
        let sink = audit::Sink::parse(&path.to_string_lossy());
        let auditor = audit::Auditor::spawn(sink, policy)
            .with_context(|| format!("cannot open --audit-log-path {}", path.display()))?;
        api = api.with_auditor(auditor.clone());
        audit_flush = Some(auditor);
    }
    api.ensure_cluster(apiserver::request::ROOT_CLUSTER)
        .await
        .context("cannot create the root cluster's default namespaces")?;
    let mut sans = vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "::1".to_string(),
    ];
    sans.push(api_addr.ip().to_string());
    sans.extend(args.tls_san.iter().cloned());
    sans.sort();
    sans.dedup();
    let pki =
        apiserver::tls::Pki::load_or_create(&data_dir.join("pki"), &sans).with_context(|| {
            format!(
                "cannot set up the certificates in {}",
                data_dir.join("pki").display()
            )
        })?;
    let tls = pki.server_config()?;
    let router = apiserver::router(Arc::clone(&api));
    let api_server = tokio::spawn(apiserver::tls::serve(
        api_listener,
        tls,
        router.clone(),
        shutdown(),
    ));
    let host = if api_addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        api_addr.ip().to_string()
    };
    let server_url = match api_addr.ip() {
        std::net::IpAddr::V6(_) if !api_addr.ip().is_unspecified() => {
            format!("https://[{host}]:{}", api_addr.port())
        }
        _ => format!("https://{host}:{}", api_addr.port()),
    };
    if args.controllers {
        let identity = format!("berth-{}_{}", args.node_id, uuid_suffix());
        let config = manager::Config {
            node_monitor_grace_period: Duration::from_secs(args.node_monitor_grace_period_secs),
            ca_bundle: Some(pki.ca_pem.clone()),
            terminated_pod_gc_threshold: args.terminated_pod_gc_threshold,
            cluster_cidr: args.cluster_cidr.clone(),
            provisioner: Some(Arc::new(ApiProvisioner {
                api: Arc::clone(&api),
                server_url: server_url.clone(),
                ca_pem: pki.ca_pem.clone(),
            })),
            signer: Some(Arc::new(ClusterCaSigner(Arc::clone(&api)))),
        };
        tokio::spawn(run_control_loops(
            Arc::clone(&api),
            router,
            identity,
            config,
            shutdown_tx.subscribe(),
        ));
    }

    let kubeconfig = data_dir.join("admin.kubeconfig");
    let root = api
        .credentials(apiserver::request::ROOT_CLUSTER)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the root cluster's credentials: {e}"))?
        .context("the root cluster has no credentials")?;
    let (admin_cert, admin_key) = root
        .issue_client_certificate(
            "berth-admin",
            &[apiserver::auth::SYSTEM_MASTERS],
            apiserver::auth::credentials::CLIENT_CERT_VALIDITY,
        )
        .context("cannot issue the admin client certificate")?;
    write_kubeconfig(
        &kubeconfig,
        &Kubeconfig {
            server: &server_url,
            ca_pem: &pki.ca_pem,
            credential: Credential::Certificate {
                cert_pem: &admin_cert,
                key_pem: &admin_key,
            },
            cluster_name: "berth",
            user_name: "berth-admin",
        },
    )?;
    tracing::info!(
        api = %api_addr,
        raft = %advertise,
        node_id = args.node_id,
        kubeconfig = %kubeconfig.display(),
        "berth server is serving"
    );
    println!(
        "Berth is serving the Kubernetes API on {server_url} (replica {}).",
        args.node_id
    );
    println!("Admin kubeconfig: {}", kubeconfig.display());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("---");
    print!("{}", std::fs::read_to_string(&kubeconfig)?);

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    compactor.abort();
    let _ = api_server.await;
    if let Some(auditor) = audit_flush {
        auditor.flush().await;
    }
    let _ = raft_server.await;
    store.shutdown().await;
    Ok(())
}

/// Makes and deletes the logical clusters of the root cluster's `Cluster` objects: the API
/// server's side of the Cluster lifecycle loop.
struct ApiProvisioner {
    api: Arc<apiserver::Api>,
    /// The API's URL as clients reach it, e.g. `https://127.0.0.1:6443`.
    server_url: String,
    /// The CA that signs the serving certificate (PEM).
    ca_pem: String,
}

/// The user of a tenant cluster's admin kubeconfig (in `system:masters`).
const TENANT_ADMIN: &str = "berth-admin";

#[async_trait::async_trait]
impl manager::Provisioner for ApiProvisioner {
    async fn provision(&self, id: &str, _spec: &berth_api::ClusterSpec) -> anyhow::Result<String> {
        self.api
            .ensure_cluster(id)
            .await
            .with_context(|| format!("cannot create logical cluster {id}"))?;
        let credentials = self
            .api
            .credentials(id)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the credentials of cluster {id}: {e}"))?
            .with_context(|| format!("logical cluster {id} vanished while it was created"))?;
        let (cert, key) = credentials
            .issue_client_certificate(
                TENANT_ADMIN,
                &[apiserver::auth::SYSTEM_MASTERS],
                apiserver::auth::credentials::CLIENT_CERT_VALIDITY,
            )
            .with_context(|| format!("cannot issue the admin certificate of cluster {id}"))?;
        let server = self.endpoint(id);
        Ok(Kubeconfig {
            server: &server,
            ca_pem: &self.ca_pem,
            credential: Credential::Certificate {
                cert_pem: &cert,
                key_pem: &key,
            },
            cluster_name: id,
            user_name: TENANT_ADMIN,
        }
        .render())
    }

    async fn configure(&self, id: &str, spec: &berth_api::ClusterSpec) -> anyhow::Result<()> {
        let limits = spec.limits.as_ref().map(|l| {
            let u64_of = |v: Option<i64>| v.map(|v| v.max(0) as u64);
            let u32_of = |v: Option<i64>| v.map(|v| v.clamp(0, u32::MAX as i64) as u32);
            apiserver::ClusterLimits {
                max_objects: u64_of(l.max_objects),
                max_stored_bytes: u64_of(l.max_stored_bytes),
                max_watches: u32_of(l.max_watches),
                requests_per_second: u32_of(l.requests_per_second),
                burst: u32_of(l.burst),
            }
        });
        self.api
            .set_cluster_limits(id, limits)
            .await
            .map_err(|e| anyhow::anyhow!("cannot set the limits of cluster {id}: {e}"))
    }

    async fn teardown(&self, id: &str) -> anyhow::Result<()> {
        self.api
            .delete_cluster(id)
            .await
            .with_context(|| format!("cannot delete logical cluster {id}"))
    }

    async fn exists(&self, id: &str) -> anyhow::Result<bool> {
        let credentials = self
            .api
            .credentials(id)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the credentials of cluster {id}: {e}"))?;
        Ok(credentials.is_some())
    }

    fn endpoint(&self, id: &str) -> String {
        format!("{}/clusters/{id}", self.server_url)
    }

    fn server_ca_pem(&self) -> String {
        self.ca_pem.clone()
    }
}

/// A client of logical cluster `cluster` that calls the router in-process.
fn local_client(router: &axum::Router, cluster: &str) -> kube::Client {
    kube::Client::new(
        apiserver::local::LocalService::new(router.clone(), cluster),
        "default",
    )
}

fn uuid_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// How often the leader looks for tenant clusters created or deleted.
const CLUSTER_POLL: Duration = Duration::from_secs(2);

/// Runs the scheduler and controllers, for every logical cluster, while this replica holds the
/// controller Lease.
async fn run_control_loops(
    api: Arc<apiserver::Api>,
    router: axum::Router,
    identity: String,
    config: manager::Config,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let root = apiserver::request::ROOT_CLUSTER;
    assert_eq!(
        manager::ROOT_CLUSTER,
        root,
        "the manager names the root cluster"
    );
    let election =
        runtime::leader::Config::new("kube-system", "berth-controller-manager", &identity);
    let mut leading =
        runtime::leader::spawn(election, local_client(&router, root), shutdown.clone());
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
        }
        tracing::info!(%identity, "leading: starting the scheduler and controllers");
        let (term_tx, term_rx) = tokio::sync::watch::channel(false);
        let manager = manager::Manager::start(config.clone(), term_rx);
        let mut serving: std::collections::BTreeSet<String> = Default::default();
        loop {
            match api.clusters().await {
                Ok(clusters) => {
                    let clusters: std::collections::BTreeSet<String> =
                        clusters.into_iter().collect();
                    for id in clusters.difference(&serving) {
                        manager.add_cluster(id, local_client(&router, id));
                    }
                    for id in serving.difference(&clusters) {
                        tracing::info!(cluster = %id, "cluster gone: stopping its control loops");
                        manager.remove_cluster(id);
                    }
                    serving = clusters;
                }
                Err(e) => tracing::warn!(error = %e, "cannot list the logical clusters"),
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => { term_tx.send_replace(true); return; }
                _ = leading.wait_for(|l| !*l) => break,
                _ = tokio::time::sleep(CLUSTER_POLL) => {}
            }
        }
        tracing::warn!(%identity, "no longer leading: stopping the scheduler and controllers");
        term_tx.send_replace(true);
        for id in &serving {
            manager.remove_cluster(id);
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Writes the admin kubeconfig for the root cluster: the CA to trust and the admin client
/// certificate, inline. The file is readable by its owner only.
fn write_kubeconfig(path: &Path, config: &Kubeconfig<'_>) -> anyhow::Result<()> {
    let yaml = config.render();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Written aside and renamed into place, so a reader never sees half a kubeconfig.
    let partial = path.with_extension("kubeconfig.partial");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    f.write_all(yaml.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Signs CertificateSigningRequests with the client CA of the cluster they were made in: what
/// the controllers' signing loop cannot do itself, as only the server holds the CAs.
struct ClusterCaSigner(Arc<apiserver::Api>);

#[async_trait::async_trait]
impl manager::Signer for ClusterCaSigner {
    async fn sign(
        &self,
        cluster: &str,
        csr_pem: &str,
        validity: Duration,
    ) -> Result<String, manager::SignError> {
        let creds = self
            .0
            .credentials(cluster)
            .await
            .map_err(|e| manager::SignError::Unavailable(e.message))?
            .ok_or_else(|| {
                manager::SignError::Unavailable(format!("cluster {cluster} has no credentials"))
            })?;
        let (_, block) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).map_err(|_| {
            manager::SignError::Refused("PEM block type must be CERTIFICATE REQUEST".into())
        })?;
        creds
            .sign_client_request(&block.contents, validity)
            .map_err(|e| manager::SignError::Refused(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use manager::{SignError, Signer};
    use rustls::pki_types::CertificateDer;

    use super::*;

    fn node_request() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:n1");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:nodes");
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[tokio::test]
    async fn requests_are_signed_by_their_own_clusters_ca() {
        let api = apiserver::Api::new(Arc::new(store::MemoryStore::default()));
        for id in [apiserver::request::ROOT_CLUSTER, "a", "b"] {
            api.ensure_cluster(id).await.unwrap();
        }
        let signer = ClusterCaSigner(Arc::clone(&api));
        let validity = Duration::from_secs(3600);
        let pem = signer.sign("a", &node_request(), validity).await.unwrap();
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let chain = vec![CertificateDer::from(block.contents)];
        let a = api.credentials("a").await.unwrap().unwrap();
        let user = a.verify_client(&chain).unwrap();
        assert_eq!(user.name, "system:node:n1");
        assert!(user.groups.iter().any(|g| g == "system:nodes"));
        let b = api.credentials("b").await.unwrap().unwrap();
        assert!(b.verify_client(&chain).is_err());

        assert!(matches!(
            signer.sign("a", "not a request", validity).await,
            Err(SignError::Refused(_))
        ));
        assert!(matches!(
            signer.sign("missing", &node_request(), validity).await,
            Err(SignError::Unavailable(_))
        ));
    }
}
