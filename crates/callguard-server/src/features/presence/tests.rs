//! Agent states: the pick's fairness and atomicity, the edge's reports, wrap-up, auditing.

use super::model::*;
use super::service::*;
use crate::principal::Actor;
use callguard_core::audit::record::user as user_ref;
use std::sync::Arc;
use std::time::Duration;

fn presence() -> Arc<Presence> {
    Arc::new(Presence::new(PresenceSettings::default()))
}

fn me(id: &str) -> Actor {
    Actor {
        id: user_ref(id),
        source: None,
    }
}

fn ready(p: &Presence, id: &str) {
    p.set_ready(&me(id), id, id).unwrap();
}

#[test]
fn the_longest_idle_ready_agent_gets_the_call_and_then_the_next_longest() {
    let p = presence();
    ready(&p, "ann");
    ready(&p, "bob");
    ready(&p, "cat");
    assert_eq!(p.pick("billing").unwrap().user_id, "ann");
    assert_eq!(p.pick("billing").unwrap().user_id, "bob");
    assert_eq!(p.pick("billing").unwrap().user_id, "cat");
    assert_eq!(p.pick("billing"), None, "nobody is ready any more");
}

#[test]
fn an_agent_back_from_a_call_goes_to_the_end_of_the_idle_line() {
    let p = presence();
    ready(&p, "ann");
    ready(&p, "bob");
    let a = p.pick("support").unwrap();
    p.answered(&a.user_id, "i1").unwrap();
    p.call_ended(&a.user_id).unwrap();
    ready(&p, "ann"); // ends wrap-up early
    assert_eq!(p.pick("support").unwrap().user_id, "bob");
    assert_eq!(p.pick("support").unwrap().user_id, "ann");
}

#[test]
fn a_not_ready_agent_is_never_picked() {
    let p = presence();
    p.set_not_ready(&me("ann"), "ann", "ann", "lunch").unwrap();
    assert_eq!(p.pick("billing"), None);
    ready(&p, "bob");
    assert_eq!(p.pick("billing").unwrap().user_id, "bob");
}

#[test]
fn only_agents_with_the_queues_skill_are_picked_and_an_unlisted_queue_takes_anyone() {
    let mut s = PresenceSettings::default();
    s.skills.insert("billing".into(), vec!["bob".into()]);
    let p = Arc::new(Presence::new(s));
    ready(&p, "ann");
    ready(&p, "bob");
    assert_eq!(p.pick("billing").unwrap().user_id, "bob");
    assert_eq!(p.pick("billing"), None, "ann lacks the billing skill");
    assert_eq!(p.pick("support").unwrap().user_id, "ann");
}

#[test]
fn an_unreachable_agent_is_skipped_and_one_not_reached_keeps_their_place() {
    let p = presence();
    ready(&p, "ann");
    ready(&p, "bob");
    let o = p.pick_where("billing", None, |sip| sip != "ann").unwrap();
    assert_eq!(o.user_id, "bob");
    p.not_reached("bob").unwrap();
    ready(&p, "cat");
    assert_eq!(
        p.pick_where("billing", None, |sip| sip != "ann")
            .unwrap()
            .user_id,
        "bob"
    );
}

#[test]
fn a_missed_call_sets_the_agent_not_ready_with_the_reason_missed_call() {
    let p = presence();
    ready(&p, "ann");
    p.pick("billing").unwrap();
    p.not_answered("ann").unwrap();
    let v = p.agent("ann", "ann");
    assert_eq!(v.state, StateName::NotReady);
    assert_eq!(v.reason.as_deref(), Some(MISSED_CALL));
    assert_eq!(p.pick("billing"), None);
}

#[test]
fn an_agent_cannot_go_not_ready_or_ready_while_a_call_rings_or_is_on_the_line() {
    let p = presence();
    ready(&p, "ann");
    p.pick("billing").unwrap();
    assert_eq!(
        p.set_not_ready(&me("ann"), "ann", "ann", "break"),
        Err(PresenceError::OnCall)
    );
    p.answered("ann", "i1").unwrap();
    assert_eq!(
        p.set_ready(&me("ann"), "ann", "ann"),
        Err(PresenceError::OnCall)
    );
    assert_eq!(p.agent("ann", "ann").state, StateName::OnCall);
}

#[test]
fn a_reason_outside_the_configured_list_is_refused_and_changes_nothing() {
    let p = presence();
    ready(&p, "ann");
    assert!(matches!(
        p.set_not_ready(&me("ann"), "ann", "ann", "gone fishing"),
        Err(PresenceError::UnknownReason(_))
    ));
    assert_eq!(p.agent("ann", "ann").state, StateName::Ready);
}

#[test]
fn reports_for_a_call_that_is_not_the_agents_are_refused() {
    let p = presence();
    ready(&p, "ann");
    assert_eq!(p.answered("ann", "i1"), Err(PresenceError::WrongState));
    assert_eq!(p.not_answered("ann"), Err(PresenceError::WrongState));
    assert_eq!(p.call_ended("ann"), Err(PresenceError::WrongState));
    assert_eq!(p.answered("nobody", "i1"), Err(PresenceError::NotSignedIn));
    assert_eq!(p.agent("ann", "ann").state, StateName::Ready);
}

#[test]
fn signing_out_takes_the_agent_out_of_the_queues_whatever_their_state() {
    let p = presence();
    ready(&p, "ann");
    p.pick("billing").unwrap();
    p.sign_out(&me("ann"), "ann");
    assert_eq!(p.agent("ann", "ann").state, StateName::LoggedOut);
    assert_eq!(p.answered("ann", "i1"), Err(PresenceError::NotSignedIn));
    assert!(p.agents().is_empty());
}

#[test]
fn every_change_is_audited_with_states_and_no_callers_data() {
    let p = presence();
    let mut feed = p.take_audit_feed().unwrap();
    ready(&p, "ann");
    p.pick_where(
        "billing",
        Some(CallOffer {
            interaction_id: "i1".into(),
            queue: "billing".into(),
            caller_id: Some(CallerId::new("+48601100200")),
            ivr_path: vec!["billing".into()],
            level: 1,
            screen_pop: Some("J*** K***".into()),
        }),
        |_| true,
    )
    .unwrap();
    p.answered("ann", "i1").unwrap();
    let mut seen = Vec::new();
    while let Ok(r) = feed.try_recv() {
        assert_eq!(r.action, "agent.state_changed");
        assert_eq!(r.target.as_deref(), Some("user:ann"));
        let text = serde_json::to_string(&r.details).unwrap();
        assert!(
            !text.contains("+48601100200") && !text.contains("J***"),
            "{text}"
        );
        seen.push((
            r.actor.clone(),
            r.details["to"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        seen,
        [
            ("user:ann".to_owned(), "ready".to_owned()),
            ("user:telephony-edge".to_owned(), "ringing".to_owned()),
            ("user:telephony-edge".to_owned(), "on_call".to_owned()),
        ]
    );
}

#[test]
fn a_call_offer_and_caller_id_print_no_caller_data_in_debug() {
    let o = CallOffer {
        interaction_id: "i1".into(),
        queue: "billing".into(),
        caller_id: Some(CallerId::new("+48601100200")),
        ivr_path: vec![],
        level: 2,
        screen_pop: Some("J*** K***".into()),
    };
    let text = format!("{o:?} {:?}", o.caller_id);
    assert!(!text.contains("601") && !text.contains("J***"), "{text}");
}

#[test]
fn the_offer_reaches_the_chosen_agents_desk_and_stays_while_it_rings() {
    let p = presence();
    let mut events = p.subscribe();
    ready(&p, "ann");
    let offer = CallOffer {
        interaction_id: "i9".into(),
        queue: "support".into(),
        caller_id: None,
        ivr_path: vec!["support".into()],
        level: 2,
        screen_pop: None,
    };
    p.pick_where("support", Some(offer), |_| true).unwrap();
    let mut offered = None;
    while let Ok(e) = events.try_recv() {
        if let PresenceEvent::Offer { user_id, offer } = e {
            offered = Some((user_id, offer.interaction_id));
        }
    }
    assert_eq!(offered, Some(("ann".to_owned(), "i9".to_owned())));
    assert_eq!(p.ringing_offer("ann").unwrap().level, 2);
    p.answered("ann", "i9").unwrap();
    assert!(p.ringing_offer("ann").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_calls_picking_at_once_never_get_the_same_agent() {
    let p = presence();
    for i in 0..50 {
        ready(&p, &format!("agent{i}"));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let p = p.clone();
        tasks.spawn(async move { p.pick("billing").map(|o| o.user_id) });
    }
    let mut got = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Some(id) = r.unwrap() {
            got.push(id);
        }
    }
    let before = got.len();
    got.sort();
    got.dedup();
    assert_eq!(
        before, 50,
        "every ready agent rang once, 150 calls found nobody"
    );
    assert_eq!(got.len(), 50, "no agent was given two calls");
}

#[tokio::test(start_paused = true)]
async fn wrap_up_ends_by_itself_after_the_configured_time() {
    let p = presence();
    ready(&p, "ann");
    p.pick("billing").unwrap();
    p.answered("ann", "i1").unwrap();
    p.call_ended("ann").unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(p.agent("ann", "ann").state, StateName::WrapUp);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(p.agent("ann", "ann").state, StateName::Ready);
}

#[tokio::test(start_paused = true)]
async fn a_wrap_up_timer_does_not_end_a_state_the_agent_chose_meanwhile() {
    let p = presence();
    ready(&p, "ann");
    p.pick("billing").unwrap();
    p.answered("ann", "i1").unwrap();
    p.call_ended("ann").unwrap();
    p.set_not_ready(&me("ann"), "ann", "ann", "break").unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(p.agent("ann", "ann").state, StateName::NotReady);
}

#[test]
fn a_transfer_rings_the_named_agent_only_while_they_are_ready_and_offers_them_the_call() {
    let p = presence();
    ready(&p, "ann");
    ready(&p, "bob");
    let mut events = p.subscribe();
    let offer = CallOffer {
        interaction_id: "i1".into(),
        queue: "billing".into(),
        caller_id: None,
        ivr_path: vec!["billing".into()],
        level: 2,
        screen_pop: Some("J*** K***".into()),
    };
    // Bob, not the longest idle, is the one rung.
    let got = p.pick_agent("bob", "billing", offer.clone()).unwrap();
    assert_eq!(got.user_id, "bob");
    assert!(p.is_ready("ann") && !p.is_ready("bob"));
    assert!(p.ringing_offer("bob").is_some_and(|o| o.level == 2));
    let mut offered = false;
    while let Ok(e) = events.try_recv() {
        offered |= matches!(e, PresenceEvent::Offer { ref user_id, ref offer } if user_id == "bob" && offer.interaction_id == "i1");
    }
    assert!(offered, "bob's desk is offered the call");
    // Ringing already, signed out, or not ready: not rung.
    assert_eq!(p.pick_agent("bob", "billing", offer.clone()), None);
    assert_eq!(p.pick_agent("nobody", "billing", offer.clone()), None);
    p.set_not_ready(&me("ann"), "ann", "ann", "lunch").unwrap();
    assert_eq!(p.pick_agent("ann", "billing", offer), None);
}
