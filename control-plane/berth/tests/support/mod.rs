//! Runs real `berth server` processes for multi-process tests and stops them by PID.

#![allow(dead_code, unreachable_pub)]

pub mod kubectl;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use store::Store;
use store::raft::remote::RemoteStore;

/// One `berth server` process.
pub struct Replica {
    pub id: u64,
    pub raft_addr: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

/// A port free on every one of `hosts`.
pub fn free_port(hosts: &[&str]) -> u16 {
    for _ in 0..100 {
        let probe = TcpListener::bind(format!("{}:0", hosts[0])).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        if hosts
            .iter()
            .all(|h| TcpListener::bind(format!("{h}:{port}")).is_ok())
        {
            return port;
        }
    }
    panic!("no free port on {hosts:?}");
}

impl Replica {
    /// Starts replica `id` with raft on `raft_addr` and extra flags.
    pub fn start(id: u64, raft_addr: &str, data_dir: &Path, extra: &[String]) -> Replica {
        let host = raft_addr.split(':').next().unwrap();
        let mut args = vec![
            "server".to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            format!("{host}:0"),
            "--raft-listen".into(),
            raft_addr.into(),
            "--node-id".into(),
            id.to_string(),
            "--heartbeat-ms".into(),
            "50".into(),
        ];
        args.extend(extra.iter().cloned());
        let mut replica = Replica {
            id,
            raft_addr: raft_addr.into(),
            data_dir: data_dir.into(),
            args,
            child: None,
        };
        replica.spawn();
        replica
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(&self.args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berth server");
        self.child = Some(child);
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same flags and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freezes the process (it keeps its sockets but answers nothing): a replica cut off.
    pub fn freeze(&self) {
        kill(self.pid(), Signal::SIGSTOP).unwrap();
    }

    pub fn thaw(&self) {
        kill(self.pid(), Signal::SIGCONT).unwrap();
    }

    pub fn client(&self) -> RemoteStore {
        RemoteStore::new(&self.raft_addr)
    }

    /// Waits until the replica answers and knows a leader; returns the leader's id.
    pub async fn wait_ready(&self, timeout: Duration) -> u64 {
        let client = self.client();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(status) = client.status().await
                && let Some(leader) = status.leader_id
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "replica {} not ready; see {}",
                self.id,
                self.log_path().display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
        }
        self.kill();
    }
}

/// Starts an `n`-replica cluster on 127.0.0.1 .. 127.0.0.n, all on one port.
pub fn start_cluster(n: u64, root: &Path, extra: &[String]) -> Vec<Replica> {
    let hosts: Vec<String> = (1..=n).map(|i| format!("127.0.0.{i}")).collect();
    let host_refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let port = free_port(&host_refs);
    let peers: BTreeMap<u64, String> = (1..=n)
        .map(|i| (i, format!("127.0.0.{i}:{port}")))
        .collect();
    let peers_flag = peers
        .iter()
        .map(|(i, a)| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    peers
        .iter()
        .map(|(id, addr)| {
            let mut flags = vec!["--peers".to_string(), peers_flag.clone()];
            flags.extend(extra.iter().cloned());
            Replica::start(*id, addr, &root.join(format!("replica-{id}")), &flags)
        })
        .collect()
}

/// One `berth server` in a temporary directory, ready, and the default kubectl with its admin
/// kubeconfig. The directory and the replica (stopped when dropped) must outlive the test.
pub fn start_with_kubectl() -> (tempfile::TempDir, Replica, kubectl::Kubectl) {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let data = dir.path().join("server");
    let replica = Replica::start(1, &addr, &data, &[]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(replica.wait_ready(Duration::from_secs(30)));
    let kubectl = kubectl::Kubectl::default_for(&data.join("admin.kubeconfig"));
    (dir, replica, kubectl)
}
