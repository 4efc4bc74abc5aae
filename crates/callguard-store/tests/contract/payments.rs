//! Payment requests and refunds.

use super::*;

fn payment(id: &str, interaction: &str, at: i64) -> PaymentRow {
    PaymentRow {
        id: id.into(),
        version: 1,
        interaction_id: interaction.into(),
        customer_id: Some("c1".into()),
        agent_id: "u1".into(),
        amount_minor: 1_250,
        currency: "EUR".into(),
        method: "link".into(),
        description: "Invoice 7".into(),
        status: "link_sent".into(),
        send_to: Some("sms".into()),
        link_hash: Some(format!("hash-{id}")),
        expires_at: at + 900,
        attempt_key: None,
        attempts: 0,
        brand: None,
        last4: None,
        exp_month: None,
        exp_year: None,
        gateway: None,
        gateway_token: None,
        gateway_reference: None,
        decline_reason: None,
        refunded_minor: 0,
        created_at: at,
        updated_at: at,
    }
}

async fn a_payment_is_written_with_its_entry_and_found_by_id_link_interaction_and_customer(
    f: Fixture,
) {
    let s = &f.store;
    let before = size(s).await;
    let p = payment("p1", "i1", 100);
    assert!(s
        .payment_commit(PaymentWrite {
            payment: Some((p.clone(), None)),
            audit: vec![a("payment.create")],
            ..PaymentWrite::default()
        })
        .await
        .unwrap());
    assert_eq!(
        size(s).await,
        before + 1,
        "the change and its entry together"
    );
    assert_eq!(s.payment("p1").await.unwrap(), Some(p.clone()));
    assert_eq!(s.payment_by_link("hash-p1").await.unwrap(), Some(p.clone()));
    assert_eq!(s.payment_by_link("hash-other").await.unwrap(), None);
    s.payment_commit(PaymentWrite {
        payment: Some((payment("p2", "i2", 200), None)),
        audit: vec![a("payment.create")],
        ..PaymentWrite::default()
    })
    .await
    .unwrap();
    let of_i1: Vec<String> = s
        .payments_of_interaction("i1", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(of_i1, ["p1"]);
    let of_c1: Vec<String> = s
        .payments_of_customer("c1", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(of_c1, ["p2", "p1"], "newest first");
    assert_eq!(s.recent_payments(1).await.unwrap().len(), 1);
}
both_backends!(a_payment_is_written_with_its_entry_and_found_by_id_link_interaction_and_customer);

async fn a_change_from_a_stale_version_writes_and_logs_nothing(f: Fixture) {
    let s = &f.store;
    let p = payment("p1", "i1", 100);
    s.payment_commit(PaymentWrite {
        payment: Some((p.clone(), None)),
        audit: vec![a("payment.create")],
        ..PaymentWrite::default()
    })
    .await
    .unwrap();
    let mut capturing = p.clone();
    capturing.version = 2;
    capturing.status = "capturing".into();
    capturing.attempt_key = Some("key-1".into());
    capturing.attempts = 1;
    assert!(s
        .payment_commit(PaymentWrite {
            payment: Some((capturing.clone(), Some(1))),
            audit: vec![a("payment.capture")],
            ..PaymentWrite::default()
        })
        .await
        .unwrap());
    let before = size(s).await;
    // A second submit that read version 1 too loses: one attempt, one key.
    let mut other = p.clone();
    other.version = 2;
    other.status = "capturing".into();
    other.attempt_key = Some("key-2".into());
    assert!(!s
        .payment_commit(PaymentWrite {
            payment: Some((other, Some(1))),
            audit: vec![a("payment.capture")],
            ..PaymentWrite::default()
        })
        .await
        .unwrap());
    assert_eq!(size(s).await, before);
    assert_eq!(s.payment("p1").await.unwrap(), Some(capturing));
}
both_backends!(a_change_from_a_stale_version_writes_and_logs_nothing);

async fn open_payments_past_their_expiry_are_overdue_and_closed_ones_are_not(f: Fixture) {
    let s = &f.store;
    for (id, status, at) in [
        ("p1", "link_sent", 0),
        ("p2", "authorised", 0),
        ("p3", "capturing", 0),
        ("p4", "link_sent", 10_000),
    ] {
        let mut p = payment(id, "i1", at);
        p.status = status.into();
        s.payment_commit(PaymentWrite {
            payment: Some((p, None)),
            audit: vec![a("payment.create")],
            ..PaymentWrite::default()
        })
        .await
        .unwrap();
    }
    let mut due: Vec<String> = s
        .overdue_payments(5_000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    due.sort();
    assert_eq!(due, ["p1", "p3"]);
}
both_backends!(open_payments_past_their_expiry_are_overdue_and_closed_ones_are_not);

async fn a_refund_is_recorded_with_the_payment_and_settled_once(f: Fixture) {
    let s = &f.store;
    let mut p = payment("p1", "i1", 100);
    p.status = "authorised".into();
    s.payment_commit(PaymentWrite {
        payment: Some((p.clone(), None)),
        audit: vec![a("payment.create")],
        ..PaymentWrite::default()
    })
    .await
    .unwrap();
    let mut refunded = p.clone();
    refunded.version = 2;
    refunded.refunded_minor = 500;
    let r = RefundRow {
        id: "r1".into(),
        payment_id: "p1".into(),
        amount_minor: 500,
        idempotency_key: "rk".into(),
        status: "pending".into(),
        gateway_reference: None,
        created_by: "user:s1".into(),
        created_at: 200,
        updated_at: 200,
    };
    assert!(s
        .payment_commit(PaymentWrite {
            payment: Some((refunded, Some(1))),
            refund: Some((r.clone(), true)),
            audit: vec![a("payment.refund")],
        })
        .await
        .unwrap());
    let mut done = r.clone();
    done.status = "refunded".into();
    done.gateway_reference = Some("re_1".into());
    let settle = PaymentWrite {
        refund: Some((done.clone(), false)),
        audit: vec![a("payment.refund")],
        ..PaymentWrite::default()
    };
    assert!(s.payment_commit(settle.clone()).await.unwrap());
    assert!(!s.payment_commit(settle).await.unwrap(), "settled once");
    assert_eq!(s.refunds_of("p1").await.unwrap(), [done]);
    assert_eq!(s.payment("p1").await.unwrap().unwrap().refunded_minor, 500);
}
both_backends!(a_refund_is_recorded_with_the_payment_and_settled_once);
