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

#[test]
fn api_benchmark_runs_against_a_berth_server() {
    let berth = std::path::Path::new(env!("CARGO_BIN_EXE_berth-bench")).with_file_name("berth");
    assert!(
        berth.exists(),
        "{} is missing: build the workspace first",
        berth.display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args(["api", "--quick", "--berth"])
        .arg(&berth)
        .output()
        .expect("run berth-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "berth-bench api failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "create ConfigMap 1 KiB, 64 client(s)",
        "list 100 ConfigMaps",
        "watch delivery",
        "raw store put",
        "server RSS",
    ] {
        assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
    }
}

#[test]
fn scheduler_benchmark_rolls_out_onto_simulated_nodes() {
    let berth = std::path::Path::new(env!("CARGO_BIN_EXE_berth-bench")).with_file_name("berth");
    assert!(
        berth.exists(),
        "{} is missing: build the workspace first",
        berth.display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args([
            "scheduler",
            "--nodes",
            "5",
            "--pods",
            "30",
            "--timeout-secs",
            "120",
            "--berth",
        ])
        .arg(&berth)
        .output()
        .expect("run berth-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "berth-bench scheduler failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "scheduling throughput",
        "per-pod schedule latency p99",
        "all 30 pods Ready",
        "server RSS afterwards",
    ] {
        assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
    }
}

#[test]
fn tenants_benchmark_runs_against_a_berth_server() {
    let berth = std::path::Path::new(env!("CARGO_BIN_EXE_berth-bench")).with_file_name("berth");
    assert!(
        berth.exists(),
        "{} is missing: build the workspace first",
        berth.display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth-bench"))
        .args(["tenants", "--quick", "--berth"])
        .arg(&berth)
        .output()
        .expect("run berth-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "berth-bench tenants failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "B alone",
        "B while A floods",
        "B's p99 with A flooding / alone",
        "clusters/s",
        "per cluster",
        "sit idle",
    ] {
        assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
    }
}
