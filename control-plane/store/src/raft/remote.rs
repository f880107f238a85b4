//! A client of a replica's store API over HTTP, itself a [`Store`].
//!
//! Tools and multi-process tests use it to reach `berth server` replicas from outside; since it
//! implements [`Store`], the conformance suite runs against a replicated cluster through it.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{MemberChange, ProposeError, WireError, net::encode};
use crate::Store;
use crate::error::{Result, StoreError};
use crate::state::WatchStream;
use crate::types::{
    RangeRequest, RangeResponse, Revision, StoreStatus, Txn, TxnResponse, WatchRequest,
    WatchResponse,
};

/// A store reached over HTTP at one replica's raft listener.
#[derive(Clone, Debug)]
pub struct RemoteStore {
    base: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl RemoteStore {
    /// A client for the replica listening at `addr` (`host:port`).
    pub fn new(addr: &str) -> Self {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .expect("http client");
        RemoteStore {
            base: format!("http://{addr}"),
            client,
            timeout: Duration::from_secs(15),
        }
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .timeout(self.timeout)
            .body(encode(req))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{}{path}: {e}", self.base)))?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{}{path}: {e}", self.base)))?;
        let result: std::result::Result<Resp, WireError> = postcard::from_bytes(&bytes)
            .map_err(|e| StoreError::Internal(format!("undecodable reply: {e}")))?;
        result.map_err(Into::into)
    }

    /// Adds or removes a replica.
    pub async fn change_members(&self, change: MemberChange) -> Result<()> {
        let result: std::result::Result<(), ProposeError> = {
            let bytes = self
                .client
                .post(format!("{}/store/members", self.base))
                .timeout(Duration::from_secs(60))
                .body(encode(&change))
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?
                .bytes()
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            postcard::from_bytes(&bytes).map_err(|e| StoreError::Internal(e.to_string()))?
        };
        match result {
            Ok(()) => Ok(()),
            Err(ProposeError::NotLeader(_)) => Err(StoreError::Unavailable("no leader".into())),
            Err(ProposeError::Failed(e)) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Store for RemoteStore {
    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.call("/store/txn", &txn).await
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        self.call("/store/range", &req).await
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        let response = self
            .client
            .post(format!("{}/store/watch", self.base))
            .body(encode(&req))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("watch: {e}")))?;
        let mut body = response.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        // The first frame says whether the watch was created, so a refused watch fails here.
        let created: std::result::Result<(), WireError> = loop {
            if let Some(payload) = take_frame(&mut buf) {
                break postcard::from_bytes(&payload)
                    .map_err(|e| StoreError::Internal(format!("bad watch frame: {e}")))?;
            }
            match body.next().await {
                Some(chunk) => buf
                    .extend_from_slice(&chunk.map_err(|e| StoreError::Unavailable(e.to_string()))?),
                None => {
                    return Err(StoreError::Unavailable(
                        "watch closed before it was created".into(),
                    ));
                }
            }
        };
        created?;
        let first = take_frames(&mut buf)?;
        let first = futures::stream::iter(first.into_iter().map(|f| f.map_err(StoreError::from)));
        let rest =
            futures::stream::unfold((body, buf, false), |(mut body, mut buf, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match body.next().await {
                        Some(Ok(chunk)) => {
                            buf.extend_from_slice(&chunk);
                            match take_frames(&mut buf) {
                                Ok(frames) if frames.is_empty() => continue,
                                Ok(frames) => {
                                    let items: Vec<Result<WatchResponse>> = frames
                                        .into_iter()
                                        .map(|f| f.map_err(StoreError::from))
                                        .collect();
                                    return Some((
                                        futures::stream::iter(items),
                                        (body, buf, false),
                                    ));
                                }
                                Err(e) => {
                                    return Some((
                                        futures::stream::iter(vec![Err(e)]),
                                        (body, buf, true),
                                    ));
                                }
                            }
                        }
                        Some(Err(e)) => {
                            let err = StoreError::Unavailable(format!("watch stream broke: {e}"));
                            return Some((
                                futures::stream::iter(vec![Err(err)]),
                                (body, buf, true),
                            ));
                        }
                        None => {
                            let err =
                                StoreError::Unavailable("watch stream closed by the server".into());
                            return Some((
                                futures::stream::iter(vec![Err(err)]),
                                (body, buf, true),
                            ));
                        }
                    }
                }
            })
            .flatten();
        Ok(Box::pin(first.chain(rest)))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.call("/store/compact", &revision).await
    }

    async fn status(&self) -> Result<StoreStatus> {
        let bytes = self
            .client
            .get(format!("{}/store/status", self.base))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result: std::result::Result<StoreStatus, WireError> =
            postcard::from_bytes(&bytes).map_err(|e| StoreError::Internal(e.to_string()))?;
        result.map_err(Into::into)
    }

    async fn save_snapshot(&self, _path: &Path) -> Result<Revision> {
        Err(StoreError::Unavailable(
            "snapshots are taken on the replica itself (berth snapshot save)".into(),
        ))
    }
}

/// Splits one complete frame's payload off the front of `buf`, if there is one.
fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().expect("4 bytes")) as usize;
    if buf.len() < 4 + len {
        return None;
    }
    let payload = buf[4..4 + len].to_vec();
    buf.drain(..4 + len);
    Some(payload)
}

/// Splits every complete watch item off the front of `buf`.
fn take_frames(buf: &mut Vec<u8>) -> Result<Vec<std::result::Result<WatchResponse, WireError>>> {
    let mut frames = Vec::new();
    while let Some(payload) = take_frame(buf) {
        let frame = postcard::from_bytes(&payload)
            .map_err(|e| StoreError::Internal(format!("bad watch frame: {e}")))?;
        frames.push(frame);
    }
    Ok(frames)
}
