//! The payment page's tamper check (PCI DSS 11.6.1) against the real server: the first run
//! records a baseline signed with the audit key, an unchanged page passes, a changed page or an
//! edited baseline fails naming what changed and raises an alert; the server runs the same
//! check on its own schedule.

use crate::harness::{alert_when, Backend, Deployment, Server};

both_backends!(
    the_page_check_records_a_signed_baseline_and_a_changed_page_fails_it_with_an_alert,
    the_server_checks_its_payment_page_by_itself_and_alerts_on_a_change,
);

async fn the_page_check_records_a_signed_baseline_and_a_changed_page_fails_it_with_an_alert(
    backend: Backend,
) {
    let off = [("CALLGUARD_PAYMENTS_PAGE_CHECK_SECONDS", "0")];
    let server = Server::start_with(Deployment::new(backend), &off).await;
    let first = server.cli(&["payments", "page-check"]);
    assert!(first.status.success(), "{}", first.describe());
    assert!(
        first.stdout.contains("baseline recorded"),
        "{}",
        first.describe()
    );
    let again = server.cli(&["payments", "page-check"]);
    assert!(again.status.success(), "{}", again.describe());
    assert!(again.stdout.contains("unchanged"), "{}", again.describe());

    // The page is served differently now (another merchant name on it).
    let deployment = server.stop_keeping_data();
    let server = Server::start_with(
        deployment,
        &[
            off[0],
            ("CALLGUARD_PAYMENTS_MERCHANT_NAME", "Definitely Not Acme"),
        ],
    )
    .await;
    let changed = server.cli(&["payments", "page-check"]);
    assert!(!changed.status.success(), "{}", changed.describe());
    assert!(
        changed.stderr.contains("the page's content changed"),
        "{}",
        changed.describe()
    );
    let supervisor = server.new_account("sol-supervisor", "supervisor").await;
    let api = server.api();
    alert_when(&api, &supervisor.token, |a| {
        a["rule"] == "payment_page_changed"
    })
    .await;

    // A baseline edited by hand no longer carries a valid signature.
    let accepted = server.cli(&["payments", "page-check", "--accept"]);
    assert!(accepted.status.success(), "{}", accepted.describe());
    let path = server.data_dir.join("payments").join("page-baseline.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("content-security-policy", "content-security-policy ", 1),
    )
    .unwrap();
    let forged = server.cli(&["payments", "page-check"]);
    assert!(!forged.status.success(), "{}", forged.describe());
    assert!(forged.stderr.contains("signature"), "{}", forged.describe());
}

async fn the_server_checks_its_payment_page_by_itself_and_alerts_on_a_change(backend: Backend) {
    let every = [("CALLGUARD_PAYMENTS_PAGE_CHECK_SECONDS", "10")];
    let server = Server::start_with(Deployment::new(backend), &every).await;
    let compliance = server.new_account("cleo-compliance", "compliance").await;
    let api = server.api();
    // Its first run records the baseline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !server.data_dir.join("payments/page-baseline.json").exists() {
        assert!(std::time::Instant::now() < deadline, "no baseline recorded");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let audit = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .text;
    assert!(audit.contains("\"payments.page_baseline\""), "{audit}");
    let deployment = server.stop_keeping_data();
    let server = Server::start_with(
        deployment,
        &[
            every[0],
            ("CALLGUARD_PAYMENTS_MERCHANT_NAME", "Skimmers Ltd"),
        ],
    )
    .await;
    let supervisor = server.new_account("sid-supervisor", "supervisor").await;
    let (alert, _) = alert_when(&server.api(), &supervisor.token, |a| {
        a["rule"] == "payment_page_changed"
    })
    .await;
    assert_eq!(alert["severity"], "high", "{alert}");
}
