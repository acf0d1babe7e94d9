use super::*;

const LINGER: Duration = Duration::from_secs(30);

fn agent() -> Table {
    Table::new(LegacyRole::Agent { linger: LINGER }, 1000, 4)
}

fn client() -> Table {
    let role = LegacyRole::Client {
        channel: "ssh".into(),
        peer: "legacy client".into(),
    };
    Table::new(role, 1000, 2)
}

fn frame(kind: FrameType, id: u32) -> Frame {
    Frame::empty(kind, id)
}

fn legacy(event: Event, tag: u32) -> Out {
    Out::Legacy(Packet::new(event, tag))
}

fn mux(kind: FrameType, id: u32) -> Out {
    Out::Mux(frame(kind, id))
}

fn from_mux(table: &mut Table, frame: Frame, now: Instant) -> Vec<Out> {
    let mut out = Vec::new();
    table.on_frame(frame, now, &mut out).unwrap();
    out
}

fn from_legacy(table: &mut Table, event: Event, tag: u32) -> Vec<Out> {
    let mut out = Vec::new();
    table.on_packet(&Packet::new(event, tag), &mut out).unwrap();
    out
}

#[test]
fn a_users_stream_becomes_a_connection_accepted_at_once() {
    let mut t = agent();
    let now = Instant::now();
    let out = from_mux(&mut t, frame(FrameType::Open, 5), now);
    assert_eq!(out, [legacy(Event::Open, 5), mux(FrameType::Accept, 5)]);
    assert_eq!(t.data_tag(5), Ok(5));
    // The agent's close ends the user's reading side only: a FIN.
    assert_eq!(
        from_legacy(&mut t, Event::Close, 5),
        [mux(FrameType::Fin, 5)]
    );
    assert_eq!(
        t.data_tag(5),
        Err(true),
        "late DATA is dropped, credit returned"
    );
    assert!(from_mux(&mut t, frame(FrameType::Fin, 5), now).is_empty());
    assert_eq!(t.len(), 0);
}

#[test]
fn a_half_close_is_held_until_the_agent_closes() {
    let mut t = agent();
    let now = Instant::now();
    from_mux(&mut t, frame(FrameType::Open, 1), now);
    assert!(from_mux(&mut t, frame(FrameType::Fin, 1), now).is_empty());
    assert_eq!(t.next_linger(), Some(now + LINGER));
    assert_eq!(t.data_tag(1), Ok(1), "the request's reply may still come");
    assert_eq!(t.take_credit(1, 10, Instant::now()), Credit::Send(1, 10));
    assert_eq!(
        from_legacy(&mut t, Event::Close, 1),
        [mux(FrameType::Fin, 1)]
    );
    assert_eq!(t.len(), 0);
    assert_eq!(
        t.next_linger(),
        None,
        "a closed stream's deadline is skipped"
    );
}

#[test]
fn a_held_half_close_becomes_c_minus_after_the_linger() {
    let mut t = agent();
    let now = Instant::now();
    from_mux(&mut t, frame(FrameType::Open, 1), now);
    from_mux(&mut t, frame(FrameType::Open, 3), now);
    from_mux(&mut t, frame(FrameType::Fin, 1), now);
    from_mux(&mut t, frame(FrameType::Fin, 1), now + LINGER / 2);
    let mut out = Vec::new();
    assert_eq!(t.expire(now + LINGER / 2, &mut out), Some(now + LINGER));
    assert!(out.is_empty(), "a second FIN does not restart the linger");
    assert_eq!(t.expire(now + LINGER, &mut out), None);
    assert_eq!(out, [legacy(Event::Close, 1), mux(FrameType::Fin, 1)]);
    assert_eq!(t.len(), 1, "stream 3 is untouched");
}

#[test]
fn data_from_the_agent_keeps_a_half_close_held() {
    let mut t = agent();
    let now = Instant::now();
    from_mux(&mut t, frame(FrameType::Open, 1), now);
    from_mux(&mut t, frame(FrameType::Fin, 1), now);
    let later = now + LINGER - Duration::from_secs(1);
    assert_eq!(t.take_credit(1, 5, later), Credit::Send(1, 5));
    let mut out = Vec::new();
    assert_eq!(t.expire(now + LINGER, &mut out), Some(later + LINGER));
    assert!(out.is_empty(), "the reply was still coming");
    assert_eq!(t.expire(later + LINGER, &mut out), None);
    assert_eq!(out, [legacy(Event::Close, 1), mux(FrameType::Fin, 1)]);
}

#[test]
fn resets_and_refusals_close_the_connection_once() {
    let mut t = agent();
    let now = Instant::now();
    from_mux(&mut t, frame(FrameType::Open, 1), now);
    let reset = Frame::with_reason(FrameType::Reset, 1, "stream closed");
    assert_eq!(
        from_mux(&mut t, reset.clone(), now),
        [legacy(Event::Close, 1)]
    );
    assert!(from_mux(&mut t, reset, now).is_empty());
    assert_eq!(t.take_credit(1, 5, Instant::now()), Credit::Drop);
    assert!(from_legacy(&mut t, Event::Close, 1).is_empty());
}

#[test]
fn credit_is_the_mux_window_and_windows_add_to_it() {
    let mut t = agent();
    let now = Instant::now();
    from_mux(&mut t, frame(FrameType::Open, 1), now);
    assert_eq!(t.take_credit(1, 600, Instant::now()), Credit::Send(1, 600));
    assert_eq!(t.take_credit(1, 600, Instant::now()), Credit::Send(1, 400));
    assert_eq!(t.take_credit(1, 200, Instant::now()), Credit::Wait);
    from_mux(&mut t, Frame::window(1, 150), now);
    assert_eq!(t.take_credit(1, 200, Instant::now()), Credit::Send(1, 150));
    assert_eq!(
        t.take_credit(9, 1, Instant::now()),
        Credit::Drop,
        "unknown tags are dropped"
    );
    let mut out = Vec::new();
    let bad = Frame::new(FrameType::Window, 1, Bytes::from_static(b"xx"));
    assert!(t.on_frame(bad, now, &mut out).is_err());
}

#[test]
fn pings_are_answered_on_both_sides() {
    let mut t = agent();
    let ping = Frame::new(FrameType::Ping, 0, Bytes::from_static(b"12345678"));
    let pong = Frame::new(FrameType::Pong, 0, Bytes::from_static(b"12345678"));
    assert_eq!(from_mux(&mut t, ping, Instant::now()), [Out::Mux(pong)]);
    assert_eq!(
        from_legacy(&mut t, Event::Ping, 0),
        [legacy(Event::Pong, 0)]
    );
}

#[test]
fn a_clients_connections_become_streams_with_even_ids() {
    let mut t = client();
    let out = from_legacy(&mut t, Event::Open, 70);
    let open = Frame::new(
        FrameType::Open,
        2,
        encode_open("ssh", "legacy client", None),
    );
    assert_eq!(out, [Out::Mux(open)]);
    from_legacy(&mut t, Event::Open, 71);
    assert_eq!(t.take_credit(71, 10, Instant::now()), Credit::Send(4, 10));
    assert_eq!(t.data_tag(4), Ok(71));
    // Over max_streams (2): closed at once, no OPEN.
    assert_eq!(
        from_legacy(&mut t, Event::Open, 72),
        [legacy(Event::Close, 72)]
    );
    // A tag opened twice is a broken peer.
    let mut out = Vec::new();
    assert!(t
        .on_packet(&Packet::new(Event::Open, 70), &mut out)
        .is_err());
}

#[test]
fn a_clients_connection_closes_when_the_far_end_finishes_or_refuses() {
    let mut t = client();
    let now = Instant::now();
    from_legacy(&mut t, Event::Open, 7);
    from_legacy(&mut t, Event::Open, 8);
    let out = from_mux(&mut t, frame(FrameType::Fin, 2), now);
    assert_eq!(out, [legacy(Event::Close, 7), mux(FrameType::Fin, 2)]);
    let refuse = Frame::with_reason(FrameType::Refuse, 4, "no agent");
    assert_eq!(from_mux(&mut t, refuse, now), [legacy(Event::Close, 8)]);
    assert_eq!(t.len(), 0);
    // A stream the server opens on a client's link is refused.
    let out = from_mux(&mut t, frame(FrameType::Open, 1), now);
    assert!(matches!(&out[..], [Out::Mux(f)] if f.kind == FrameType::Refuse));
}
