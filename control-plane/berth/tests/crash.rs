//! Crash test: a replica under write load is killed with SIGKILL many times; after every restart
//! each acknowledged write is present with its value and revision.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::Store;
use support::{Replica, free_port};

const ROUNDS: usize = 12;
const WRITERS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port(&["127.0.0.1"]));
    let mut replica = Replica::start(
        1,
        &addr,
        &dir.path().join("data"),
        &[
            "--snapshot-every".into(),
            "300".into(),
            "--snapshot-keep-logs".into(),
            "50".into(),
        ],
    );
    // key -> (value, revision) of every acknowledged write.
    let acked: Arc<Mutex<BTreeMap<String, (String, u64)>>> = Arc::default();
    let mut total_unacked = 0usize;
    for round in 0..ROUNDS {
        replica.wait_ready(Duration::from_secs(30)).await;
        let client = replica.client();
        // Everything acknowledged before this restart is there, with its revision.
        let snapshot = acked.lock().unwrap().clone();
        for (key, (value, rev)) in &snapshot {
            let kv = client
                .get(key.as_bytes())
                .await
                .unwrap()
                .unwrap_or_else(|| {
                    panic!(
                        "round {round}: acknowledged {key} lost; see {}",
                        replica.log_path().display()
                    )
                });
            assert_eq!(
                kv.value,
                value.as_bytes(),
                "round {round}: {key} has a different value"
            );
            assert_eq!(
                kv.mod_revision, *rev,
                "round {round}: {key} has a different revision"
            );
        }
        let status = client.status().await.unwrap();
        if let Some(max) = snapshot.values().map(|(_, r)| *r).max() {
            assert!(
                status.revision >= max,
                "revision went backwards: {} < {max}",
                status.revision
            );
        }

        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let client = client.clone();
            let acked = Arc::clone(&acked);
            writers.push(tokio::spawn(async move {
                let mut unacked = 0;
                for i in 0.. {
                    let key = format!("/crash/{round}/{w}/{i}");
                    let value = format!("value-{round}-{w}-{i}-{}", "x".repeat(200));
                    match client.put(key.as_bytes(), value.as_bytes()).await {
                        Ok(rev) => {
                            acked.lock().unwrap().insert(key, (value, rev));
                        }
                        Err(_) => {
                            unacked += 1;
                            return unacked;
                        }
                    }
                }
                unacked
            }));
        }
        // Let the load run for a varying time, then kill the process in the middle of it.
        tokio::time::sleep(Duration::from_millis(150 + 97 * (round as u64 % 7))).await;
        replica.kill();
        for w in writers {
            total_unacked += w.await.unwrap();
        }
        replica.restart();
    }
    replica.wait_ready(Duration::from_secs(30)).await;
    let acked = acked.lock().unwrap().clone();
    let client = replica.client();
    for (key, (value, rev)) in &acked {
        let kv = client
            .get(key.as_bytes())
            .await
            .unwrap()
            .expect("acknowledged write present");
        assert_eq!(
            (kv.value.as_ref(), kv.mod_revision),
            (value.as_bytes(), *rev)
        );
    }
    assert!(
        acked.len() > ROUNDS * WRITERS,
        "the load acknowledged too few writes: {}",
        acked.len()
    );
    eprintln!(
        "{} acknowledged writes survived {ROUNDS} SIGKILLs ({total_unacked} in flight at kills)",
        acked.len()
    );
}
