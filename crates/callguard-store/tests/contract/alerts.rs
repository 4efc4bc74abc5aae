//! Alerts: stored once per (rule, entry), listed and fed in order, acknowledged and resolved
//! only from the states that allow it, each step with its audit entry.

use super::*;

fn alert(id: &str, rule: &str, entry_index: u64) -> NewAlert {
    NewAlert {
        id: id.into(),
        rule: rule.into(),
        entry_index,
        severity: "high".into(),
        raised_at: 100,
        subject: "user:u1".into(),
        summary: "ten failed sign-ins".into(),
    }
}

async fn an_alert_is_raised_once_listed_newest_first_and_fed_oldest_first(f: Fixture) {
    let s = &f.store;
    assert!(s.insert_alert(&alert("a1", "lockout", 7)).await.unwrap());
    assert!(
        !s.insert_alert(&alert("a1-other-node", "lockout", 7))
            .await
            .unwrap(),
        "the same rule and entry are stored once"
    );
    assert!(s.insert_alert(&alert("a2", "lockout", 8)).await.unwrap());
    let all: Vec<String> = s
        .alerts(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, ["a2", "a1"], "newest first");
    let first = s.alert("a1").await.unwrap().unwrap();
    assert_eq!((first.status.as_str(), first.entry_index), ("open", 7));
    let fed: Vec<String> = s
        .alerts_after(first.seq, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(fed, ["a2"], "oldest first after a sequence number");
    assert!(s.alert("nope").await.unwrap().is_none());
}
both_backends!(an_alert_is_raised_once_listed_newest_first_and_fed_oldest_first);

async fn an_alert_moves_only_forward_and_each_step_is_audited(f: Fixture) {
    let s = &f.store;
    assert!(s.insert_alert(&alert("a1", "lockout", 7)).await.unwrap());
    assert!(s.insert_alert(&alert("a2", "lockout", 8)).await.unwrap());
    let n = size(s).await;
    assert!(s
        .transition_alert(
            "a1",
            "acknowledged",
            "user:u2",
            110,
            "looking",
            a("alert.ack")
        )
        .await
        .unwrap());
    assert_eq!(size(s).await, n + 1, "the change and its entry together");
    assert!(
        !s.transition_alert(
            "a1",
            "acknowledged",
            "user:u3",
            120,
            "again",
            a("alert.ack")
        )
        .await
        .unwrap(),
        "acknowledged once"
    );
    assert!(!s
        .transition_alert("a1", "reopened", "user:u3", 120, "?", a("alert.ack"))
        .await
        .unwrap());
    assert_eq!(size(s).await, n + 1, "refused transitions log nothing");
    assert!(s
        .transition_alert(
            "a1",
            "resolved",
            "user:u2",
            130,
            "fixed",
            a("alert.resolve")
        )
        .await
        .unwrap());
    assert!(s
        .transition_alert(
            "a2",
            "resolved",
            "user:u2",
            140,
            "noise",
            a("alert.resolve")
        )
        .await
        .unwrap());
    let done = s.alert("a1").await.unwrap().unwrap();
    assert_eq!(
        (
            done.status.as_str(),
            done.acknowledged_by.as_deref(),
            done.acknowledge_comment.as_deref(),
            done.resolved_at,
            done.resolve_comment.as_deref(),
        ),
        (
            "resolved",
            Some("user:u2"),
            Some("looking"),
            Some(130),
            Some("fixed")
        )
    );
    assert_eq!(s.alerts(Some("resolved"), 10).await.unwrap().len(), 2);
    assert!(s.alerts(Some("open"), 10).await.unwrap().is_empty());
    assert_eq!(size(s).await, n + 3);
}
both_backends!(an_alert_moves_only_forward_and_each_step_is_audited);
