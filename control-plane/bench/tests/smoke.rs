//! The store benchmark runs end to end with tiny counts and prints both sides' figures.

#[test]
fn store_benchmark_runs_against_etcd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args(["store", "--quick"])
        .output()
        .expect("run berth-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "berth-bench failed (is etcd installed?):\n{stderr}\n{stdout}"
    );
    for row in [
        "put 256 B, 1 writer(s)",
        "put 256 B, 256 writer(s)",
        "range 1,000 keys",
        "watch delivery",
        "fsync floor",
        "memory with",
    ] {
        assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
    }
    // Every throughput cell is a positive number.
    for line in stdout.lines().filter(|l| l.starts_with("| put")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let berth: f64 = cells[2].parse().unwrap();
        let etcd: f64 = cells[5].parse().unwrap();
        assert!(berth > 0.0 && etcd > 0.0, "{line}");
    }
}

/// Runs `berth-bench ARGS --berth <berth next to it>` and checks it succeeds and prints every
/// row of `rows`; returns its standard output.
fn run_against_berth(args: &[&str], rows: &[&str]) -> String {
    let berth = std::path::Path::new(env!("CARGO_BIN_EXE_berth-bench")).with_file_name("berth");
    assert!(
        berth.exists(),
        "{} is missing: build the workspace first",
        berth.display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args(args)
        .arg("--berth")
        .arg(&berth)
        .output()
        .expect("run berth-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "berth-bench {args:?} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in rows {
        assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
    }
    stdout
}

#[test]
fn api_benchmark_runs_against_a_berth_server() {
    run_against_berth(
        &["api", "--quick"],
        &[
            "create ConfigMap 1 KiB, 64 client(s)",
            "list 100 ConfigMaps",
            "watch delivery",
            "raw store put",
            "server RSS",
        ],
    );
}

#[test]
fn scheduler_benchmark_rolls_out_onto_simulated_nodes() {
    run_against_berth(
        &[
            "scheduler",
            "--nodes",
            "5",
            "--pods",
            "30",
            "--timeout-secs",
            "120",
        ],
        &[
            "scheduling throughput",
            "per-pod schedule latency p99",
            "all 30 pods Ready",
            "server RSS afterwards",
        ],
    );
}

#[test]
fn tenants_benchmark_runs_against_a_berth_server() {
    run_against_berth(
        &["tenants", "--quick"],
        &[
            "B alone",
            "B while A floods",
            "B's p99 with A flooding / alone",
            "clusters/s",
            "per cluster",
            "sit idle",
        ],
    );
}

#[test]
fn crd_benchmark_runs_against_a_berth_server() {
    run_against_berth(
        &["crd", "--quick"],
        &[
            "create ConfigMap (1 KiB)",
            "create Widget (CEL rules)",
            "custom objects / ConfigMaps create throughput",
        ],
    );
}
