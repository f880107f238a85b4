//! Raft RPC between replicas over HTTP, and the store's own HTTP API on the same listener.
//!
//! Bodies are postcard-encoded; each reply is a `Result` whose error side is the remote's own
//! error type, so a refusal by the peer (say, a stale term) is told apart from a network failure.
//! The store API (`/store/...`) is what followers use to forward proposals and read-index
//! requests to the leader, and what tools and tests use to reach a replica from outside.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Command, Inner, MemberChange, Node, NodeId, ProposeError, TypeConfig, WireError};
use crate::types::{RangeRequest, Txn};
use crate::{Store, WatchRequest};

/// Frames of a watch response body are a 4-byte big-endian length, then the postcard payload.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("wire types always encode")
}

/// Creates clients for peers.
#[derive(Clone)]
pub(crate) struct Network {
    pub(crate) client: reqwest::Client,
}

/// A client for one peer.
pub(crate) struct Peer {
    client: reqwest::Client,
    target: NodeId,
    node: Node,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        Peer {
            client: self.client.clone(),
            target,
            node: node.clone(),
        }
    }
}

impl Peer {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, Node, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("http://{}/raft/{path}", self.node.addr);
        let response = self
            .client
            .post(&url)
            .timeout(timeout)
            .body(encode(req))
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let result: Result<Resp, E> =
            postcard::from_bytes(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call("append", &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call("vote", &rpc, option.hard_ttl()).await
    }
}

fn postcard_response<T: Serialize>(value: &T) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-postcard")],
        encode(value),
    )
        .into_response()
}

/// A postcard-encoded request body.
struct Postcard<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Postcard<T> {
    type Rejection = (StatusCode, String);

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("unreadable request body: {e}"),
            )
        })?;
        postcard::from_bytes(&body).map(Postcard).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("undecodable request body: {e}"),
            )
        })
    }
}

type Shared = AxumState<Arc<Inner>>;

/// The router serving raft RPC and the store API for one replica.
pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/store/propose", post(propose))
        .route("/store/read-index", post(read_index))
        .route("/store/txn", post(txn))
        .route("/store/range", post(range))
        .route("/store/watch", post(watch))
        .route("/store/compact", post(compact))
        .route("/store/status", get(status))
        .route("/store/members", post(members))
        .with_state(inner)
}

async fn append(
    AxumState(inner): Shared,
    Postcard(req): Postcard<AppendEntriesRequest<TypeConfig>>,
) -> Response {
    postcard_response(&inner.raft.append_entries(req).await)
}

async fn vote(AxumState(inner): Shared, Postcard(req): Postcard<VoteRequest<NodeId>>) -> Response {
    postcard_response(&inner.raft.vote(req).await)
}

async fn snapshot(
    AxumState(inner): Shared,
    Postcard(req): Postcard<InstallSnapshotRequest<TypeConfig>>,
) -> Response {
    postcard_response(&inner.raft.install_snapshot(req).await)
}

/// A proposal forwarded by a follower: applied here, answered with its log index.
async fn propose(AxumState(inner): Shared, Postcard(cmd): Postcard<Command>) -> Response {
    let result: Result<(u64, super::Reply), ProposeError> = inner.propose_here(cmd).await;
    postcard_response(&result)
}

async fn read_index(AxumState(inner): Shared) -> Response {
    postcard_response(&inner.read_index_here().await)
}

async fn txn(AxumState(inner): Shared, Postcard(txn): Postcard<Txn>) -> Response {
    let store = super::RaftStore { inner };
    postcard_response(&store.txn(txn).await.map_err(WireError::from))
}

async fn range(AxumState(inner): Shared, Postcard(req): Postcard<RangeRequest>) -> Response {
    let store = super::RaftStore { inner };
    postcard_response(&store.range(req).await.map_err(WireError::from))
}

async fn compact(AxumState(inner): Shared, Postcard(rev): Postcard<u64>) -> Response {
    let store = super::RaftStore { inner };
    postcard_response(&store.compact(rev).await.map_err(WireError::from))
}

async fn status(AxumState(inner): Shared) -> Response {
    let store = super::RaftStore { inner };
    postcard_response(&store.status().await.map_err(WireError::from))
}

async fn members(AxumState(inner): Shared, Postcard(change): Postcard<MemberChange>) -> Response {
    postcard_response(&inner.change_members(change).await)
}

/// A watch as a stream of frames: first a `Result<(), WireError>` saying whether the watch was
/// created, then one `Result<WatchResponse, WireError>` per item.
async fn watch(AxumState(inner): Shared, Postcard(req): Postcard<WatchRequest>) -> Response {
    let store = super::RaftStore { inner };
    let stream = match store.watch(req).await {
        Ok(stream) => stream,
        Err(e) => {
            let created: Result<(), WireError> = Err(e.into());
            return (StatusCode::OK, frame(&encode(&created))).into_response();
        }
    };
    let created = futures::stream::once(async { Ok::<(), WireError>(()) }).map(|c| encode(&c));
    let items = stream.map(|item| encode(&item.map_err(WireError::from)));
    let frames = created
        .chain(items)
        .map(|payload| Ok::<_, std::convert::Infallible>(frame(&payload)));
    (
        StatusCode::OK,
        [("content-type", "application/x-postcard-stream")],
        Body::from_stream(frames),
    )
        .into_response()
}
