//! `uptun-bench relay`: a plain TCP relay with 256 KiB buffers and no
//! framing. Two of them in a chain are the `relay2` system, the practical
//! limit of any two-process tunnel on the machine.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

const BUF: usize = 256 * 1024;

/// Accepts on `listen` and relays every connection to `to`; prints
/// `listening addr=ADDR` on stdout once bound (port 0 picks one).
pub async fn run(listen: SocketAddr, to: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("relay could not listen on {listen}"))?;
    println!("listening addr={}", listener.local_addr()?);
    loop {
        let (user, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors under the idle-connection load: back off.
                eprintln!("relay: accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            if let Err(err) = relay(user, to).await {
                eprintln!("relay: {err:#}");
            }
        });
    }
}

async fn relay(mut user: TcpStream, to: SocketAddr) -> anyhow::Result<()> {
    let mut onward = TcpStream::connect(to)
        .await
        .with_context(|| format!("could not reach {to}"))?;
    user.set_nodelay(true)?;
    onward.set_nodelay(true)?;
    // Resets when the load generator drops its connections are expected.
    let _ = tokio::io::copy_bidirectional_with_sizes(&mut user, &mut onward, BUF, BUF).await;
    Ok(())
}
