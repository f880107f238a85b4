//! Three replicas as separate processes on 127.0.0.1-3: leader loss, a cut-off minority,
//! catch-up after a restart (from the log and from a snapshot), membership changes, and a watch
//! that spans a leader change.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use store::raft::MemberChange;
use store::raft::remote::RemoteStore;
use store::{RangeRequest, Store, StoreError, WatchRequest, WatchResponse};
use support::{Replica, start_cluster};

/// Puts `key`, retrying while the cluster elects a leader. Returns the revision, or `None` if the
/// outcome is unknown (the write may or may not have been applied).
async fn put_retrying(client: &RemoteStore, key: &str, value: &str) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.put(key.as_bytes(), value.as_bytes()).await {
            Ok(rev) => return Some(rev),
            Err(StoreError::Unavailable(msg)) if msg.contains("may") => return None,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying {key}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{key} could not be written: {e}"),
        }
    }
}

async fn leader_of(replicas: &[Replica]) -> u64 {
    for r in replicas {
        let leader = r.wait_ready(Duration::from_secs(30)).await;
        if leader != 0 {
            return leader;
        }
    }
    unreachable!()
}

async fn assert_all_present(client: &RemoteStore, acked: &BTreeMap<String, (String, u64)>) {
    for (key, (value, rev)) in acked {
        let kv = client
            .get(key.as_bytes())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} lost"));
        assert_eq!(
            (kv.value.as_ref(), kv.mod_revision),
            (value.as_bytes(), *rev),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_minority_catch_up_and_watch() {
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = start_cluster(3, dir.path(), &[]);
    let leader = leader_of(&replicas).await;
    let idx = |id: u64| (id - 1) as usize;
    let follower = replicas
        .iter()
        .map(|r| r.id)
        .find(|id| *id != leader)
        .unwrap();
    let other = replicas
        .iter()
        .map(|r| r.id)
        .find(|id| *id != leader && *id != follower)
        .unwrap();

    // A watch of every key on a follower from the next revision: each replica's API server also
    // writes (its default namespaces), so only the whole key space has every revision.
    let watcher = replicas[idx(follower)].client();
    let start = watcher.status().await.unwrap().revision + 1;
    let mut watch = watcher
        .watch(WatchRequest::prefix("", Some(start)))
        .await
        .unwrap();

    // Writes through the leader and through a follower (forwarded).
    let mut acked = BTreeMap::new();
    for i in 0..60 {
        let via = if i % 2 == 0 { leader } else { follower };
        let key = format!("/ha/before/{i}");
        let rev = put_retrying(&replicas[idx(via)].client(), &key, "v")
            .await
            .unwrap();
        acked.insert(key, ("v".to_string(), rev));
    }

    // Kill the leader; writes keep working after a new election, through both survivors.
    replicas[idx(leader)].kill();
    let killed_at = Instant::now();
    let mut after = 0;
    for i in 0..60 {
        let via = if i % 2 == 0 { follower } else { other };
        let key = format!("/ha/after/{i}");
        if let Some(rev) = put_retrying(&replicas[idx(via)].client(), &key, "w").await {
            acked.insert(key, ("w".to_string(), rev));
            after += 1;
        }
    }
    assert!(
        after >= 55,
        "only {after} of 60 writes succeeded after the leader died"
    );
    eprintln!("60 writes after leader loss took {:?}", killed_at.elapsed());
    let new_leader = replicas[idx(follower)]
        .wait_ready(Duration::from_secs(10))
        .await;
    assert_ne!(new_leader, leader);
    for id in [follower, other] {
        assert_all_present(&replicas[idx(id)].client(), &acked).await;
    }

    // The old leader restarts and catches up from the log.
    replicas[idx(leader)].restart();
    replicas[idx(leader)]
        .wait_ready(Duration::from_secs(30))
        .await;
    assert_all_present(&replicas[idx(leader)].client(), &acked).await;

    // A minority cannot commit: freeze two replicas, the third times out and acknowledges nothing.
    let lonely = other;
    for r in replicas.iter().filter(|r| r.id != lonely) {
        r.freeze();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lonely_client = replicas[idx(lonely)].client();
    let result = lonely_client.put(b"/ha/minority", b"x").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "minority write: {result:?}"
    );
    let read = lonely_client.range(RangeRequest::key("/ha/minority")).await;
    assert!(
        read.is_err(),
        "a linearizable read needs a quorum: {read:?}"
    );
    for r in replicas.iter().filter(|r| r.id != lonely) {
        r.thaw();
    }
    let key = "/ha/healed".to_string();
    let rev = put_retrying(&lonely_client, &key, "h")
        .await
        .expect("writes work once healed");
    acked.insert(key, ("h".to_string(), rev));

    // The watch spanned the leader change and the partition: every revision once, in order.
    // The follower may not have applied the last acknowledged write yet when asked: wait for
    // whichever is later.
    let applied = replicas[idx(follower)]
        .client()
        .status()
        .await
        .unwrap()
        .revision;
    let end = acked
        .values()
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(0)
        .max(applied);
    let mut revisions = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while revisions.last().copied().unwrap_or(0) < end {
        match tokio::time::timeout_at(deadline, watch.next())
            .await
            .expect("watch events in time")
        {
            Some(Ok(WatchResponse::Events(events))) => {
                for e in events {
                    // The writes of one transaction share its revision; no (revision, key)
                    // may come twice.
                    assert!(
                        seen.insert((e.revision(), e.kv.key.clone())),
                        "event repeated: revision {} key {:?}",
                        e.revision(),
                        e.kv.key
                    );
                    if revisions.last() != Some(&e.revision()) {
                        revisions.push(e.revision());
                    }
                }
            }
            Some(Ok(WatchResponse::Progress(_))) => {}
            other => panic!("watch broke: {other:?}"),
        }
    }
    let expected: Vec<u64> = (start..=end).collect();
    assert_eq!(
        revisions, expected,
        "the watch skipped or repeated revisions"
    );
    for (_, rev) in acked.values() {
        assert!(revisions.contains(rev));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_replica_catches_up_from_a_snapshot_and_membership_changes() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--snapshot-every".to_string(),
        "20".into(),
        "--snapshot-keep-logs".into(),
        "5".into(),
    ];
    let mut replicas = start_cluster(3, dir.path(), &flags);
    let leader = leader_of(&replicas).await;
    let lagging = replicas
        .iter()
        .map(|r| r.id)
        .find(|id| *id != leader)
        .unwrap();
    let idx = |id: u64| (id - 1) as usize;
    replicas[idx(lagging)].kill();
    // Enough sequential writes for several snapshots and purges, so the log no longer reaches back.
    let client = replicas[idx(leader)].client();
    let mut acked = BTreeMap::new();
    for i in 0..120 {
        let key = format!("/snap/{i}");
        let rev = put_retrying(&client, &key, "s").await.unwrap();
        acked.insert(key, ("s".to_string(), rev));
    }
    replicas[idx(lagging)].restart();
    replicas[idx(lagging)]
        .wait_ready(Duration::from_secs(30))
        .await;
    assert_all_present(&replicas[idx(lagging)].client(), &acked).await;
    let log = std::fs::read_to_string(replicas[idx(lagging)].log_path()).unwrap();
    assert!(
        log.contains("installed raft snapshot"),
        "the replica was meant to catch up by snapshot"
    );

    // Add a fourth replica at run time, then remove the first one.
    let port: u16 = replicas[0]
        .raft_addr
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let addr4 = format!("127.0.0.4:{port}");
    let mut flags4 = flags.to_vec();
    flags4.push("--join".into());
    let fourth = Replica::start(4, &addr4, &dir.path().join("replica-4"), &flags4);
    client
        .change_members(MemberChange::Add {
            id: 4,
            addr: addr4.clone(),
        })
        .await
        .unwrap();
    fourth.wait_ready(Duration::from_secs(30)).await;
    assert_all_present(&fourth.client(), &acked).await;
    let via_fourth = put_retrying(&fourth.client(), "/snap/via-4", "4")
        .await
        .unwrap();
    acked.insert("/snap/via-4".into(), ("4".into(), via_fourth));
    let removed = if leader == 1 { 2 } else { 1 };
    fourth
        .client()
        .change_members(MemberChange::Remove { id: removed })
        .await
        .unwrap();
    replicas[idx(removed)].kill();
    let rev = put_retrying(&fourth.client(), "/snap/after-remove", "r")
        .await
        .unwrap();
    acked.insert("/snap/after-remove".into(), ("r".into(), rev));
    for r in replicas.iter().filter(|r| r.id != removed).chain([&fourth]) {
        assert_all_present(&r.client(), &acked).await;
    }
}
