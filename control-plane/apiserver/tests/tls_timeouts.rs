//! Slow and lying clients on a real TLS socket: a connection that never finishes its headers is
//! closed after the header timeout, a declared body over the limit is refused before it is
//! sent, request targets that are not ASCII are refused, and other connections are served
//! meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver::{Api, request, router, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

struct Server {
    addr: std::net::SocketAddr,
    connector: tokio_rustls::TlsConnector,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(timeouts: tls::Timeouts) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::Pki::load_or_create(dir.path(), &["127.0.0.1".to_string()]).unwrap();
    let api = Api::new(Arc::new(store::MemoryStore::default()));
    api.ensure_cluster(request::ROOT_CLUSTER).await.unwrap();
    let admin = apiserver::auth::UserInfo::controller_manager();
    let app = router(api).layer(axum::Extension(apiserver::auth::Authenticated(Arc::new(
        admin,
    ))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = pki.server_config().unwrap();
    tokio::spawn(tls::serve_with(
        listener,
        config,
        app,
        async {
            let _ = stopped.await;
        },
        timeouts,
    ));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Server {
        addr,
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        _dir: dir,
        _stop: stop,
    }
}

impl Server {
    async fn connect(&self) -> TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        self.connector.connect(name, tcp).await.unwrap()
    }

    /// Sends `request` on a new connection and reads until the server closes it.
    async fn exchange(&self, request: &[u8]) -> String {
        let mut conn = self.connect().await;
        conn.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[tokio::test]
async fn partial_headers_are_cut_off_after_the_header_timeout() {
    let server = start(tls::Timeouts {
        header_read: Duration::from_millis(500),
        ..tls::Timeouts::default()
    })
    .await;
    let mut slow = server.connect().await;
    slow.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    // Meanwhile, another client is served.
    let answer = server
        .exchange(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut out)).await;
    let elapsed = started.elapsed();
    assert!(
        read.is_ok(),
        "the server kept a connection with partial headers open"
    );
    // Closed without an answer, as Go closes a connection past ReadHeaderTimeout.
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_unread() {
    let server = start(tls::Timeouts::default()).await;
    let started = Instant::now();
    // 100 MB announced, none sent: the answer comes at once, not after a read.
    let answer = server
        .exchange(
            b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"reason\":\"RequestEntityTooLarge\""),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Chunked, past the limit: refused once the limit is passed.
    let mut conn = server.connect().await;
    conn.write_all(
        b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
    let mut sent = 0;
    let mut out = Vec::new();
    while sent < 8 * 1024 * 1024 {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        sent += 0x10000;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut out)).await;
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // And the server still answers.
    let answer = server
        .exchange(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn raw_non_ascii_request_targets_are_refused() {
    let server = start(tls::Timeouts::default()).await;
    // Bytes the URI grammar does not allow never reach the router: hyper answers 400 (with no
    // Status body) and closes the connection.
    for target in [
        &b"/api/v1/namespaces/\xff\xfe/pods"[..],
        b"/api/v1/pods?labelSelector=\xc0",
    ] {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(target);
        request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        let answer = server.exchange(&request).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    // Percent-escaped, they route to nothing (404) or fail as a selector (400), as Statuses.
    for (target, code) in [
        ("/api/v1/namespaces/%ff%fe/pods", "404"),
        ("/api/v1/pods?labelSelector=%c0", "400"),
    ] {
        let answer = server
            .exchange(
                format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {code}")), "{answer}");
        assert!(answer.contains("\"kind\":\"Status\""), "{answer}");
    }
}
