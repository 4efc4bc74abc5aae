//! The staff administration page does everything the API offers on an account (role,
//! disable/enable, reset with a new setup token), each refused until the admin confirmed it is
//! them, refused for other roles, and answered with its result on the page.

use crate::duties::{age_sessions, reauthenticate};
use crate::harness::{Account, Answer, Api, Backend, Server};

both_backends!(the_admin_page_changes_roles_disables_and_resets_only_after_reauthentication);

/// A page form POST in `who`'s session, with a valid double-submit anti-forgery pair.
async fn post_form(api: &Api, who: &Account, path: &str, fields: &[(&str, &str)]) -> Answer {
    let csrf = "a".repeat(43);
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

async fn role_of(api: &Api, admin: &Account, username: &str) -> (String, String) {
    let users = api
        .get("/api/v1/users", Some(&admin.token))
        .await
        .expect(200)
        .json();
    let u = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap()
        .clone();
    (
        u["role"].as_str().unwrap().to_owned(),
        u["status"].as_str().unwrap().to_owned(),
    )
}

async fn the_admin_page_changes_roles_disables_and_resets_only_after_reauthentication(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let mut admin = server.admin_session().await;
    let pia = server.new_account("pia", "agent").await;
    let sven = server.new_account("sven", "supervisor").await;
    let page = api
        .get("/admin/users", Some(&admin.token))
        .await
        .expect(200)
        .text;
    assert!(
        page.contains("You confirmed it's you"),
        "a fresh sign-in counts"
    );
    age_sessions(&server, &admin.id).await;
    let page = api
        .get("/admin/users", Some(&admin.token))
        .await
        .expect(200)
        .text;
    assert!(
        page.contains("Step 1: confirm it's you"),
        "the step is asked for visibly"
    );

    let role = format!("/admin/users/{}/role", pia.id);
    let refused = post_form(&api, &admin, &role, &[("role", "supervisor")]).await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.text);
    assert!(
        refused.text.contains("data-testid=\"error\""),
        "{}",
        refused.text
    );
    assert_eq!(
        role_of(&api, &admin, "pia").await.0,
        "agent",
        "nothing changed"
    );
    // Another role is refused whatever it confirmed.
    let not_admin = post_form(&api, &sven, &role, &[("role", "admin")]).await;
    assert_eq!(not_admin.status.as_u16(), 403, "{}", not_admin.text);
    assert!(not_admin.text.contains("/problems/forbidden"));

    reauthenticate(&api, &mut admin).await;
    let done = post_form(&api, &admin, &role, &[("role", "supervisor")]).await;
    assert_eq!(done.status.as_u16(), 200, "{}", done.text);
    assert!(done.text.contains("pia is now supervisor"), "{}", done.text);
    assert_eq!(role_of(&api, &admin, "pia").await.0, "supervisor");
    let bad = post_form(&api, &admin, &role, &[("role", "customer")]).await;
    assert_eq!(bad.status.as_u16(), 422, "{}", bad.text);

    let off = post_form(
        &api,
        &admin,
        &format!("/admin/users/{}/disable", pia.id),
        &[],
    )
    .await;
    assert!(off.text.contains("pia is disabled"), "{}", off.text);
    assert_eq!(role_of(&api, &admin, "pia").await.1, "disabled");
    api.me(&pia.token)
        .await
        .expect_problem(401, "unauthenticated");
    let on = post_form(
        &api,
        &admin,
        &format!("/admin/users/{}/enable", pia.id),
        &[],
    )
    .await;
    assert!(on.text.contains("pia is enabled"), "{}", on.text);
    assert_eq!(role_of(&api, &admin, "pia").await.1, "active");
    let mine = post_form(
        &api,
        &admin,
        &format!("/admin/users/{}/disable", admin.id),
        &[],
    )
    .await;
    assert_eq!(mine.status.as_u16(), 422, "{}", mine.text);

    let reset = post_form(
        &api,
        &admin,
        &format!("/admin/users/{}/reset", sven.id),
        &[],
    )
    .await;
    assert_eq!(reset.status.as_u16(), 200, "{}", reset.text);
    assert!(reset.text.contains("data-testid=\"setup-link\""));
    let token = reset
        .text
        .split("data-testid=\"setup-token\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap()
        .to_owned();
    let again = api.set_up(&token, "sven", "supervisor").await;
    assert_eq!(
        again.username, "sven",
        "the token shown sets the account up again"
    );
}
