//! Unit and property tests of `sni.rs`. ClientHellos are built here from raw
//! bytes (RFC 8446 §4.1.2), not by a TLS library, so a mistake rustls and a
//! library's encoder shared could not hide; real clients (curl, openssl)
//! are in `tests/tests/sni.rs`.

use proptest::prelude::*;

use super::*;

fn u16_len(body: &[u8]) -> [u8; 2] {
    u16::try_from(body.len()).unwrap().to_be_bytes()
}

fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
    [&kind.to_be_bytes()[..], &u16_len(body), body].concat()
}

/// A TLS 1.3 ClientHello handshake message, with `padding` bytes of the
/// padding extension (RFC 7685) to make it as long as a test needs.
fn client_hello(sni: Option<&str>, padding: usize) -> Vec<u8> {
    let mut extensions = Vec::new();
    if let Some(name) = sni {
        let entry = [&[0][..], &u16_len(name.as_bytes()), name.as_bytes()].concat();
        extensions.extend(extension(0, &[&u16_len(&entry)[..], &entry].concat()));
    }
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256.
    extensions.extend(extension(13, &[0, 4, 0x04, 0x03, 0x08, 0x04]));
    // supported_versions: TLS 1.3, TLS 1.2.
    extensions.extend(extension(43, &[4, 0x03, 0x04, 0x03, 0x03]));
    if padding > 0 {
        extensions.extend(extension(21, &vec![0; padding]));
    }
    let mut body = vec![0x03, 0x03];
    body.extend([7; 32]); // random
    body.push(32);
    body.extend([9; 32]); // legacy session id
    body.extend([0, 4, 0x13, 0x01, 0x13, 0x02]); // cipher suites
    body.extend([1, 0]); // compression: null
    body.extend(u16_len(&extensions));
    body.extend(extensions);
    let len = u32::try_from(body.len()).unwrap().to_be_bytes();
    [&[1][..], &len[1..], &body].concat()
}

/// `message` in handshake records of at most `fragment` bytes each.
fn records(message: &[u8], fragment: usize) -> Vec<u8> {
    message
        .chunks(fragment)
        .flat_map(|part| [&[0x16, 0x03, 0x01][..], &u16_len(part), part].concat())
        .collect()
}

fn hello_bytes(sni: &str) -> Vec<u8> {
    records(&client_hello(Some(sni), 0), 1 << 14)
}

/// What a fresh reader makes of `bytes`, fed one prefix per split point.
fn seen(bytes: &[u8], splits: &[usize]) -> Seen {
    let mut reader = HelloReader::default();
    let mut cuts: Vec<usize> = splits.iter().map(|s| s % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([bytes.len()]) {
        reader.read(&bytes[..cut]);
    }
    reader.seen
}

fn hello(name: Option<&str>) -> Seen {
    Seen::Hello(name.map(str::to_owned))
}

#[test]
fn a_whole_hello_gives_its_server_name() {
    assert_eq!(
        seen(&hello_bytes("a.example.test"), &[]),
        hello(Some("a.example.test"))
    );
    // rustls lower-cases the name; the host matcher ignores case anyway.
    assert_eq!(
        seen(&hello_bytes("A.Example.TEST"), &[]),
        hello(Some("a.example.test"))
    );
    let nameless = records(&client_hello(None, 0), 1 << 14);
    assert_eq!(seen(&nameless, &[]), hello(None));
    // RFC 6066 forbids an IP address as a host_name; it is no name at all.
    assert_eq!(seen(&hello_bytes("127.0.0.1"), &[]), hello(None));
}

#[test]
fn every_prefix_of_a_hello_is_partial_and_the_whole_is_read_once() {
    let bytes = hello_bytes("a.example.test");
    let mut reader = HelloReader::default();
    for cut in 1..bytes.len() {
        assert_eq!(
            reader.read(&bytes[..cut]),
            Some(TlsFacts::Partial),
            "{cut} bytes"
        );
    }
    let whole = Some(TlsFacts::Hello {
        sni: Some("a.example.test"),
    });
    assert_eq!(reader.read(&bytes), whole);
    assert_eq!(reader.fed, bytes.len());
    assert!(reader.acceptor.is_none(), "the copy is dropped once read");
}

#[test]
fn a_hello_split_across_records_is_joined() {
    for fragment in [1, 7, 100, 1000] {
        let bytes = records(&client_hello(Some("x.b.example.test"), 3000), fragment);
        let all = seen(&bytes, &[]);
        assert_eq!(
            all,
            hello(Some("x.b.example.test")),
            "{fragment}-byte records"
        );
        assert_eq!(
            seen(&bytes, &[5, 6, 999, 1000]),
            all,
            "{fragment}-byte records, split"
        );
    }
}

#[test]
fn bytes_that_do_not_start_a_tls_handshake_are_not_tls() {
    for start in [
        &b"GET "[..],
        b"SSH-2.0",
        b"\x16\x02\x00",
        b"\x17\x03\x03\x00\x01x",
    ] {
        assert_eq!(seen(start, &[]), Seen::NotTls, "{start:?}");
    }
    assert_eq!(seen(b"\x16", &[]), Seen::Partial);
    assert_eq!(seen(b"", &[]), Seen::Nothing);
}

#[test]
fn hellos_rustls_refuses_are_not_tls() {
    let mut no_null = hello_bytes("a.example.test");
    // The compression list `[1, 0]` comes right after the cipher suites.
    let at = no_null
        .windows(4)
        .position(|w| w == [0x13, 0x02, 1, 0])
        .unwrap();
    no_null[at + 3] = 1;
    let server_hello = [&[0x16, 0x03, 0x03, 0, 4][..], &[2, 0, 0, 0]].concat();
    let cases: [(&str, Vec<u8>); 4] = [
        ("no null compression", no_null),
        ("a ServerHello", server_hello),
        // A handshake message over rustls' 64 KiB bound: refused at its header.
        (
            "a 16 MiB hello",
            vec![0x16, 0x03, 0x01, 0, 4, 1, 0xff, 0xff, 0xff],
        ),
        // A record longer than TLS allows (2^14 + 2048): refused at its header.
        ("an oversized record", vec![0x16, 0x03, 0x01, 0xff, 0xff]),
    ];
    for (what, bytes) in cases {
        assert_eq!(seen(&bytes, &[]), Seen::NotTls, "{what}");
    }
}

#[test]
fn once_decided_later_bytes_change_nothing() {
    let bytes = [
        hello_bytes("a.example.test"),
        b"\x17\x03\x03\x00\x02hi".to_vec(),
    ]
    .concat();
    let mut reader = HelloReader::default();
    let len = hello_bytes("a.example.test").len();
    reader.read(&bytes[..len]);
    let fed = reader.fed;
    assert_eq!(
        reader.read(&bytes),
        Some(TlsFacts::Hello {
            sni: Some("a.example.test")
        })
    );
    assert_eq!(reader.fed, fed, "bytes after the hello are not parsed");
}

fn dns_name() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", 1..5)
        .prop_map(|labels| format!("{}.test", labels.join(".")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any name, any record size, any reads: the name comes out whole.
    #[test]
    fn names_survive_any_framing(
        name in dns_name(),
        fragment in 1usize..400,
        padding in 0usize..2000,
        splits in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let bytes = records(&client_hello(Some(&name), padding), fragment);
        prop_assert_eq!(seen(&bytes, &splits), Seen::Hello(Some(name)));
    }

    /// A hello with bytes changed or cut short, or garbage after a record
    /// header: never a panic, the copy never outgrows the bytes, and how
    /// the bytes were split across reads changes nothing.
    #[test]
    fn damaged_hellos_are_judged_the_same_however_they_arrive(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        splits in proptest::collection::vec(any::<usize>(), 0..6),
        use_garbage in any::<bool>(),
    ) {
        let mut bytes = if use_garbage {
            [&[0x16, 0x03][..], &garbage].concat()
        } else {
            records(&client_hello(Some("a.example.test"), 100), 90)
        };
        for (at, value) in edits {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        bytes.truncate(1 + cut % bytes.len());
        let mut reader = HelloReader::default();
        reader.read(&bytes);
        prop_assert!(reader.fed <= bytes.len());
        prop_assert_eq!(seen(&bytes, &splits), reader.seen);
    }
}

/// Classification of TLS users under the acceptance routes of
/// `tests/tests/sni.rs`: host rules for `a.example.test` and
/// `*.b.example.test`, then the defaults.
mod classify {
    use std::time::Duration;

    use bytes::BytesMut;
    use tokio::io::AsyncWriteExt;
    use tokio::time::Instant;

    use super::{client_hello, hello_bytes, records};
    use crate::classify::{classify, Visitor};
    use crate::config::Config;
    use crate::route::{default_rules, Action, Matcher, Rule};

    fn config() -> Config {
        let to = |name: &str| Action::Channel(name.into());
        let mut config = Config::new("t");
        config.routes = vec![
            Rule::new(Matcher::Host("a.example.test".into()), to("a")),
            Rule::new(Matcher::Host("*.b.example.test".into()), to("b")),
        ];
        config.routes.extend(default_rules("web", "ssh", "tcp"));
        config
    }

    /// Classifies what `parts` send, one write each with `pause` between
    /// them; the write side stays open (no EOF) unless `close`.
    async fn run(parts: Vec<Vec<u8>>, pause: Duration, close: bool) -> (String, BytesMut) {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            for part in parts {
                client.write_all(&part).await.unwrap();
                tokio::time::sleep(pause).await;
            }
            if !close {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
        match classify(&mut server, &config()).await.unwrap() {
            Visitor::Raw { to, buf } => (to.channel, buf),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hello_trickled_in_is_routed_by_its_name_with_every_byte() {
        for (name, channel) in [("a.example.test", "a"), ("v2.x.b.example.test", "b")] {
            let bytes = records(&client_hello(Some(name), 1000), 300);
            let parts: Vec<Vec<u8>> = bytes.chunks(197).map(<[u8]>::to_vec).collect();
            // Each pause is longer than the sniff timeout (and all of them
            // shorter than the header deadline): only the hello's end decides.
            let (got, buf) = run(parts, Duration::from_millis(600), false).await;
            assert_eq!(got, channel, "{name}");
            assert!(buf[..] == bytes[..], "{name}: the bytes handed on");
        }
        let (got, _) = run(vec![hello_bytes("c.example.test")], Duration::ZERO, false).await;
        assert_eq!(got, "tcp", "a name no rule takes");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unfinished_hello_goes_on_as_raw_bytes_at_the_deadline_or_eof() {
        let bytes = hello_bytes("a.example.test");
        let half = bytes[..bytes.len() / 2].to_vec();
        let start = Instant::now();
        let (got, buf) = run(vec![half.clone()], Duration::ZERO, false).await;
        assert_eq!(got, "tcp");
        assert!(buf[..] == half[..], "the bytes handed on");
        assert_eq!(start.elapsed(), config().header_timeout);
        let (got, buf) = run(vec![half.clone()], Duration::ZERO, true).await;
        assert_eq!(got, "tcp", "at EOF");
        assert!(buf[..] == half[..], "the bytes handed on at EOF");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hello_that_never_ends_is_cut_at_16_kib() {
        // A handshake message announcing 60 000 bytes, sent in full records.
        let mut message = vec![1, 0, 0xea, 0x60];
        message.resize(4 + 60_000, 0);
        let bytes = records(&message, 1 << 14);
        let parts: Vec<Vec<u8>> = bytes.chunks(1000).map(<[u8]>::to_vec).collect();
        let start = Instant::now();
        let (got, buf) = run(parts, Duration::from_millis(10), false).await;
        assert_eq!(got, "tcp");
        assert!((16 << 10..17 << 10).contains(&buf.len()), "{}", buf.len());
        assert!(buf[..] == bytes[..buf.len()], "the bytes handed on");
        assert!(start.elapsed() < config().header_timeout);
    }
}
