//! Unit tests of `penalty.rs`, on tokio's paused clock.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn delays(p: &Penalties, ip: IpAddr, n: usize) -> Vec<u64> {
    (0..n).map(|_| p.fail(ip).1.as_millis() as u64).collect()
}

#[tokio::test(start_paused = true)]
async fn five_free_failures_then_doubling_delays_up_to_the_cap() {
    let p = Penalties::default();
    let got = delays(&p, v4(1), 14);
    assert_eq!(
        got,
        [0, 0, 0, 0, 0, 250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]
    );
    assert_eq!(p.fail(v4(1)).0, 15);
    // Another address is not touched by the first one's failures.
    assert_eq!(p.fail(v4(2)), (1, Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn a_source_that_keeps_failing_stays_slowed_and_a_quiet_one_is_forgiven() {
    let p = Penalties::default();
    let ip = v4(3);
    delays(&p, ip, 6);
    // Failing every 50 s: never a minute apart, so the count keeps growing.
    for want in [500, 1000, 2000] {
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(p.fail(ip).1, Duration::from_millis(want));
    }
    tokio::time::advance(FORGET_AFTER + Duration::from_secs(1)).await;
    assert_eq!(
        p.fail(ip),
        (1, Duration::ZERO),
        "forgotten after a quiet minute"
    );
}

#[tokio::test(start_paused = true)]
async fn ipv6_counts_per_slash_64_and_mapped_v4_as_v4() {
    let p = Penalties::default();
    for host in 1..=6u16 {
        let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, host));
        p.fail(ip);
    }
    let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
    assert_eq!(p.fail(same_64), (7, Duration::from_millis(500)));
    let other_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
    assert_eq!(p.fail(other_64).0, 1);

    p.fail(v4(4));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 4).to_ipv6_mapped());
    assert_eq!(p.fail(mapped).0, 2);
}

#[tokio::test(start_paused = true)]
async fn the_table_stays_bounded_expired_entries_first() {
    let p = Penalties::default();
    let many = |base: u32| (0..MAX_SOURCES as u32).map(move |i| IpAddr::V4((base + i).into()));
    for ip in many(0x0a00_0000) {
        p.fail(ip);
    }
    assert_eq!(p.len(), MAX_SOURCES);
    // A persistent offender, then a flood of fresh addresses while it is
    // still recent: the table never grows past its bound, and the entries
    // quiet longest make room.
    tokio::time::advance(Duration::from_secs(1)).await;
    delays(&p, v4(5), 8);
    tokio::time::advance(Duration::from_secs(1)).await;
    for ip in many(0x0b00_0000).take(1000) {
        p.fail(ip);
    }
    assert_eq!(p.len(), MAX_SOURCES);
    assert_eq!(p.fail(v4(5)).0, 9, "the most recent offender was kept");

    // Once everyone is quiet past the expiry, one newcomer clears them all.
    tokio::time::advance(FORGET_AFTER + Duration::from_secs(1)).await;
    p.fail(v4(6));
    assert_eq!(p.len(), 1, "expired entries were dropped");
}
