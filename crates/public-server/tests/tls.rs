//! The server's own TLS, driven in-process: TLS and plain users share the
//! one port, an agent links over TLS, an abort reaches a TLS user as a TCP
//! reset, a stalled handshake holds nothing past the header timeout, a
//! silent plain user still takes the silent route, and a replaced
//! certificate is what new connections see. Certificates come
//! from a throwaway CA made here.

mod common;

use common::echo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use local_agent::{run_agent, AgentConfig, Target};
use public_server::{run, Config, LiveConfig, ServerTls, Shutdown};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{client::TlsStream, TlsConnector};
use tokio_util::sync::CancellationToken;
use uptun_protocol::handshake::{read_answer, LinkAnswer, LinkRequest, PeerKind};
use uptun_protocol::{spawn_link, Role, PROTOCOL_VERSION};

const WAIT: Duration = Duration::from_secs(30);
const NAME: &str = "tunnel.uptun.test";

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {WAIT:?}"))
}

/// A throwaway CA and a certificate it signed for [`NAME`], on disk.
struct Pki {
    ca: String,
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Named apart, so a client that trusts another CA finds no issuer.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("uptun test CA {n}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![NAME.to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert_path,
        key: key_path,
        _dir: dir,
    }
}

impl Pki {
    fn tls(&self) -> ServerTls {
        ServerTls::from_pem_files(&self.cert, &self.key).unwrap()
    }
}

/// A TLS connection to `addr` that trusts only `ca`.
async fn tls_connect(addr: SocketAddr, ca: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(NAME).unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// A server on port 0 with `config`; stopped when the test ends.
async fn serve(config: impl Into<LiveConfig>) -> (SocketAddr, Shutdown) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    tokio::spawn(run(listener, config.into(), shutdown.clone()));
    (addr, shutdown)
}

/// An in-process agent on plain `http://` serving `tcp` with an echo.
async fn plain_agent(addr: SocketAddr) -> CancellationToken {
    let url = format!("http://{addr}").parse().unwrap();
    let channels = vec![("tcp".to_string(), Target::from(echo().await))];
    let stop = CancellationToken::new();
    tokio::spawn(run_agent(
        AgentConfig::new(url, "t0ken", channels),
        stop.clone(),
    ));
    stop
}

/// Sends `data`, half-closes, and returns everything that came back; the
/// read ends only at a clean end (on TLS, `close_notify`, not a bare FIN).
async fn round_trip<S: AsyncRead + AsyncWrite + Send + 'static>(io: S, data: &[u8]) -> Vec<u8> {
    let (mut read, mut write) = tokio::io::split(io);
    let sent = data.to_vec();
    let writer = tokio::spawn(async move {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
        write
    });
    let mut got = Vec::new();
    bounded("the echo", read.read_to_end(&mut got))
        .await
        .expect("a clean end after every byte");
    drop(writer.await.unwrap());
    got
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn tls_config(pki: &Pki) -> Config {
    let mut config = Config::new("t0ken");
    config.tls = Some(pki.tls());
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_and_plain_users_share_the_port_and_their_bytes_arrive_intact() {
    let pki = pki();
    let (addr, _shutdown) = serve(tls_config(&pki)).await;
    let _agent = plain_agent(addr).await;
    let data = pattern(1 << 20, 1);
    // A user waits for the agent to register (the connect timeout).
    let tls = tls_connect(addr, &pki.ca).await.unwrap();
    let plain = TcpStream::connect(addr).await.unwrap();
    let (over_tls, over_tcp) = tokio::join!(round_trip(tls, &data), round_trip(plain, &data));
    assert!(over_tls == data, "the TLS user's echo differs");
    assert!(over_tcp == data, "the plain user's echo differs");
}

/// An agent speaking the link handshake and frames over TLS, serving `tcp`
/// by echoing each stream's bytes back on it.
async fn tls_agent(addr: SocketAddr, ca: &str) {
    let mut tls = tls_connect(addr, ca).await.unwrap();
    let request = LinkRequest {
        kind: PeerKind::Agent,
        host: NAME.into(),
        token: Some("t0ken".into()),
        version: PROTOCOL_VERSION,
        channels: vec!["tcp".into()],
        window: 256 * 1024,
        name: Some("tls-agent".into()),
    };
    tls.write_all(request.to_http().as_bytes()).await.unwrap();
    let mut leftover = BytesMut::new();
    let window = match read_answer(&mut tls, &mut leftover).await.unwrap() {
        LinkAnswer::Accepted { window } => window,
        LinkAnswer::Refused(refusal) => panic!("link refused over TLS: {refusal:?}"),
    };
    let (read, write) = tokio::io::split(tls);
    let mux = uptun_protocol::Config {
        accept_incoming: true,
        ..Default::default()
    };
    let (_link, mut incoming) = spawn_link(read, write, leftover, Role::Dialer, mux, window);
    while let Some(offered) = incoming.next().await {
        let stream = offered.accept().await.unwrap();
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = stream.recv().await {
                stream.send(chunk).await.unwrap();
            }
            let _ = stream.finish().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_links_over_tls_and_serves_users() {
    let pki = pki();
    let (addr, _shutdown) = serve(tls_config(&pki)).await;
    let ca = pki.ca.clone();
    tokio::spawn(async move { tls_agent(addr, &ca).await });
    let data = pattern(256 << 10, 2);
    let user = TcpStream::connect(addr).await.unwrap();
    assert!(round_trip(user, &data).await == data, "the echo differs");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_user_turned_away_sees_a_reset_not_a_clean_close() {
    let pki = pki();
    let mut config = tls_config(&pki);
    config.connect_timeout = Duration::from_millis(100);
    let (addr, _shutdown) = serve(config).await;
    // No agent serves `tcp`: the raw user is reset after the connect timeout.
    let mut tls = tls_connect(addr, &pki.ca).await.unwrap();
    tls.write_all(b"hello, nobody\n").await.unwrap();
    let mut rest = Vec::new();
    let err = bounded("the user's end", tls.read_to_end(&mut rest))
        .await
        .expect_err("an abort must not look like a finished stream");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_handshake_is_dropped_at_the_header_timeout() {
    let pki = pki();
    let mut config = tls_config(&pki);
    config.header_timeout = Duration::from_millis(300);
    let (addr, _shutdown) = serve(config).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // A handshake record's first bytes, and then nothing.
    tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = bounded("the server to drop the stall", tcp.read_to_end(&mut rest)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "dropped after {took:?}, before the header timeout"
    );
    assert!(rest.is_empty(), "nothing is answered to half a hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn new_connections_see_a_replaced_certificate() {
    let (old, new) = (pki(), pki());
    let live = LiveConfig::new(tls_config(&old));
    let (addr, _shutdown) = serve(live.clone()).await;
    let kept = tls_connect(addr, &old.ca).await.unwrap();
    live.replace(tls_config(&new));
    let err = tls_connect(addr, &old.ca).await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    tls_connect(addr, &new.ca)
        .await
        .expect("the new certificate");
    drop(kept);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_plain_user_on_a_tls_port_takes_the_silent_route() {
    let pki = pki();
    let mut config = tls_config(&pki);
    config.sniff_timeout = Duration::from_millis(100);
    let (addr, _shutdown) = serve(config).await;
    // The `tcp` target speaks first, as a mail or database server would.
    let banner = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = banner.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = banner.accept().await {
            tokio::spawn(async move {
                socket.write_all(b"220 hello\r\n").await.unwrap();
                let mut rest = Vec::new();
                let _ = socket.read_to_end(&mut rest).await;
            });
        }
    });
    let url = format!("http://{addr}").parse().unwrap();
    let channels = vec![("tcp".to_string(), Target::from(target))];
    let agent = CancellationToken::new();
    tokio::spawn(run_agent(
        AgentConfig::new(url, "t0ken", channels),
        agent.clone(),
    ));
    let mut user = TcpStream::connect(addr).await.unwrap();
    let mut greeting = [0u8; 11];
    bounded("the banner", user.read_exact(&mut greeting))
        .await
        .unwrap();
    assert_eq!(&greeting, b"220 hello\r\n");
    agent.cancel();
}
