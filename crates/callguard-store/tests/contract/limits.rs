//! Shared allowances: a sliding window per key that holds under simultaneous takers.

use super::*;

async fn an_allowance_slides_with_time_and_is_per_key(f: Fixture) {
    let s = &f.store;
    for at in [100, 101, 102] {
        assert!(s.take_allowance("reveal:a", at, 10, 3).await.unwrap());
    }
    assert!(!s.take_allowance("reveal:a", 105, 10, 3).await.unwrap());
    assert!(
        s.take_allowance("reveal:b", 105, 10, 3).await.unwrap(),
        "another key"
    );
    // At 110 the use at 100 has left the window (uses at exactly now - window are gone).
    assert!(s.take_allowance("reveal:a", 110, 10, 3).await.unwrap());
    assert!(!s.take_allowance("reveal:a", 110, 10, 3).await.unwrap());
    assert_eq!(s.forget_allowances_before(105).await.unwrap(), 2);
}
both_backends!(an_allowance_slides_with_time_and_is_per_key);

async fn of_simultaneous_takers_only_the_allowance_succeeds(f: Fixture) {
    let s = f.store.clone();
    let takers: Vec<_> = (0..40)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.take_allowance("reveal:burst", 1000, 600, 7).await })
        })
        .collect();
    let mut granted = 0;
    for t in takers {
        if t.await.unwrap().unwrap() {
            granted += 1;
        }
    }
    assert_eq!(granted, 7);
}
both_backends!(of_simultaneous_takers_only_the_allowance_succeeds);

async fn the_address_throttle_is_one_table_for_every_node(f: Fixture) {
    use callguard_core::throttle::Refusal;
    let s = &f.store;
    let ip = "192.0.2.7";
    // Three attempts in flight use up the free failures; a fourth waits for them.
    for _ in 0..3 {
        assert_eq!(s.admit_address(ip, 1000).await.unwrap(), Ok(()));
    }
    assert_eq!(
        s.admit_address(ip, 1000).await.unwrap(),
        Err(Refusal::Settling)
    );
    assert_eq!(
        s.admit_address("192.0.2.8", 1000).await.unwrap(),
        Ok(()),
        "another address"
    );
    for _ in 0..3 {
        s.settle_address(ip, 1000, true).await.unwrap();
    }
    assert_eq!(
        s.admit_address(ip, 1000).await.unwrap(),
        Err(Refusal::Wait(1))
    );
    // A right answer from an address that never failed leaves nothing behind.
    s.settle_address("192.0.2.8", 1000, false).await.unwrap();
    assert_eq!(
        s.forget_quiet_addresses(i64::MAX).await.unwrap(),
        1,
        "only the failing one"
    );
}
both_backends!(the_address_throttle_is_one_table_for_every_node);

async fn a_burst_from_one_address_admits_three(f: Fixture) {
    let s = f.store.clone();
    let takers: Vec<_> = (0..40)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.admit_address("198.51.100.9", 5000).await })
        })
        .collect();
    let mut admitted = 0;
    for t in takers {
        if t.await.unwrap().unwrap().is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 3);
}
both_backends!(a_burst_from_one_address_admits_three);

async fn attempts_coming_and_going_at_once_are_each_admitted(f: Fixture) {
    // Right answers settle (and remove the clean entry) while others are admitted: no attempt
    // may find its address's entry gone between making and reading it.
    let s = f.store.clone();
    let takers: Vec<_> = (0..60)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let admitted = s.admit_address("203.0.113.50", 7000).await?;
                s.settle_address("203.0.113.50", 7000, false).await?;
                Ok::<_, StoreError>(admitted)
            })
        })
        .collect();
    for t in takers {
        let admitted = t.await.unwrap().unwrap();
        assert!(
            matches!(
                admitted,
                Ok(()) | Err(callguard_core::throttle::Refusal::Settling)
            ),
            "{admitted:?}"
        );
    }
}
both_backends!(attempts_coming_and_going_at_once_are_each_admitted);
