//! The end of a call: wrap-up with a disposition code from the configured list (once, audited,
//! ending the call), the agent's own list of calls, the customer's timeline on the next call,
//! and an opt-out heard on a call put on the Do-Not-Call list from the call screen.

use crate::calls::{register_demo_customer, start_call_id, verify_level1};
use crate::harness::{Account, Answer, Api, Backend, Deployment, Server};
use crate::vault::{PESEL, PHONE};
use serde_json::{json, Value};

both_backends!(
    an_agent_wraps_up_a_call_once_with_a_configured_code_and_it_is_audited,
    the_call_screen_wraps_up_and_takes_an_opt_out_for_the_agents_own_call_only,
);

const CODES: &str = "sale, no_sale, callback_needed";

/// A page form POST in `who`'s session, with a valid double-submit anti-forgery pair.
async fn post_form(api: &Api, who: &Account, path: &str, fields: &[(&str, &str)]) -> Answer {
    let csrf = "p".repeat(43);
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    api.send_raw(
        format!("{} -> POST {path} (page)", who.username),
        api.client
            .post(api.url(path))
            .bearer_auth(&who.token)
            .header("cookie", format!("__Host-callguard_csrf={csrf}"))
            .form(&form),
    )
    .await
}

async fn wrap_up(api: &Api, who: &Account, id: &str, code: &str) -> Answer {
    api.post(
        &format!("/api/v1/interactions/{id}/wrap-up"),
        Some(&who.token),
        json!({ "disposition": code }),
    )
    .await
}

async fn an_agent_wraps_up_a_call_once_with_a_configured_code_and_it_is_audited(backend: Backend) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_DESK_DISPOSITIONS", CODES)],
    )
    .await;
    let api = server.api();
    let agent = server.new_account("wanda", "agent").await;
    let other = server.new_account("oskar", "agent").await;
    let supervisor = server.new_account("stefan", "supervisor").await;
    let compliance = server.new_account("celina", "compliance").await;
    let customer = register_demo_customer(&api, &agent).await;
    let call = start_call_id(&api, &agent, PHONE).await;
    verify_level1(&api, &agent, &call, PESEL).await;
    api.post(
        &format!("/api/v1/customers/{customer}/operations"),
        Some(&agent.token),
        json!({"interaction_id": call, "kind": "add_note", "data": {"text": "asked about the bill"}}),
    )
    .await
    .expect(200);

    // A code outside the configured list (the defaults are not configured here) changes nothing.
    for bad in ["resolved", "", "SALE"] {
        let detail = wrap_up(&api, &agent, &call, bad)
            .await
            .expect_problem(422, "validation-failed")
            .json()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            detail.contains("sale, no_sale, callback_needed"),
            "{detail}"
        );
    }
    let still = api
        .get(&format!("/api/v1/interactions/{call}"), Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(still["status"], "active", "{still}");
    assert_eq!(still["disposition"], Value::Null);

    // Not another agent's call, and not a supervisor's job.
    wrap_up(&api, &other, &call, "sale")
        .await
        .expect_problem(404, "not-found");
    wrap_up(&api, &supervisor, &call, "sale")
        .await
        .expect_problem(403, "forbidden");

    // Two tabs, eight clicks at once: exactly one wrap-up, the others told it is done.
    let burst: Vec<_> = (0..8)
        .map(|i| {
            let (client, token) = (server.api().client, agent.token.clone());
            let url = server.url(&format!("/api/v1/interactions/{call}/wrap-up"));
            let code = if i % 2 == 0 { "sale" } else { "no_sale" };
            tokio::spawn(async move {
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "disposition": code }))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    let mut ok = Vec::new();
    for b in burst {
        let (status, text) = b.await.unwrap();
        match status {
            200 => ok.push(serde_json::from_str::<Value>(&text).unwrap()),
            409 => assert!(text.contains("/problems/wrong-state"), "{text}"),
            other => panic!("a wrap-up answered {other}: {text}"),
        }
    }
    assert_eq!(ok.len(), 1, "one wrap-up wins: {ok:?}");
    let done = &ok[0];
    assert_eq!(done["status"], "ended");
    assert!(done["ended_at"].is_string());
    let code = done["disposition"].as_str().unwrap().to_owned();
    wrap_up(&api, &agent, &call, "sale")
        .await
        .expect_problem(409, "wrong-state");

    // My list shows the call, ended, with what happened in it and me by username.
    let mine = api
        .get("/api/v1/me/interactions", Some(&agent.token))
        .await
        .expect(200)
        .json();
    let first = &mine.as_array().unwrap()[0];
    assert_eq!(first["id"], call.as_str());
    assert_eq!(first["agent"], "wanda");
    assert_eq!(first["level"], 1);
    assert_eq!(first["operations"], json!(["add_note"]));
    assert_eq!(first["disposition"], code.as_str());
    let theirs = api
        .get("/api/v1/me/interactions", Some(&other.token))
        .await
        .expect(200)
        .json();
    assert_eq!(theirs, json!([]), "another agent's list is their own");

    // One audit entry for the wrap-up, with the code and nothing personal.
    let log = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .json();
    let wraps: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "interaction.wrap_up")
        .collect();
    assert_eq!(wraps.len(), 1, "{wraps:?}");
    assert_eq!(wraps[0]["details"]["disposition"], code.as_str());
    assert_eq!(wraps[0]["target"], format!("customer:{customer}"));
    assert!(!wraps[0].to_string().contains(PESEL));

    // The next call from the customer shows this one on the timeline, agent by username.
    let next = start_call_id(&api, &other, PHONE).await;
    let page = api
        .get(&format!("/desk/interactions/{next}"), Some(&other.token))
        .await
        .expect(200)
        .text;
    let row = page
        .split("data-testid=\"timeline-row\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no timeline row in {page}"));
    assert!(row.contains("wanda"), "{row}");
    assert!(row.contains("add note"), "{row}");
    assert!(row.contains(&code.replace('_', " ")), "{row}");
    assert!(!page.contains(&agent.id), "the agent's id is not shown");
}

async fn the_call_screen_wraps_up_and_takes_an_opt_out_for_the_agents_own_call_only(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server.new_account("tamara", "agent").await;
    let other = server.new_account("ursula", "agent").await;
    let supervisor = server.new_account("sylwia", "supervisor").await;
    let call = start_call_id(&api, &agent, "+48 500 100 200").await;
    let path = format!("/desk/interactions/{call}");

    // The screen offers the configured codes (the defaults here) and the opt-out form.
    let screen = api.get(&path, Some(&agent.token)).await.expect(200).text;
    for code in ["resolved", "callback_needed", "wrong_number"] {
        assert!(screen.contains(&format!("value=\"{code}\"")), "{code}");
    }
    assert!(screen.contains("data-testid=\"register-caller\""));
    // "Register this caller" carries the number to the registration form, as a search made in
    // this call (no alert about a look-up outside a call).
    assert!(
        screen.contains("name=\"q\" value=\"+48500100200\""),
        "{screen}"
    );
    let desk = post_form(
        &api,
        &agent,
        "/desk/search",
        &[("q", "+48500100200"), ("interaction", call.as_str())],
    )
    .await;
    assert_eq!(desk.status.as_u16(), 200, "{}", desk.text);
    assert!(
        desk.text.contains("name=\"phone\" value=\"+48500100200\""),
        "{}",
        desk.text
    );
    assert!(screen.contains("data-testid=\"opt-out-form\""));

    // A number that is not one is refused on the page and lists nothing.
    let bad = post_form(
        &api,
        &agent,
        &format!("{path}/opt-out"),
        &[("number", "12")],
    )
    .await;
    assert_eq!(bad.status.as_u16(), 422, "{}", bad.text);
    assert!(
        bad.text.contains("not a valid phone number"),
        "{}",
        bad.text
    );
    // Not on another agent's call.
    let theirs = post_form(
        &api,
        &other,
        &format!("{path}/opt-out"),
        &[("number", "+48 601-100-200")],
    )
    .await;
    assert_eq!(theirs.status.as_u16(), 404, "{}", theirs.text);
    let listed = api
        .get("/api/v1/dnc/internal", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    assert_eq!(listed["entries"], json!([]), "{listed}");

    // The caller's own words, in any common format: on the list at once, masked on the page.
    let added = post_form(
        &api,
        &agent,
        &format!("{path}/opt-out"),
        &[("number", "+48 601-100-200")],
    )
    .await;
    assert_eq!(added.status.as_u16(), 200, "{}", added.text);
    assert!(added.text.contains("on the Do-Not-Call list from now on"));
    assert!(
        !added.text.contains("601100200"),
        "the number is shown masked"
    );
    let listed = api
        .get("/api/v1/dnc/internal", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    let entries = listed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["source"], "agent");
    assert_eq!(entries[0]["added_by"], format!("user:{}", agent.id));

    // Wrap-up from the page: an unknown code is refused on the page, then the call closes.
    let wrong = post_form(
        &api,
        &agent,
        &format!("{path}/wrap-up"),
        &[("disposition", "made_up")],
    )
    .await;
    assert_eq!(wrong.status.as_u16(), 422, "{}", wrong.text);
    assert!(wrong.text.contains("choose a wrap-up code from the list"));
    let done = post_form(
        &api,
        &agent,
        &format!("{path}/wrap-up"),
        &[("disposition", "wrong_number")],
    )
    .await;
    assert_eq!(done.status.as_u16(), 200, "{}", done.text);
    assert!(
        done.text.contains("Wrapped up as wrong number"),
        "{}",
        done.text
    );
    assert!(done.text.contains("data-testid=\"disposition\""));
    let again = post_form(
        &api,
        &agent,
        &format!("{path}/wrap-up"),
        &[("disposition", "resolved")],
    )
    .await;
    assert_eq!(again.status.as_u16(), 409, "{}", again.text);
    let view = api
        .get(&format!("/api/v1/interactions/{call}"), Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(view["disposition"], "wrong_number");
    let closed = api.get(&path, Some(&agent.token)).await.expect(200).text;
    assert!(
        !closed.contains("value=\"+48500100200\""),
        "the number is dropped with the call: {closed}"
    );
    assert_eq!(view["status"], "ended");

    // A supervisor has no call screen to wrap up from.
    let refused = post_form(
        &api,
        &supervisor,
        &format!("{path}/wrap-up"),
        &[("disposition", "resolved")],
    )
    .await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.text);
}
