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
