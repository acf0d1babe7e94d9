//! Starting the peers: rathole (server + client from TOML configs written
//! here) and bore (`bore server` + `bore local`), both on 127.0.0.1.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::procs::Proc;
use crate::tls::{TlsFiles, PKCS12_PASSWORD};

const TOKEN: &str = "uptun-bench-token";

/// A free loopback port for programs that cannot bind port 0 themselves and
/// report it (rathole); the tiny race with other programs is acceptable here.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("could not find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Starts rathole's server and client; the entry is the service port. With
/// `tls`, control and data channels use rathole's TLS transport (which
/// `program` must have been built with), else plain TCP.
pub async fn start_rathole(
    dir: &Path,
    program: &Path,
    label: &str,
    target: SocketAddr,
    tls: Option<&TlsFiles>,
) -> anyhow::Result<(SocketAddr, Vec<Proc>)> {
    let control = free_port()?;
    let service = free_port()?;
    let (server_transport, client_transport) = match tls {
        Some(tls) => rathole_tls(tls)?,
        None => (String::new(), String::new()),
    };
    let server_toml = format!(
        "[server]\nbind_addr = \"127.0.0.1:{control}\"\ndefault_token = \"{TOKEN}\"\n\n\
         {server_transport}[server.services.bench]\nbind_addr = \"127.0.0.1:{service}\"\n"
    );
    let client_toml = format!(
        "[client]\nremote_addr = \"127.0.0.1:{control}\"\ndefault_token = \"{TOKEN}\"\n\n\
         {client_transport}[client.services.bench]\nlocal_addr = \"{target}\"\n"
    );
    let server_path = dir.join(format!("{label}.server.toml"));
    let client_path = dir.join(format!("{label}.client.toml"));
    std::fs::write(&server_path, server_toml).context("could not write rathole's server.toml")?;
    std::fs::write(&client_path, client_toml).context("could not write rathole's client.toml")?;
    let mut server = Proc::spawn(
        dir,
        &format!("{label}.server"),
        program,
        &["--server".into(), server_path.display().to_string()],
    )?;
    // A client that finds no server logs an error and retries after a second.
    server
        .wait_for_log("Listening at", Duration::from_secs(10))
        .await?;
    let client = Proc::spawn(
        dir,
        &format!("{label}.client"),
        program,
        &["--client".into(), client_path.display().to_string()],
    )?;
    let entry = SocketAddr::from(([127, 0, 0, 1], service));
    Ok((entry, vec![server, client]))
}

/// The `[server.transport]` and `[client.transport]` tables of rathole's
/// TLS transport (keys as rathole 0.5.0's `TlsConfig`): the server presents
/// the run's certificate from a PKCS#12 file, the client trusts the run's CA
/// and checks the name `localhost` (it dials 127.0.0.1).
fn rathole_tls(tls: &TlsFiles) -> anyhow::Result<(String, String)> {
    let pkcs12 = tls.pkcs12()?;
    let server = format!(
        "[server.transport]\ntype = \"tls\"\n\n[server.transport.tls]\n\
         pkcs12 = {:?}\npkcs12_password = \"{PKCS12_PASSWORD}\"\n\n",
        pkcs12.display().to_string()
    );
    let client = format!(
        "[client.transport]\ntype = \"tls\"\n\n[client.transport.tls]\n\
         trusted_root = {:?}\nhostname = \"localhost\"\n\n",
        tls.ca.display().to_string()
    );
    Ok((server, client))
}

/// Starts `bore server` and `bore local`; bore's control port is fixed at
/// 7835, and the tunnel port is the one the server picks and the client logs.
pub async fn start_bore(
    dir: &Path,
    program: &Path,
    label: &str,
    target: SocketAddr,
) -> anyhow::Result<(SocketAddr, Vec<Proc>)> {
    let mut server = Proc::spawn(
        dir,
        &format!("{label}.server"),
        program,
        &args(&["server", "--bind-addr", "127.0.0.1", "--secret", TOKEN]),
    )?;
    server
        .wait_for_log("server listening", Duration::from_secs(10))
        .await
        .context("bore server did not start (is port 7835 busy?)")?;
    let mut client = Proc::spawn(
        dir,
        &format!("{label}.client"),
        program,
        &args(&[
            "local",
            &target.port().to_string(),
            "--local-host",
            &target.ip().to_string(),
            "--to",
            "127.0.0.1",
            "--port",
            "0",
            "--secret",
            TOKEN,
        ]),
    )?;
    let entry = client.wait_for_addr("listening at ").await?;
    Ok((entry, vec![server, client]))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}
