//! Just enough of an X.509 reader to say who issued a certificate nobody
//! trusts, and whether it issued itself: the issuer and subject names of
//! the TBSCertificate (RFC 5280 §4.1) and their common name. A certificate
//! this cannot read gets a plainer message, never a panic.

/// DER tags used here.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0; // [0] EXPLICIT, before the serial number

/// One DER element and what follows it.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    /// Tag, length and contents: the element as it appears.
    whole: &'a [u8],
    rest: &'a [u8],
}

/// Splits one DER element off `input`.
fn element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, after_len) = after_tag.split_first()?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        // Certificates are far below 4 GiB; longer forms are not DER here.
        if n == 0 || n > 4 || after_len.len() < n {
            return None;
        }
        let len = after_len[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    if input.len() < end {
        return None;
    }
    Some(Element {
        tag,
        contents: &input[header..end],
        whole: &input[..end],
        rest: &input[end..],
    })
}

/// The element `input` starts with, if it has this tag: (contents, rest).
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let e = element(input)?;
    (e.tag == tag).then_some((e.contents, e.rest))
}

/// The issuer and subject Names of a DER certificate, as DER.
pub(super) fn issuer_and_subject(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (certificate, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.rest;
    }
    let rest = element(rest)?.rest; // serialNumber
    let rest = element(rest)?.rest; // signature AlgorithmIdentifier
    let issuer = element(rest)?;
    let rest = element(issuer.rest)?.rest; // validity
    let subject = element(rest)?;
    (issuer.tag == SEQUENCE && subject.tag == SEQUENCE).then_some((issuer.whole, subject.whole))
}

/// Whether a certificate names itself as its issuer.
pub(super) fn self_signed(cert: &[u8]) -> bool {
    issuer_and_subject(cert).is_some_and(|(issuer, subject)| issuer == subject)
}

/// The common name (CN) of a DER Name, or failing that its organisation (O).
pub(super) fn display_name(name: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    let (mut sets, _) = expect(name, SEQUENCE)?;
    let (mut cn, mut o) = (None, None);
    while !sets.is_empty() {
        let (set, rest) = expect(sets, SET)?;
        sets = rest;
        let (pair, _) = expect(set, SEQUENCE)?;
        let (oid, value) = expect(pair, OID)?;
        let text = element(value)?.contents;
        // UTF8String, PrintableString and IA5String are all ASCII-compatible;
        // anything else is shown lossily rather than dropped.
        let text = String::from_utf8_lossy(text).into_owned();
        match oid {
            CN => cn = Some(text),
            O => o = Some(text),
            _ => {}
        }
    }
    cn.or(o)
}

/// The issuer's display name of a DER certificate.
pub(super) fn issuer_name(cert: &[u8]) -> Option<String> {
    display_name(issuer_and_subject(cert)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built by hand, byte by byte, so a mistake shared with some other
    /// encoder cannot hide: a minimal TBSCertificate skeleton with the
    /// fields this reader walks.
    fn cert(issuer_cn: &str, subject_cn: &str, with_version: bool) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if body.len() < 0x80 {
                out.push(body.len() as u8);
            } else {
                out.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
            }
            out.extend(body);
            out
        }
        let name = |cn: &str| {
            let atv = [tlv(OID, &[0x55, 0x04, 0x03]), tlv(0x0c, cn.as_bytes())].concat();
            let org = [tlv(OID, &[0x55, 0x04, 0x0a]), tlv(0x13, b"Org")].concat();
            tlv(
                SEQUENCE,
                &[
                    tlv(SET, &tlv(SEQUENCE, &org)),
                    tlv(SET, &tlv(SEQUENCE, &atv)),
                ]
                .concat(),
            )
        };
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(tlv(VERSION, &tlv(0x02, &[2])));
        }
        tbs.extend(tlv(0x02, &[0x01, 0x23]));
        tbs.extend(tlv(SEQUENCE, &tlv(OID, &[0x2a, 0x86, 0x48])));
        tbs.extend(name(issuer_cn));
        tbs.extend(tlv(SEQUENCE, &[0x17, 0x01, b'x', 0x17, 0x01, b'y']));
        tbs.extend(name(subject_cn));
        // A long public key, so the outer lengths take the long form.
        tbs.extend(tlv(SEQUENCE, &[0u8; 300]));
        let body = [tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[]), tlv(0x03, &[0])].concat();
        tlv(SEQUENCE, &body)
    }

    #[test]
    fn reads_issuer_and_tells_self_signed_apart() {
        for with_version in [true, false] {
            let leaf = cert("uptun test CA", "localhost", with_version);
            assert_eq!(issuer_name(&leaf).as_deref(), Some("uptun test CA"));
            assert!(!self_signed(&leaf));
            let own = cert("localhost", "localhost", with_version);
            assert!(self_signed(&own));
        }
    }

    #[test]
    fn garbage_and_every_truncation_read_as_nothing() {
        let leaf = cert("ca", "leaf", true);
        for cut in 0..leaf.len() {
            assert_eq!(issuer_and_subject(&leaf[..cut]), None, "cut at {cut}");
            assert!(!self_signed(&leaf[..cut]));
        }
        assert_eq!(issuer_name(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(issuer_name(b"\x30\x89"), None);
        assert_eq!(issuer_name(b"not DER at all"), None);
    }
}
