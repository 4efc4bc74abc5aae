//! Staff sign-in (SPEC C1) as a person and an attacker meet it: setup, password then second
//! factor, sessions, replay, recovery codes, lockout, per-address delays.

use crate::harness::{loopback, Backend, Server};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

both_backends!(
    full_sign_in_story,
    password_alone_never_yields_a_session,
    replayed_totp_code_is_refused,
    recovery_code_works_exactly_once,
    ten_wrong_passwords_lock_the_account_until_an_admin_unlocks_it,
    address_throttle_answers_429_with_retry_after,
    only_admins_create_users,
    admin_changes_take_effect_at_once,
);

/// CLI setup token -> password -> TOTP confirmation -> ten recovery codes -> a working session
/// -> logout kills it -> password + TOTP sign-in works again.
async fn full_sign_in_story(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();

    let setup_token = server.add_user("olivia", "agent");
    let password = "Quartz lantern drifts over wet slate at dawn";
    // Passwords that break the policy are refused, and the setup token stays usable.
    for weak in ["short pw", "1qaz2wsx3edc", "olivia is my name, all right"] {
        api.post(
            "/api/v1/auth/setup",
            None,
            json!({"token": setup_token, "password": weak}),
        )
        .await
        .expect_problem(422, "password-rejected");
    }
    let started = api
        .post(
            "/api/v1/auth/setup",
            None,
            json!({"token": setup_token, "password": password}),
        )
        .await
        .expect(200)
        .json();
    let challenge = started["challenge"].as_str().unwrap().to_owned();
    let secret = started["totp_secret"].as_str().unwrap().to_owned();
    let uri = started["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Callguard:olivia?"), "{uri}");
    assert!(
        uri.contains(&format!("secret={secret}")) && uri.contains("issuer=Callguard"),
        "{uri}"
    );
    assert!(
        started.get("token").is_none(),
        "setup step one must not open a session: {started}"
    );
    let totp = crate::harness::Totp::from_base32(&secret);

    // No account does anything before its second factor is enrolled: the password chosen in
    // step one does not sign in yet, and the setup challenge is no session.
    server
        .api_from(loopback(2))
        .login("olivia", password)
        .await
        .expect_problem(401, "invalid-credentials");
    api.me(&challenge)
        .await
        .expect_problem(401, "unauthenticated");
    // A wrong code does not confirm the enrolment.
    api.post(
        "/api/v1/auth/setup/confirm",
        None,
        json!({"challenge": challenge, "code": totp.wrong_code()}),
    )
    .await
    .expect_problem(401, "second-factor-rejected");

    let confirmed = api
        .post(
            "/api/v1/auth/setup/confirm",
            None,
            json!({"challenge": challenge, "code": totp.next_code()}),
        )
        .await
        .expect(200)
        .json();
    let token = confirmed["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cgs_"), "{token}");
    assert!(
        confirmed["expires_at"]
            .as_str()
            .is_some_and(|s| s.len() >= 20),
        "{confirmed}"
    );
    let codes: Vec<&str> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 10, "{confirmed}");
    assert_eq!(
        codes.iter().collect::<HashSet<_>>().len(),
        10,
        "recovery codes must be distinct: {codes:?}"
    );
    for c in &codes {
        let significant = c.chars().filter(char::is_ascii_alphanumeric).count();
        // At least 64 random bits: 13 base32 characters carry 65.
        assert!(significant >= 13, "recovery code too short: {c}");
    }

    let me = api.me(&token).await.expect(200).json();
    assert_eq!(me["username"], "olivia");
    assert_eq!(me["role"], "agent");
    assert!(me["id"].as_str().is_some_and(|id| !id.is_empty()));

    // The setup token is spent, and so is the setup challenge.
    api.post(
        "/api/v1/auth/setup",
        None,
        json!({"token": setup_token, "password": "Another long passphrase here"}),
    )
    .await
    .expect_problem(401, "setup-token-invalid");

    api.post("/api/v1/auth/logout", Some(&token), json!({}))
        .await
        .expect(204);
    api.me(&token).await.expect_problem(401, "unauthenticated");

    let login = api.login("olivia", password).await.expect(200).json();
    let methods: Vec<&str> = login["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        methods.contains(&"totp") && methods.contains(&"recovery"),
        "{login}"
    );
    let again = api
        .mfa(
            login["challenge"].as_str().unwrap(),
            "totp",
            &totp.next_code(),
        )
        .await
        .expect(200)
        .json();
    let token2 = again["token"].as_str().unwrap();
    assert_ne!(token2, token);
    assert!(again["expires_at"].is_string(), "{again}");
    assert_eq!(
        api.me(token2).await.expect(200).json()["username"],
        "olivia"
    );
    api.me(&token).await.expect_problem(401, "unauthenticated");
}

/// A correct password answers a challenge and never a session; the challenge is no bearer token;
/// a wrong code is refused; the right code then works once.
async fn password_alone_never_yields_a_session(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let acct = server.new_account("peter", "supervisor").await;

    let login = api
        .login(&acct.username, &acct.password)
        .await
        .expect(200)
        .json();
    assert_eq!(
        login.as_object().map(|o| o.contains_key("token")),
        Some(false),
        "no session from a password: {login}"
    );
    assert!(
        !login.to_string().contains("cgs_"),
        "no session token anywhere in {login}"
    );
    let challenge = login["challenge"].as_str().unwrap().to_owned();
    assert!(!challenge.is_empty());

    // The challenge is not a session.
    api.me(&challenge)
        .await
        .expect_problem(401, "unauthenticated");
    api.get("/api/v1/me/sessions", Some(&challenge))
        .await
        .expect_problem(401, "unauthenticated");

    // A wrong code, a malformed code, a wrong recovery code: refused.
    api.mfa(&challenge, "totp", &acct.totp.wrong_code())
        .await
        .expect_problem(401, "second-factor-rejected");

    // The right code completes this sign-in, once.
    let token = api
        .mfa(&challenge, "totp", &acct.totp.next_code())
        .await
        .expect(200)
        .str("token");
    api.me(&token).await.expect(200);
    api.mfa(&challenge, "totp", &acct.totp.wrong_code())
        .await
        .expect_problem(401, "challenge-invalid");

    // An unknown user and a wrong password get the same answer.
    let unknown = api
        .login("nobody-here", &acct.password)
        .await
        .expect_problem(401, "invalid-credentials");
    let wrong = server
        .api_from(loopback(2))
        .login(&acct.username, "not the password at all")
        .await;
    let wrong = wrong.expect_problem(401, "invalid-credentials");
    assert_eq!(unknown.json()["detail"], wrong.json()["detail"]);
}

/// The TOTP code that just opened a session does not open another.
async fn replayed_totp_code_is_refused(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let acct = server.new_account("quinn", "agent").await;

    let token = api.sign_in(&acct).await;
    api.me(&token).await.expect(200);
    let used = acct.totp.last_code();

    let challenge = api
        .login(&acct.username, &acct.password)
        .await
        .expect(200)
        .str("challenge");
    api.mfa(&challenge, "totp", &used)
        .await
        .expect_problem(401, "second-factor-rejected");
    // The refused replay did not spend the challenge: a recovery code still completes it.
    let token = api
        .mfa(&challenge, "recovery", &acct.recovery_codes[0])
        .await
        .expect(200)
        .str("token");
    api.me(&token).await.expect(200);
}

/// Each recovery code opens one session; its second use is refused; the others still work.
async fn recovery_code_works_exactly_once(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let acct = server.new_account("rosa", "compliance").await;
    let code = acct.recovery_codes[0].clone();

    let challenge = api
        .login(&acct.username, &acct.password)
        .await
        .expect(200)
        .str("challenge");
    let token = api
        .mfa(&challenge, "recovery", &code)
        .await
        .expect(200)
        .str("token");
    assert_eq!(api.me(&token).await.expect(200).json()["username"], "rosa");

    let challenge = api
        .login(&acct.username, &acct.password)
        .await
        .expect(200)
        .str("challenge");
    api.mfa(&challenge, "recovery", &code)
        .await
        .expect_problem(401, "second-factor-rejected");
    // A TOTP code is not a recovery code, nor the other way round.
    api.mfa(&challenge, "totp", &acct.recovery_codes[1])
        .await
        .expect_problem(401, "second-factor-rejected");

    // Another code, typed in lower case, still works on a fresh address.
    let other = server.api_from(loopback(9));
    let challenge = other
        .login(&acct.username, &acct.password)
        .await
        .expect(200)
        .str("challenge");
    let token = other
        .mfa(
            &challenge,
            "recovery",
            &acct.recovery_codes[1].to_lowercase(),
        )
        .await
        .expect(200)
        .str("token");
    other.me(&token).await.expect(200);
}

/// Ten wrong passwords, each from a different address so the per-address delay never applies,
/// lock the account: then even the right password is refused — with the answer to a wrong
/// password, so that the lock tells nothing — and the right code on a challenge opened before
/// the lock is refused as `account-locked`. `callguard user unlock` lifts it.
async fn ten_wrong_passwords_lock_the_account_until_an_admin_unlocks_it(backend: Backend) {
    let server = Server::start(backend).await;
    let acct = server.new_account("sam", "agent").await;
    let api = server.api();

    // A challenge opened with the right password before the attack.
    let held = api
        .login(&acct.username, &acct.password)
        .await
        .expect(200)
        .str("challenge");

    for attempt in 1..=10u8 {
        let attacker = server.api_from(loopback(10 + attempt));
        let answer = attacker
            .login(&acct.username, &format!("wrong password number {attempt}"))
            .await;
        answer.expect_problem(401, "invalid-credentials");
    }
    let listed = server.cli(&["user", "list"]);
    assert!(listed.status.success(), "{}", listed.describe());
    let line = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("sam "))
        .unwrap_or_default();
    assert!(
        line.contains("locked"),
        "`user list` shows the lock: {}",
        listed.stdout
    );

    server
        .api_from(loopback(30))
        .login(&acct.username, &acct.password)
        .await
        .expect_problem(401, "invalid-credentials");
    api.mfa(&held, "totp", &acct.totp.peek_code())
        .await
        .expect_problem(403, "account-locked");
    let unlocked = server.cli(&["user", "unlock", "sam"]);
    assert!(unlocked.status.success(), "{}", unlocked.describe());

    let token = api.sign_in(&acct).await;
    assert_eq!(api.me(&token).await.expect(200).json()["username"], "sam");

    // Unknown accounts cannot be unlocked, and the CLI says so.
    let missing = server.cli(&["user", "unlock", "nobody"]);
    assert!(!missing.status.success(), "{}", missing.describe());
    assert!(missing.stderr.contains("nobody"), "{}", missing.describe());
}

/// Repeated failures from one address make it wait, longer and longer: 429 with Retry-After,
/// even for the right password. After waiting as told it may try again; other addresses are
/// never affected.
async fn address_throttle_answers_429_with_retry_after(backend: Backend) {
    let server = Server::start(backend).await;
    let acct = server.new_account("tara", "agent").await;
    let api = server.api();
    let wrong = || api.login("nobody-at-all", "a wrong password, surely");

    // Three failures are free.
    for _ in 0..3 {
        wrong().await.expect_problem(401, "invalid-credentials");
    }
    // Then each failure owes a wait (1 s, 2 s, 4 s …). Fail until the owed wait is 4 s, so that
    // the checks below surely fall inside it however slow this machine is; whenever told to
    // wait, wait as told, after which the address may try again.
    let mut failures = 3;
    while failures < 5 {
        let a = wrong().await;
        match a.status.as_u16() {
            401 => failures += 1,
            429 => {
                let a = a.expect_problem(429, "throttled");
                let wait: u64 = a
                    .header("retry-after")
                    .expect("Retry-After")
                    .parse()
                    .expect("whole seconds");
                assert!((1..=60).contains(&wait), "Retry-After {wait}");
                tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
                wrong().await.expect_problem(401, "invalid-credentials");
                failures += 1;
            }
            other => panic!("unexpected {other}: {}", a.text),
        }
    }
    let a = wrong().await.expect_problem(429, "throttled");
    let wait: u64 = a
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(
        (1..=4).contains(&wait),
        "after five failures the wait is 4 s at most: {wait}"
    );
    // Even the right password is turned away while this address must wait, and so is step two;
    // turned away without counting against the account.
    api.login(&acct.username, &acct.password)
        .await
        .expect_problem(429, "throttled");
    api.mfa("cgc_made-up", "totp", "123456")
        .await
        .expect_problem(429, "throttled");

    // Another address is not affected.
    let other = server.api_from(loopback(2));
    let challenge = other
        .login(&acct.username, &acct.password)
        .await
        .expect(200)
        .str("challenge");
    let token = other
        .mfa(&challenge, "totp", &acct.totp.next_code())
        .await
        .expect(200)
        .str("token");
    other.me(&token).await.expect(200);
}

/// Only admins create accounts; agents, supervisors and compliance get 403 and nothing is made.
async fn only_admins_create_users(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let admin = server.admin_session().await;

    let mut tokens = Vec::new();
    for (name, role) in [
        ("ulla", "agent"),
        ("viktor", "supervisor"),
        ("wanda", "compliance"),
    ] {
        let made = api
            .post(
                "/api/v1/users",
                Some(&admin.token),
                json!({"username": name, "role": role}),
            )
            .await
            .expect(201)
            .json();
        assert!(made["id"].as_str().is_some_and(|s| !s.is_empty()), "{made}");
        let setup = made["setup_token"].as_str().unwrap();
        assert!(setup.starts_with("cgu_"), "{made}");
        let acct = api.set_up(setup, name, role).await;
        assert_eq!(
            made["id"], acct.id,
            "the id given at creation is the person's id"
        );
        tokens.push((role, acct.token));
    }
    for (role, token) in &tokens {
        for new_role in ["agent", "admin"] {
            let answer = api
                .post(
                    "/api/v1/users",
                    Some(token),
                    json!({"username": format!("made-by-{role}"), "role": new_role}),
                )
                .await;
            answer.expect_problem(403, "forbidden");
        }
        api.get("/api/v1/users", Some(token))
            .await
            .expect_problem(403, "forbidden");
    }
    // An admin whose session is fresh may create another admin.
    api.post(
        "/api/v1/users",
        Some(&admin.token),
        json!({"username": "xena", "role": "admin"}),
    )
    .await
    .expect(201);
    // Every person has their own account: a taken username is refused.
    api.post(
        "/api/v1/users",
        Some(&admin.token),
        json!({"username": "ulla", "role": "agent"}),
    )
    .await
    .expect_problem(409, "username-taken");
    // An unknown role is a bad request, not a new kind of account.
    api.post(
        "/api/v1/users",
        Some(&admin.token),
        json!({"username": "yusuf", "role": "root"}),
    )
    .await
    .expect(400);

    let users = api
        .get("/api/v1/users", Some(&admin.token))
        .await
        .expect(200)
        .json();
    let names: HashSet<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    let expected: HashSet<&str> = [admin.username.as_str(), "ulla", "viktor", "wanda", "xena"]
        .into_iter()
        .collect();
    assert_eq!(names, expected, "{users}");
    let pending: Vec<&Value> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["username"] == "xena")
        .collect();
    assert_eq!(pending[0]["status"], "pending");
}

/// Role changes, disabling, resets and unlocks by an admin apply at once: the person's sessions
/// end, and sign-in follows the new state.
async fn admin_changes_take_effect_at_once(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let admin = server.admin_session().await;
    let t = Some(admin.token.as_str());
    let made = api
        .post(
            "/api/v1/users",
            t,
            json!({"username": "zoe", "role": "agent"}),
        )
        .await
        .expect(201)
        .json();
    let zoe = api
        .set_up(made["setup_token"].as_str().unwrap(), "zoe", "agent")
        .await;
    let user = |action: &str| format!("/api/v1/users/{}/{action}", zoe.id);

    // A new role ends the sessions; the next one has the new role.
    let changed = api
        .call(
            reqwest::Method::PUT,
            &user("role"),
            t,
            Some(&json!({"role": "supervisor"})),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(changed["role"], "supervisor");
    api.me(&zoe.token)
        .await
        .expect_problem(401, "unauthenticated");
    let token = api.sign_in(&zoe).await;
    assert_eq!(
        api.me(&token).await.expect(200).json()["role"],
        "supervisor"
    );
    // An admin cannot change their own role.
    let own = format!("/api/v1/users/{}/role", admin.id);
    api.call(
        reqwest::Method::PUT,
        &own,
        t,
        Some(&json!({"role": "agent"})),
    )
    .await
    .expect_problem(422, "validation-failed");

    // Disabled: sessions end and sign-in is refused; enabled again: sign-in works.
    assert_eq!(
        api.post(&user("disable"), t, json!({}))
            .await
            .expect(200)
            .json()["status"],
        "disabled"
    );
    api.me(&token).await.expect_problem(401, "unauthenticated");
    // The password step answers a disabled account as a wrong password (nothing told, and it
    // counts against the address like one: hence an address of its own).
    server
        .api_from(loopback(39))
        .login("zoe", &zoe.password)
        .await
        .expect_problem(401, "invalid-credentials");
    assert_eq!(
        api.post(&user("enable"), t, json!({}))
            .await
            .expect(200)
            .json()["status"],
        "active"
    );
    let challenge = api
        .login("zoe", &zoe.password)
        .await
        .expect(200)
        .str("challenge");
    api.mfa(&challenge, "recovery", &zoe.recovery_codes[0])
        .await
        .expect(200);

    // Locked by ten failures, unlocked by the admin over the API.
    for attempt in 1..=10u8 {
        server
            .api_from(loopback(40 + attempt))
            .login("zoe", "certainly not it, no")
            .await;
    }
    let listed = api.get("/api/v1/users", t).await.expect(200).json();
    let row = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "zoe")
        .unwrap()
        .clone();
    assert_eq!(row["locked"], true, "{row}");
    api.login("zoe", &zoe.password)
        .await
        .expect_problem(401, "invalid-credentials");
    let unlocked = api
        .post(&user("unlock"), t, json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(unlocked["locked"], false, "{unlocked}");
    let challenge = api
        .login("zoe", &zoe.password)
        .await
        .expect(200)
        .str("challenge");
    api.mfa(&challenge, "recovery", &zoe.recovery_codes[1])
        .await
        .expect(200);

    // A reset wipes the credentials: the old password and recovery codes are dead, and the new
    // setup token enrols a new authenticator.
    let reset = api
        .post(&user("reset"), t, json!({}))
        .await
        .expect(200)
        .json();
    let setup = reset["setup_token"].as_str().unwrap();
    assert!(setup.starts_with("cgu_"), "{reset}");
    server
        .api_from(loopback(60))
        .login("zoe", &zoe.password)
        .await
        .expect_problem(401, "invalid-credentials");
    let again = api.set_up(setup, "zoe", "supervisor").await;
    assert_ne!(again.totp.bytes, zoe.totp.bytes, "a new TOTP secret");
    let challenge = api
        .login("zoe", &again.password)
        .await
        .expect(200)
        .str("challenge");
    api.mfa(&challenge, "recovery", &zoe.recovery_codes[2])
        .await
        .expect_problem(401, "second-factor-rejected");
    api.mfa(&challenge, "recovery", &again.recovery_codes[0])
        .await
        .expect(200);

    // Admin actions on an unknown account are 404, not an error.
    let ghost = format!("/api/v1/users/{}/disable", uuid::Uuid::new_v4());
    api.post(&ghost, t, json!({}))
        .await
        .expect_problem(404, "not-found");
}
