//! The README's first command works: the demo brings up a server, an agent
//! and a sample page, and the page comes through the tunnel.

use std::process::Command;

#[test]
fn the_demo_serves_its_page_through_the_tunnel() {
    let out = Command::new(env!("CARGO_BIN_EXE_uptun-demo"))
        .args(["--listen", "127.0.0.1:0", "--check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("ok: the sample page came through the tunnel")
            && stdout.contains("status lists the agent"),
        "{stdout}"
    );
}
