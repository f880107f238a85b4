//! Stock kubectl binaries, run against a test server with its admin kubeconfig.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The kubectl binaries to test: the default one and the versioned ones next to it.
pub fn kubectls() -> Vec<PathBuf> {
    let default = which("kubectl")
        .expect("kubectl is not installed; the machine image ships it (see TOOLING.md)");
    let dir = std::fs::canonicalize(&default)
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let mut all = vec![default];
    for v in ["1.27", "1.33"] {
        let p = dir.join(format!("kubectl.{v}"));
        assert!(
            p.exists(),
            "{} is missing: the machine image ships kubectl {v} next to kubectl",
            p.display()
        );
        all.push(p);
    }
    all
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    pub cache: tempfile::TempDir,
}

impl Kubectl {
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.cache.path())
            .env("HOME", self.cache.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    pub fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{} {args:?} failed:\n{stderr}\n{stdout}\n--- cluster state ---\n{}",
            self.bin.display(),
            self.state()
        );
        stdout
    }

    /// What the cluster looks like, for failure messages.
    pub fn state(&self) -> String {
        let out = self.run(
            &["get", "nodes,deploy,rs,pods,events", "-A", "-o", "wide"],
            None,
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Runs and expects failure; returns stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "{} {args:?} should have failed",
            self.bin.display()
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Kubectl {
    /// The default kubectl against `kubeconfig` (waiting for the server to have written it).
    pub fn default_for(kubeconfig: &Path) -> Kubectl {
        wait_for_file(kubeconfig);
        Kubectl {
            bin: which("kubectl").expect("kubectl is not installed (see TOOLING.md)"),
            kubeconfig: kubeconfig.to_owned(),
            cache: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs until it succeeds or `timeout` passes; returns the last stdout. For conditions
    /// kubectl cannot wait for itself.
    pub fn eventually(
        &self,
        args: &[&str],
        timeout: std::time::Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let out = self.run(args, None);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && check(&stdout) {
                return stdout;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{args:?} did not reach the expected state within {timeout:?}; last run ({}):\n{stdout}{}\n--- cluster state ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.state()
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}

/// `berth simulate-nodes` running as a child process, stopped by PID when dropped.
pub struct SimulatedNodes {
    child: std::process::Child,
}

impl SimulatedNodes {
    /// Starts `berth simulate-nodes --kubeconfig KUBECONFIG ARGS...`.
    pub fn start(kubeconfig: &Path, args: &[&str]) -> SimulatedNodes {
        wait_for_file(kubeconfig);
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("simulate-nodes")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start berth simulate-nodes");
        SimulatedNodes { child }
    }

    /// Stops the simulated kubelets at once (their nodes stop heartbeating).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SimulatedNodes {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits (up to 30 s) for a server to write `path`: it writes its kubeconfig only once it
/// serves, which can be after its store reports ready.
pub fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} was never written",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
