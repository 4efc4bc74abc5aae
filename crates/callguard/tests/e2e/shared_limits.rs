//! Limits that hold under a burst and across nodes: every node on one database draws from the
//! same allowance, so a limit does not multiply by the number of nodes behind a balancer.

use crate::calls::{register_demo_customer, start_call_for, verify_level1};
use crate::harness::{Backend, Deployment, Server};
use crate::signin_limits::{at_once, warm_clients};
use crate::vault::{PESEL, PHONE};
use serde_json::json;

const ALLOWANCE: &str = "5";

/// 20 simultaneous reveals by one agent in one verified call: exactly the allowance (5) is
/// served, the rest are refused as throttled, whichever node each one reached.
async fn reveal_burst(servers: &[&Server]) -> (usize, usize) {
    let first = servers[0];
    let api = first.api();
    let agent = first.new_account("rhea", "agent").await;
    let customer = register_demo_customer(&api, &agent).await;
    let call = start_call_for(&api, &agent, PHONE, &customer).await;
    let call_id = call["id"].as_str().unwrap().to_owned();
    verify_level1(&api, &agent, &call_id, PESEL).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        clients
            .extend(warm_clients(servers[i % servers.len()], [crate::harness::loopback(1)]).await);
    }
    let path = format!("/api/v1/customers/{customer}/reveal");
    let body = json!({"field": "phones", "reason": "caller_request", "interaction_id": call_id});
    let token = agent.token.clone();
    let answers: Vec<u16> = at_once(clients, move |_, api| {
        let (path, body, token) = (path.clone(), body.clone(), token.clone());
        async move { api.post(&path, Some(&token), body).await }
    })
    .await
    .iter()
    .map(|a| a.status.as_u16())
    .collect();
    let served = answers.iter().filter(|s| **s == 200).count();
    let throttled = answers.iter().filter(|s| **s == 429).count();
    assert_eq!(served + throttled, 20, "only 200 or 429: {answers:?}");
    (served, throttled)
}

async fn a_burst_of_reveals_gets_exactly_the_allowance(backend: Backend) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_VAULT_REVEALS_PER_WINDOW", ALLOWANCE)],
    )
    .await;
    assert_eq!(reveal_burst(&[&server]).await, (5, 15));
}

both_backends!(a_burst_of_reveals_gets_exactly_the_allowance);

#[tokio::test]
async fn two_nodes_on_one_database_share_one_reveal_allowance() {
    let env = [("CALLGUARD_VAULT_REVEALS_PER_WINDOW", ALLOWANCE)];
    let first = Server::start_with(Deployment::new(Backend::Postgres), &env).await;
    let second = Server::start_with(first.another_node(), &env).await;
    assert_eq!(
        reveal_burst(&[&first, &second]).await,
        (5, 15),
        "the allowance is not doubled by a second node"
    );
}

/// One address failing sign-ins on two nodes of one database: three failures are free in all,
/// not three per node (the throttle's clock counts whole seconds, so the first 1 s delay may
/// let one more through); once the address owes a wait, the other node refuses it too.
#[tokio::test]
async fn the_sign_in_throttle_of_an_address_holds_across_nodes() {
    let first = Server::start(Backend::Postgres).await;
    let second = Server::start_with(first.another_node(), &[]).await;
    let source = crate::harness::loopback(31);
    let nodes = [first.api_from(source), second.api_from(source)];
    let wrong = "not the password, not at all";
    let mut checked_before_the_first_refusal = None;
    let mut checked = 0;
    let mut owed = 0;
    for i in 0..14 {
        let a = nodes[i % 2].login("nobody-anywhere", wrong).await;
        match a.status.as_u16() {
            401 => checked += 1,
            429 => {
                checked_before_the_first_refusal.get_or_insert(checked);
                owed = a.header("retry-after").unwrap().parse::<u64>().unwrap();
                if owed >= 4 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(owed * 1000 + 100)).await;
            }
            other => panic!("unexpected {other}: {}", a.text),
        }
    }
    let free = checked_before_the_first_refusal.expect("the address was throttled");
    assert!(
        (3..=4).contains(&free),
        "three free failures across both nodes (six if each node counted alone): {free}"
    );
    assert!(owed >= 4, "the waits grew across both nodes: {owed}");
    for api in &nodes {
        api.login("nobody-anywhere", wrong)
            .await
            .expect_problem(429, "throttled");
    }
    // Another address is not affected, on either node.
    second
        .api_from(crate::harness::loopback(32))
        .login("nobody-anywhere", wrong)
        .await
        .expect_problem(401, "invalid-credentials");
}

/// Reads `stream` until the server ends it; fails when it is still open after 10 s.
async fn ends_within_ten_seconds(mut stream: reqwest::Response, what: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Err(_) => panic!("{what}: the alert stream was still open 10 s later"),
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return,
        }
    }
}

/// A session ended through one node ends its alert stream on another node at once (PostgreSQL
/// LISTEN/NOTIFY): the nodes here re-check open streams only every 30 s on their own, so only
/// the notification can end them within the test's 10 s. Logout and a disabled account alike.
#[tokio::test]
async fn a_session_ended_on_one_node_ends_its_stream_on_another_at_once() {
    use crate::alerts::open_stream;
    let ends = ends_within_ten_seconds;
    let env = [("CALLGUARD_ALERTS_STREAM_CHECK_SECONDS", "30")];
    let first = Server::start_with(Deployment::new(Backend::Postgres), &env).await;
    let second = Server::start_with(first.another_node(), &env).await;
    let admin = first.admin_session().await;
    let leaving = first.new_account("sup-leaving", "supervisor").await;
    let disabled = first.new_account("sup-disabled", "supervisor").await;
    let (a, b) = (first.api(), second.api());

    let stream = open_stream(&b, &leaving.token).await;
    a.post("/api/v1/auth/logout", Some(&leaving.token), json!({}))
        .await
        .expect(204);
    ends(stream, "a logout on the other node").await;

    let stream = open_stream(&b, &disabled.token).await;
    a.post(
        &format!("/api/v1/users/{}/disable", disabled.id),
        Some(&admin.token),
        json!({}),
    )
    .await
    .expect(200);
    ends(stream, "the account disabled on the other node").await;
}
