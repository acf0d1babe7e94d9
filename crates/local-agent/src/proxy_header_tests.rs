//! Header bytes checked against hand-written bytes from the spec, and parsed
//! back with `ppp`'s own parser.

use super::*;

const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v1(user: &str, target: Option<&str>) -> String {
    String::from_utf8(header(ProxyProtocol::V1, user, target.map(addr))).unwrap()
}

fn v2(user: &str, target: Option<&str>) -> Vec<u8> {
    header(ProxyProtocol::V2, user, target.map(addr))
}

#[test]
fn v1_ipv4_names_user_then_target() {
    let line = v1("203.0.113.5:51234", Some("127.0.0.1:8080"));
    assert_eq!(line, "PROXY TCP4 203.0.113.5 127.0.0.1 51234 8080\r\n");
    let parsed = ppp::v1::Header::try_from(line.as_str()).unwrap();
    assert_eq!(
        parsed.addresses,
        ppp::v1::Addresses::new_tcp4([203, 0, 113, 5], [127, 0, 0, 1], 51234, 8080)
    );
}

#[test]
fn v1_ipv6() {
    let line = v1("[2001:db8::5]:443", Some("[::1]:8080"));
    assert_eq!(line, "PROXY TCP6 2001:db8::5 ::1 443 8080\r\n");
    assert!(ppp::v1::Header::try_from(line.as_str()).is_ok());
}

#[test]
fn v2_ipv4_bytes_match_the_spec() {
    let bytes = v2("203.0.113.5:51234", Some("127.0.0.1:8080"));
    let mut want = SIGNATURE.to_vec();
    // version 2 | PROXY, AF_INET | STREAM, 12 address bytes
    want.extend([0x21, 0x11, 0, 12]);
    want.extend([203, 0, 113, 5, 127, 0, 0, 1]);
    want.extend(51234u16.to_be_bytes());
    want.extend(8080u16.to_be_bytes());
    assert_eq!(bytes, want);

    let parsed = ppp::v2::Header::try_from(bytes.as_slice()).unwrap();
    assert_eq!(parsed.command, ppp::v2::Command::Proxy);
    assert_eq!(parsed.protocol, ppp::v2::Protocol::Stream);
    assert_eq!(
        parsed.addresses,
        ppp::v2::IPv4::new([203, 0, 113, 5], [127, 0, 0, 1], 51234, 8080).into()
    );
}

#[test]
fn v2_ipv6_bytes_match_the_spec() {
    let bytes = v2("[2001:db8::5]:443", Some("[::1]:8080"));
    let mut want = SIGNATURE.to_vec();
    // version 2 | PROXY, AF_INET6 | STREAM, 36 address bytes
    want.extend([0x21, 0x21, 0, 36]);
    want.extend("2001:db8::5".parse::<Ipv6Addr>().unwrap().octets());
    want.extend(Ipv6Addr::LOCALHOST.octets());
    want.extend(443u16.to_be_bytes());
    want.extend(8080u16.to_be_bytes());
    assert_eq!(bytes, want);
    assert!(ppp::v2::Header::try_from(bytes.as_slice()).is_ok());
}

#[test]
fn a_user_that_is_not_a_socket_address_is_unknown_or_local() {
    for user in [
        "127.0.0.1:40000 via client",
        "stdio",
        "",
        "1.2.3.4:5\\r\\nX",
    ] {
        assert_eq!(
            v1(user, Some("127.0.0.1:8080")),
            "PROXY UNKNOWN\r\n",
            "{user:?}"
        );
        let bytes = v2(user, Some("127.0.0.1:8080"));
        let mut want = SIGNATURE.to_vec();
        // version 2 | LOCAL, AF_UNSPEC | UNSPEC, no address block
        want.extend([0x20, 0x00, 0, 0]);
        assert_eq!(bytes, want, "{user:?}");
        let parsed = ppp::v2::Header::try_from(bytes.as_slice()).unwrap();
        assert_eq!(parsed.command, ppp::v2::Command::Local);
        assert_eq!(parsed.addresses, ppp::v2::Addresses::Unspecified);
    }
}

#[test]
fn mixed_families_map_ipv4_into_ipv6() {
    assert_eq!(
        v1("203.0.113.5:51234", Some("[::1]:8080")),
        "PROXY TCP6 ::ffff:203.0.113.5 ::1 51234 8080\r\n"
    );
    assert_eq!(
        v1("[2001:db8::5]:443", Some("127.0.0.1:8080")),
        "PROXY TCP6 2001:db8::5 ::ffff:127.0.0.1 443 8080\r\n"
    );
    // A dual-stack listener's `::ffff:a.b.c.d` is the IPv4 user it is.
    assert_eq!(
        v1("[::ffff:203.0.113.5]:51234", Some("127.0.0.1:8080")),
        "PROXY TCP4 203.0.113.5 127.0.0.1 51234 8080\r\n"
    );
}

#[test]
fn a_unix_socket_target_gets_the_user_and_an_unspecified_destination() {
    assert_eq!(
        v1("203.0.113.5:51234", None),
        "PROXY TCP4 203.0.113.5 0.0.0.0 51234 0\r\n"
    );
    assert_eq!(
        v1("[2001:db8::5]:443", None),
        "PROXY TCP6 2001:db8::5 :: 443 0\r\n"
    );
    let parsed = ppp::v2::Header::try_from(v2("203.0.113.5:51234", None).as_slice())
        .unwrap()
        .to_owned();
    assert_eq!(
        parsed.addresses,
        ppp::v2::IPv4::new([203, 0, 113, 5], [0, 0, 0, 0], 51234, 0).into()
    );
}

#[test]
fn versions_parse_and_say_what_to_write() {
    assert_eq!("v1".parse(), Ok(ProxyProtocol::V1));
    assert_eq!("V2".parse(), Ok(ProxyProtocol::V2));
    for bad in ["v3", "2", "", "proxy"] {
        let err = bad.parse::<ProxyProtocol>().unwrap_err();
        assert!(err.contains("write v1 or v2"), "{err}");
    }
    assert_eq!(ProxyProtocol::V2.to_string(), "v2");
}
