//! A corrupt or foreign data directory is refused with a clear error: never a panic, never a
//! silently empty store.

use std::time::Duration;

use store::{RaftConfig, RaftStore, Store, StoreError};

async fn open(dir: &std::path::Path, node_id: u64) -> Result<RaftStore, StoreError> {
    let config = RaftConfig {
        node_id,
        ..RaftConfig::single(dir, "127.0.0.1:0")
    };
    let config = RaftConfig {
        initial_members: [(node_id, "127.0.0.1:0".to_string())].into(),
        ..config
    };
    let store = RaftStore::open(config).await?;
    store.bootstrap().await?;
    store.wait_for_leader(Duration::from_secs(10)).await?;
    Ok(store)
}

async fn written_store(dir: &std::path::Path) {
    let store = open(dir, 1).await.unwrap();
    for i in 0..30 {
        store.put(format!("/k/{i}").as_bytes(), b"v").await.unwrap();
    }
    store.shutdown().await;
}

fn expect_corrupt(result: Result<RaftStore, StoreError>, what: &str) -> String {
    match result {
        Err(StoreError::Corrupt(msg)) => msg,
        Err(other) => panic!("{what}: expected a Corrupt error, got {other}"),
        Ok(_) => panic!("{what}: the store opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_with_other_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("member"), b"etcd was here").unwrap();
    let msg = expect_corrupt(open(dir.path(), 1).await, "foreign directory");
    assert!(msg.contains("not a Berth data directory"), "{msg}");
    assert!(
        std::fs::read(dir.path().join("member")).unwrap() == b"etcd was here",
        "left untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_log_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    written_store(dir.path()).await;
    std::fs::write(dir.path().join("raft-log.redb"), vec![0x5a; 8192]).unwrap();
    let msg = expect_corrupt(open(dir.path(), 1).await, "garbage log");
    assert!(msg.contains("raft-log.redb"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replicas_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    written_store(dir.path()).await;
    let msg = expect_corrupt(open(dir.path(), 2).await, "wrong replica");
    assert!(msg.contains("belongs to replica 1"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = RaftConfig {
        snapshot_every: 5,
        snapshot_keep_logs: 1,
        ..RaftConfig::single(dir.path(), "127.0.0.1:0")
    };
    let store = RaftStore::open(config).await.unwrap();
    store.bootstrap().await.unwrap();
    store
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    for i in 0..40 {
        store.put(format!("/k/{i}").as_bytes(), b"v").await.unwrap();
    }
    store.shutdown().await;
    let path = dir.path().join("snapshot.bin");
    let mut bytes = std::fs::read(&path).expect("a snapshot was written");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let msg = expect_corrupt(open(dir.path(), 1).await, "damaged snapshot");
    assert!(msg.contains("checksum"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    written_store(dir.path()).await;
    let store = open(dir.path(), 1).await.unwrap();
    let all = store
        .range(store::RangeRequest::prefix("/k/"))
        .await
        .unwrap();
    assert_eq!(all.kvs.len(), 30);
    assert_eq!(all.revision, 31);
}
