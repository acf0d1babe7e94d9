//! The fan-out's promises: everyone sees everything in order while they
//! keep up, a late joiner sees the ring first, a stuck one costs a bounded
//! amount and catches up exactly when the ring still holds what it missed.

use super::*;

const LIMITS: Limits = Limits {
    ring_bytes: 64,
    queue_bytes: 16,
    queue_entries: 4,
};

fn hub() -> Arc<Hub> {
    Arc::new(Hub::new(LIMITS))
}

/// Everything ready for `sub` now, as bytes, and whether it ended.
fn drain(sub: &Subscription) -> (Vec<u8>, Option<Option<ExitStatus>>) {
    let mut out = Vec::new();
    while let Some(delivery) = sub.hub.take(sub.id) {
        match delivery {
            Delivery::Data(data) => out.extend_from_slice(&data),
            Delivery::End(status) => return (out, Some(status)),
        }
    }
    (out, None)
}

fn publish(hub: &Hub, data: &[u8]) {
    hub.publish(Bytes::copy_from_slice(data));
}

#[test]
fn a_late_joiner_gets_the_ring_then_live_output() {
    let hub = hub();
    let early = hub.subscribe();
    publish(&hub, b"$ echo hi\r\nhi\r\n");
    let late = hub.subscribe();
    publish(&hub, b"$ ");
    assert_eq!(drain(&early).0, b"$ echo hi\r\nhi\r\n$ ");
    // The join snapshot is read when the joiner asks, so it holds the
    // chunk published since, once.
    assert_eq!(drain(&late).0, b"$ echo hi\r\nhi\r\n$ ");
    publish(&hub, b"x");
    assert_eq!(drain(&late).0, b"x");
    assert_eq!(drain(&early).0, b"x");
}

#[test]
fn a_stuck_reader_holds_its_bound_then_catches_up_exactly_from_the_ring() {
    let hub = hub();
    let (fast, stuck) = (hub.subscribe(), hub.subscribe());
    // Both past their (empty) join, so output queues.
    drain(&fast);
    drain(&stuck);
    let mut stream = Vec::new();
    let mut seen = Vec::new();
    for i in 0..10u8 {
        let chunk = [b'a' + i; 5];
        publish(&hub, &chunk);
        stream.extend_from_slice(&chunk);
        seen.extend(drain(&fast).0);
        let (bytes, entries) = hub.queued();
        assert!(bytes <= LIMITS.queue_bytes && entries <= LIMITS.queue_entries);
    }
    assert_eq!(seen, stream, "the fast reader saw every byte in order");
    // Overflowed after 15 bytes: it holds nothing now, and the 50 bytes
    // fit in the ring, so it gets them all, nothing repeated.
    assert_eq!(hub.queued(), (0, 0));
    assert_eq!(drain(&stuck).0, stream);
    publish(&hub, b"next");
    assert_eq!(drain(&stuck).0, b"next");
}

#[test]
fn one_who_missed_more_than_the_ring_gets_a_note_and_the_screen() {
    let hub = hub();
    let stuck = hub.subscribe();
    drain(&stuck);
    for _ in 0..100 {
        publish(&hub, b"0123456789\n");
    }
    let (got, _) = drain(&stuck);
    let got = String::from_utf8(got).unwrap();
    let (note, screen) = got.split_once("]\r\n").unwrap();
    let screen_len = screen.len();
    assert!(
        note.ends_with(&format!("{} bytes of output skipped", 1100 - screen_len)),
        "{note}"
    );
    // The screen starts at a line and is the ring's end.
    assert!(screen.starts_with("0123456789\n") && screen_len <= LIMITS.ring_bytes);
}

#[test]
fn many_one_byte_chunks_are_bounded_in_entries_too() {
    let hub = hub();
    let _stuck = hub.subscribe();
    for _ in 0..1000 {
        publish(&hub, b"y");
        let (bytes, entries) = hub.queued();
        assert!(entries <= LIMITS.queue_entries && bytes <= LIMITS.queue_bytes);
    }
}

#[test]
fn the_end_follows_what_was_queued_and_later_output_is_not_theirs() {
    let hub = hub();
    let (sub, stuck) = (hub.subscribe(), hub.subscribe());
    drain(&sub);
    publish(&hub, b"bye\r\n");
    for _ in 0..5 {
        publish(&hub, b"0123456789");
    }
    hub.end(Some(ExitStatus::Code(3)));
    hub.clear_ring();
    publish(&hub, b"restarted");
    let (got, end) = drain(&sub);
    assert!(got.starts_with(b"bye\r\n") && got.len() == 55, "{got:?}");
    assert_eq!(end, Some(Some(ExitStatus::Code(3))));
    // The one that never read was settled before the ring was cleared.
    assert_eq!(drain(&stuck), (got, Some(Some(ExitStatus::Code(3)))));
    assert_eq!(drain(&sub), (Vec::new(), Some(Some(ExitStatus::Code(3)))));
    let after = hub.subscribe();
    assert_eq!(drain(&after), (b"restarted".to_vec(), None));
}

#[test]
fn a_stream_attaching_once_it_is_over_gets_the_last_screen_and_the_end() {
    let hub = hub();
    publish(&hub, b"last words\r\n");
    hub.end(Some(ExitStatus::Code(3)));
    hub.close(Some(ExitStatus::Code(3)));
    let late = hub.subscribe();
    let want = (b"last words\r\n".to_vec(), Some(Some(ExitStatus::Code(3))));
    assert_eq!(drain(&late), want);
}

#[test]
fn dropping_a_subscription_detaches_it() {
    let hub = hub();
    let sub = hub.subscribe();
    drain(&sub);
    publish(&hub, b"abc");
    assert_eq!(hub.queued(), (3, 1));
    drop(sub);
    assert_eq!(hub.queued(), (0, 0));
    assert!(hub.lock().subs.is_empty());
}

#[tokio::test]
async fn a_waiting_reader_wakes_for_output_and_for_the_end() {
    let hub = hub();
    let sub = hub.subscribe();
    let waiting = tokio::spawn(async move {
        let first = sub.next().await;
        let second = sub.next().await;
        (first, second)
    });
    tokio::task::yield_now().await;
    publish(&hub, b"hello");
    hub.end(Some(ExitStatus::Signal(9)));
    let (first, second) = waiting.await.unwrap();
    assert_eq!(first, Delivery::Data(Bytes::from_static(b"hello")));
    assert_eq!(second, Delivery::End(Some(ExitStatus::Signal(9))));
}
