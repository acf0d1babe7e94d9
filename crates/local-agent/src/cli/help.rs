//! The examples and notes `--help` prints after the flags.

/// What `local-agent --help` says after the flags.
pub const EXAMPLES: &str = "\
Examples:
  # Serve a web app and ssh through the public server
  local-agent --server http://tunnel.example.com --token s3cret \\
      --channel web=127.0.0.1:3000 --channel ssh=10.0.0.5:22

  # Same, over two links (busy tunnels on machines with spare cores)
  local-agent --server http://tunnel.example.com --token s3cret --links 2 \\
      --channel web=127.0.0.1:3000

  # Tell a web server the user's real address: nginx with `listen 8080 proxy_protocol;`
  local-agent --server http://tunnel.example.com --token s3cret \\
      --channel web=127.0.0.1:8080 --proxy-protocol web=v2

  # Share one long-lived program: every stream on `top` sees its screen and
  # may type into it; --session-restart never runs it once, not again on exit
  local-agent --server http://tunnel.example.com --token s3cret \\
      --channel top=session:htop --session-restart never

  # Behind a router or CDN that passes only WebSocket upgrades: the default
  # --transport auto finds out by itself; ws:// goes straight to WebSocket
  local-agent --server ws://tunnel.example.com --token s3cret \\
      --channel web=127.0.0.1:3000

  # A console per connection: each gets a new terminal running bash, closed
  # after 15 minutes without a keystroke or output
  local-agent --server http://tunnel.example.com --token s3cret \\
      --channel console=pty:bash --idle-timeout console=15m

  # Reach the ssh channel from anywhere, through the same port: clients
  # present the server's --client-token, not the agent token
  ssh -o ProxyCommand='local-agent connect --server http://tunnel.example.com --token c1ient ssh' me@host

  # Or map it to a local port
  local-agent forward --server http://tunnel.example.com --token c1ient 127.0.0.1:2222=ssh

  # Over TLS, where a router or nginx in front of the server terminates it;
  # --ca trusts a private CA besides Mozilla's roots and this system's store
  local-agent --server https://tunnel.example.com --token s3cret --ca /etc/uptun/ca.pem \\
      --channel web=127.0.0.1:3000

A certificate that cannot be trusted is one line saying what to pass (--ca, the
name it was issued for) and exit code 2; --insecure skips the check, as a last resort.";

/// What `attach --help` says after the flags: detaching, exit codes, examples.
pub const ATTACH: &str = "\
Detaching: press Ctrl-] then d (with the default --detach-keys). attach exits 0
and prints one line; a pty: channel's process is hung up, a session: goes on.
To send Ctrl-] itself, press it twice; Ctrl-] followed by any key but d sends both.

Exit codes: the remote process's (exit 3 there: 3 here; a signal: 128 + its
number), 0 after a detach, 128 + N after signal N (TERM, INT, HUP, QUIT) here,
1 when the link or stream failed, 2 for a mistake to fix (token, flags).

Examples (the token is one of the server's --client-token):
  # A shell the agent runs for you: local-agent … --channel console=pty:bash
  local-agent attach --server http://tunnel.example.com --token c1ient console

  # Watch a shared session without typing into it; detach with Ctrl-Q
  local-agent attach --server http://tunnel.example.com --token c1ient \\
      --read-only --detach-keys ctrl-q logs

  # No terminal: a pipe, like connect
  echo 'uname -a' | local-agent attach --server http://tunnel.example.com --token c1ient console";
