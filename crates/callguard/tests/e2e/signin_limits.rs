//! The sign-in limits under bursts (issue #10, items 3–5): many requests sent at once, each on
//! its own warmed-up connection, against the real binary. The per-address delay, the ten-failure
//! lock and the three-wrong-codes-per-step lock must hold however many attempts arrive together,
//! and the answers must not tell a locked, disabled or unknown account apart before the right
//! password was proven. The numbers asserted are the ones the README's "Security model" states.

use crate::harness::{loopback, unix_now, Account, Answer, Api, Backend, Server};
use crate::vault::audit_entries;
use serde_json::Value;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// README: "per source address, three failures are free".
const FREE_FAILURES_PER_ADDRESS: usize = 3;
/// README: "ten failed sign-ins or second factors lock the account".
const MAX_FAILED_SIGN_INS: usize = 10;
/// README: "three wrong codes lock TOTP for the rest of its 30-second step".
const WRONG_CODES_PER_STEP: usize = 3;

both_backends!(
    a_burst_from_one_address_gets_three_passwords_checked_and_the_rest_throttled,
    a_burst_from_many_addresses_gets_ten_passwords_checked_and_the_right_one_no_challenge,
    a_burst_of_wrong_codes_gets_three_checked_and_the_right_code_is_refused_in_that_step,
    a_disabled_account_answers_wrong_and_right_passwords_alike_and_counts_the_failures,
    a_locked_account_answers_like_an_unknown_name_until_the_password_is_proven,
);

#[test]
fn the_readme_states_the_limits_these_tests_assert() {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("## Security model")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Security model section");
    let flat = section.split_whitespace().collect::<Vec<_>>().join(" ");
    for promise in [
        "ten failed sign-ins or second factors lock the account for 30 minutes",
        "three wrong codes lock TOTP for the rest of its 30-second step",
        "three failures are free",
        "an attempt counts as failed from the moment it is admitted until it proves right",
        "answered exactly like a wrong password for an unknown name",
    ] {
        assert!(
            flat.contains(promise),
            "the README no longer says {promise:?}"
        );
    }
    // The server's own constants are the documented numbers.
    assert_eq!(
        callguard_core::throttle::FREE_FAILURES as usize,
        FREE_FAILURES_PER_ADDRESS
    );
    assert_eq!(
        callguard_core::identity::MAX_FAILED_SIGN_INS as usize,
        MAX_FAILED_SIGN_INS
    );
    assert_eq!(
        callguard_core::totp::MAX_FAILURES_PER_STEP as usize,
        WRONG_CODES_PER_STEP
    );
    assert_eq!(callguard_core::identity::LOCKOUT_SECONDS, 30 * 60);
}

/// `127.1.x.y`: one more loopback source address per `i` (thousands of them).
fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 1))
}

/// One client per source address, each with its connection already open (TLS done), so that
/// a burst reaches the server together.
/// The connections are opened all at once, so that the first is not idle long enough for the
/// server to close it before the burst (HTTP/1 waits at most 10 s for a request's headers).
pub async fn warm_clients(server: &Server, sources: impl IntoIterator<Item = IpAddr>) -> Vec<Api> {
    let tasks: Vec<_> = sources
        .into_iter()
        .map(|source| {
            let api = server.api_from(source);
            tokio::spawn(async move {
                api.get("/healthz", None).await.expect(200);
                api
            })
        })
        .collect();
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("a warming task"));
    }
    clients
}

/// Sends one request per client at the same moment (each task waits on one barrier) and answers
/// them in client order.
pub async fn at_once<F, Fut>(clients: Vec<Api>, send: F) -> Vec<Answer>
where
    F: Fn(usize, Arc<Api>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(clients.len()));
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, api)| {
            let (barrier, send) = (barrier.clone(), send.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                send(i, Arc::new(api)).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("a burst task"));
    }
    answers
}

fn slug(a: &Answer) -> String {
    a.problem_type().trim_start_matches("/problems/").to_owned()
}

/// How many answers have this status and problem type.
fn count(answers: &[Answer], status: u16, problem: &str) -> usize {
    answers
        .iter()
        .filter(|a| a.status.as_u16() == status && slug(a) == problem)
        .count()
}

/// The account as the admin API shows it: its failure count and whether it is locked.
async fn account_state(api: &Api, admin: &Account, id: &str) -> (i64, bool) {
    let list = api
        .get("/api/v1/users", Some(&admin.token))
        .await
        .expect(200)
        .json();
    let row = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .unwrap_or_else(|| panic!("user {id} listed: {list}"))
        .clone();
    (
        row["failed_sign_ins"].as_i64().unwrap(),
        row["locked"].as_bool().unwrap(),
    )
}

/// Failed `auth.sign_in` entries about `user_id`, by reason (what the server decided for each
/// attempt: checked and wrong, or refused unchecked).
fn reasons(entries: &[Value], user_id: &str) -> std::collections::BTreeMap<String, usize> {
    let mut by = std::collections::BTreeMap::new();
    for e in entries.iter().filter(|e| {
        e["action"] == "auth.sign_in"
            && e["outcome"] == "failure"
            && e["target"] == format!("user:{user_id}")
    }) {
        let reason = e["details"]["reason"].as_str().unwrap_or("?").to_owned();
        *by.entry(reason).or_insert(0) += 1;
    }
    by
}

fn lockouts(entries: &[Value], user_id: &str) -> usize {
    entries
        .iter()
        .filter(|e| {
            e["action"] == "auth.account_locked" && e["target"] == format!("user:{user_id}")
        })
        .count()
}

/// The whole body of an answer, to compare two answers.
fn body(a: &Answer) -> Value {
    a.json()
}

/// 129 passwords sent at once from one address, the right one last: three wrong ones are checked
/// (the free ones), every other attempt is turned away with 429 before anything is hashed, and
/// the account's counter shows exactly the failures checked.
async fn a_burst_from_one_address_gets_three_passwords_checked_and_the_rest_throttled(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let victim = server.new_account("ursula", "agent").await;
    let admin = server.admin_session().await;
    let compliance = server.new_account("carla", "compliance").await;
    let api = server.api();

    let n = 129;
    let clients = warm_clients(&server, (0..n).map(|_| loopback(7))).await;
    let (name, password) = (victim.username.clone(), victim.password.clone());
    let started = std::time::Instant::now();
    let answers = at_once(clients, move |i, api| {
        let (name, password) = (name.clone(), password.clone());
        async move {
            let tried = if i == n - 1 {
                password
            } else {
                format!("wrong guess number {i} of many")
            };
            api.login(&name, &tried).await
        }
    })
    .await;
    let span = started.elapsed().as_secs_f64();

    let checked = count(&answers, 401, "invalid-credentials");
    let throttled = count(&answers, 429, "throttled");
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    // The rule: three free failures, then one attempt after 1 s, one more 2 s later, 4 s … The
    // throttle's clock counts whole seconds, so each delay ends up to a second early in wall
    // time (a failure at 10.9 s owes "until second 11"): a burst gets the three free checks, plus
    // one for each delay that may have run out by the burst's end — the first of them at once.
    let delays_run_out = (1..=6u32)
        .filter(|k| f64::from((1 << k) - 1) - f64::from(*k) <= span)
        .count();
    assert!(
        (FREE_FAILURES_PER_ADDRESS..=FREE_FAILURES_PER_ADDRESS + delays_run_out).contains(&checked),
        "{checked} checked in a burst of {span:.1} s: {statuses:?}"
    );
    let challenged = answers.iter().filter(|a| a.status == 200).count();
    assert!(
        challenged <= 1,
        "only the right password may get a challenge"
    );
    assert_eq!(checked + throttled + challenged, n, "nothing else happened");
    for a in answers.iter().filter(|a| a.status == 429) {
        let wait: i64 = a.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
    }
    assert_eq!(
        account_state(&api, &admin, &victim.id).await,
        (checked as i64, false),
        "the account counted the checked failures only"
    );
    let entries = audit_entries(&api, &compliance).await;
    let by = reasons(&entries, &victim.id);
    assert_eq!(
        by.get("invalid_credentials").copied(),
        Some(checked),
        "{by:?}"
    );
    // The account is not locked: another address signs in.
    let other = server.api_from(loopback(8));
    let challenge = other
        .login(&victim.username, &victim.password)
        .await
        .expect(200)
        .str("challenge");
    other
        .mfa(&challenge, "totp", &victim.totp.next_code())
        .await
        .expect(200);
}

/// 129 wrong passwords sent at once from 129 addresses (so that no address is ever delayed):
/// exactly ten are checked, the account is locked exactly once with its counter at ten, every
/// other attempt is refused unchecked with the same answer as a wrong password, and the right
/// password sent last gets no challenge, only that same answer.
async fn a_burst_from_many_addresses_gets_ten_passwords_checked_and_the_right_one_no_challenge(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let victim = server.new_account("victor", "agent").await;
    let admin = server.admin_session().await;
    let compliance = server.new_account("cora", "compliance").await;
    let api = server.api();

    let n = 129;
    let clients = warm_clients(&server, (0..n).map(address)).await;
    let name = victim.username.clone();
    let answers = at_once(clients, move |i, api| {
        let name = name.clone();
        async move {
            api.login(&name, &format!("wrong guess number {i} of many"))
                .await
        }
    })
    .await;

    // Every one is answered alike, checked or refused by the lock (or, on a machine with few
    // cores, turned away at once because the hashing queue is full).
    let busy = count(&answers, 503, "busy");
    assert_eq!(
        count(&answers, 401, "invalid-credentials") + busy,
        n,
        "{:?}",
        answers
            .iter()
            .map(|a| a.status.as_u16())
            .collect::<Vec<_>>()
    );
    let bodies: std::collections::HashSet<String> = answers
        .iter()
        .filter(|a| a.status == 401)
        .map(|a| body(a).to_string())
        .collect();
    assert_eq!(bodies.len(), 1, "one answer for all: {bodies:?}");
    let entries = audit_entries(&api, &compliance).await;
    let by = reasons(&entries, &victim.id);
    assert_eq!(
        by.get("invalid_credentials").copied(),
        Some(MAX_FAILED_SIGN_INS),
        "exactly ten passwords were checked: {by:?}"
    );
    assert_eq!(
        by.get("account_locked").copied(),
        Some(n - MAX_FAILED_SIGN_INS - busy),
        "every other attempt was refused by the lock without a check: {by:?}"
    );
    assert_eq!(lockouts(&entries, &victim.id), 1, "locked once");
    assert_eq!(
        account_state(&api, &admin, &victim.id).await,
        (MAX_FAILED_SIGN_INS as i64, true),
        "the counter stops at the limit"
    );

    // The right password, sent last, gets no challenge: the answer to a wrong password for an
    // unknown name.
    let right = server
        .api_from(address(n + 1))
        .login(&victim.username, &victim.password)
        .await
        .expect_problem(401, "invalid-credentials");
    let unknown = server
        .api_from(address(n + 2))
        .login("nobody-at-all", &victim.password)
        .await
        .expect_problem(401, "invalid-credentials");
    assert_eq!(body(&right), body(&unknown));
    assert_eq!(
        account_state(&api, &admin, &victim.id).await,
        (MAX_FAILED_SIGN_INS as i64, true)
    );
    let by = reasons(&audit_entries(&api, &compliance).await, &victim.id);
    assert_eq!(
        by.get("invalid_credentials").copied(),
        Some(MAX_FAILED_SIGN_INS)
    );
}

/// 40 wrong authenticator codes sent at once on 40 challenges, from 40 addresses, within one
/// 30-second step: three are checked, the other 37 are refused as TOTP-locked, and the right
/// code sent afterwards in the same step is refused too. The account counts the three.
async fn a_burst_of_wrong_codes_gets_three_checked_and_the_right_code_is_refused_in_that_step(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let victim = server.new_account("wilma", "agent").await;
    let admin = server.admin_session().await;
    let compliance = server.new_account("cleo", "compliance").await;
    let api = server.api();

    let n = 40;
    let mut challenges = Vec::new();
    for _ in 0..=n {
        challenges.push(
            api.login(&victim.username, &victim.password)
                .await
                .expect(200)
                .str("challenge"),
        );
    }
    // Start early in a step, so that the burst and the right code fall into the same one; the
    // connections are opened after the wait, which may be longer than the server keeps an idle
    // connection open.
    while unix_now() % 30 > 12 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let clients = warm_clients(&server, (0..n).map(address)).await;
    let step = unix_now() / 30;
    let wrong = victim.totp.wrong_code();
    let burst: Vec<String> = challenges[..n].to_vec();
    let answers = at_once(clients, move |i, api| {
        let (challenge, wrong) = (burst[i].clone(), wrong.clone());
        async move { api.mfa(&challenge, "totp", &wrong).await }
    })
    .await;
    let right = server
        .api_from(address(n + 1))
        .mfa(&challenges[n], "totp", &victim.totp.peek_code())
        .await;
    assert_eq!(unix_now() / 30, step, "the test ran within one step");

    assert_eq!(
        count(&answers, 401, "second-factor-rejected"),
        WRONG_CODES_PER_STEP,
        "{:?}",
        answers
            .iter()
            .map(|a| a.status.as_u16())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        count(&answers, 429, "totp-locked"),
        n - WRONG_CODES_PER_STEP
    );
    right.expect_problem(429, "totp-locked");
    assert_eq!(
        account_state(&api, &admin, &victim.id).await,
        (WRONG_CODES_PER_STEP as i64, false)
    );
    let by = reasons(&audit_entries(&api, &compliance).await, &victim.id);
    assert_eq!(
        by.get("second_factor_rejected").copied(),
        Some(WRONG_CODES_PER_STEP),
        "{by:?}"
    );
    assert_eq!(
        by.get("totp_locked").copied(),
        Some(n - WRONG_CODES_PER_STEP + 1)
    );
}

/// A disabled account gives the same answer to its right and a wrong password, the answer an
/// unknown name gets, and counts every attempt as a failure.
async fn a_disabled_account_answers_wrong_and_right_passwords_alike_and_counts_the_failures(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let victim = server.new_account("xaver", "agent").await;
    let admin = server.admin_session().await;
    let api = server.api();
    api.post(
        &format!("/api/v1/users/{}/disable", victim.id),
        Some(&admin.token),
        serde_json::json!({}),
    )
    .await
    .expect(200);
    let before = account_state(&api, &admin, &victim.id).await;
    assert_eq!(before, (0, false));

    let right = server
        .api_from(loopback(21))
        .login(&victim.username, &victim.password)
        .await
        .expect_problem(401, "invalid-credentials");
    let wrong = server
        .api_from(loopback(22))
        .login(&victim.username, "not the password, surely")
        .await
        .expect_problem(401, "invalid-credentials");
    let unknown = server
        .api_from(loopback(23))
        .login("nobody-at-all", &victim.password)
        .await
        .expect_problem(401, "invalid-credentials");
    assert_eq!(body(&right), body(&wrong));
    assert_eq!(body(&right), body(&unknown));
    assert_eq!(
        account_state(&api, &admin, &victim.id).await,
        (2, false),
        "both attempts were counted"
    );
}

/// A locked account answers every password — wrong or right — exactly as a wrong password for an
/// unknown name, including the attempt that locks it. Only someone who proved the password
/// before the lock (a challenge in hand) is told that the account is locked.
async fn a_locked_account_answers_like_an_unknown_name_until_the_password_is_proven(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let victim = server.new_account("yvonne", "agent").await;
    let api = server.api();
    let held = api
        .login(&victim.username, &victim.password)
        .await
        .expect(200)
        .str("challenge");

    let unknown = |n: usize| {
        let api = server.api_from(address(500 + n));
        async move { api.login("nobody-at-all", "not the password, surely").await }
    };
    let reference = unknown(0).await.expect_problem(401, "invalid-credentials");
    for attempt in 1..=MAX_FAILED_SIGN_INS {
        let a = server
            .api_from(address(attempt))
            .login(&victim.username, "not the password, surely")
            .await
            .expect_problem(401, "invalid-credentials");
        assert_eq!(body(&a), body(&reference), "attempt {attempt}");
    }
    for (n, password) in [
        "not the password, surely",
        "another wrong one, also long",
        victim.password.as_str(),
    ]
    .into_iter()
    .enumerate()
    {
        let a = server
            .api_from(address(100 + n))
            .login(&victim.username, password)
            .await
            .expect_problem(401, "invalid-credentials");
        assert_eq!(body(&a), body(&reference));
        let u = unknown(1 + n)
            .await
            .expect_problem(401, "invalid-credentials");
        assert_eq!(body(&a), body(&u));
    }
    // The challenge proves the password was right before the lock: its holder is told.
    api.mfa(&held, "totp", &victim.totp.peek_code())
        .await
        .expect_problem(403, "account-locked");
}
