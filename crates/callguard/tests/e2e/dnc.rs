//! Outbound compliance (SPEC C8, national registry part) end to end: registry files in both
//! published forms imported by the CLI while the server runs, checked through the API against a
//! reference set; a refused import leaves the registry in force answering; a new import replaces
//! it; call lists are scrubbed keeping their other columns.

use crate::harness::{Backend, Deployment, Server};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

both_backends!(the_national_registry_is_imported_checked_replaced_and_scrubbed_against_a_reference);

/// A random valid NANP number: area code 2-9,0-8,x (not N11), exchange 2-9xx (not N11).
fn random_nanp(rng: &mut rand::rngs::StdRng) -> u64 {
    loop {
        let npa = rng.gen_range(200..1000u64);
        let nxx = rng.gen_range(200..1000u64);
        let (n1, n2) = ((npa / 10) % 10, npa % 10);
        let (x1, x2) = ((nxx / 10) % 10, nxx % 10);
        if n1 == 9 || (n1 == 1 && n2 == 1) || (x1 == 1 && x2 == 1) {
            continue;
        }
        return npa * 10_000_000 + nxx * 10_000 + rng.gen_range(0..10_000u64);
    }
}

async fn wait_for_registry(server: &Server, token: &str, sha: Option<&str>) -> Value {
    let api = server.api();
    for _ in 0..100 {
        let status = api
            .get("/api/v1/dnc/status", Some(token))
            .await
            .expect(200)
            .json();
        let current = status["registry"]["sha256"].as_str().map(str::to_owned);
        if current.is_some() && (sha.is_none() || current.as_deref() == sha) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the server never loaded the registry\n{}", server.logs());
}

fn sha_of_output(stdout: &str) -> String {
    stdout
        .split("sha256 ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned()
}

async fn the_national_registry_is_imported_checked_replaced_and_scrubbed_against_a_reference(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let agent = server.new_account("dialer-agent", "agent").await;
    let supervisor = server.new_account("dialer-sup", "supervisor").await;
    let api = server.api();

    // No registry yet: checking is refused rather than guessing.
    api.post(
        "/api/v1/dnc/check",
        Some(&agent.token),
        json!({"numbers": ["+12025550123"]}),
    )
    .await
    .expect_problem(501, "not-configured");

    // A registry of 20,000 numbers in both published forms, with duplicates.
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let reference: BTreeSet<u64> = (0..20_000).map(|_| random_nanp(&mut rng)).collect();
    let mut text = String::from("AreaCode,PhoneNumber\n");
    for (i, n) in reference.iter().enumerate() {
        if i % 2 == 0 {
            text.push_str(&format!("{},{}\n", n / 10_000_000, n % 10_000_000));
        } else {
            text.push_str(&format!("+1{n}\n"));
        }
        if i % 100 == 0 {
            text.push_str(&format!("{n}\n")); // a duplicate in the third form
        }
    }
    let file = server.root().join("registry.csv");
    std::fs::write(&file, &text).unwrap();
    let imported = server.cli(&["dnc", "import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", imported.describe());
    assert!(
        imported
            .stdout
            .contains(&format!("imported {} numbers", reference.len())),
        "{}",
        imported.stdout
    );
    let sha = sha_of_output(&imported.stdout);
    let status = wait_for_registry(&server, &supervisor.token, Some(&sha)).await;
    assert_eq!(status["registry"]["numbers"], reference.len() as u64);
    assert_eq!(status["stale"], false);

    // Checks agree with the reference: members, non-members, garbage, a foreign number.
    let mut probes: Vec<(String, Option<bool>)> = Vec::new();
    for n in reference.iter().step_by(7) {
        probes.push((format!("+1{n}"), Some(false)));
    }
    while probes.len() < 9_000 {
        let n = random_nanp(&mut rng);
        probes.push((format!("{n}"), Some(!reference.contains(&n))));
    }
    for garbage in ["", "not a number", "+1 111 555 0123", "555-0123", "+999"] {
        probes.push((garbage.to_owned(), None));
    }
    probes.push(("+48 601 234 567".into(), Some(true)));
    let numbers: Vec<&str> = probes.iter().map(|(n, _)| n.as_str()).collect();
    let answer = api
        .post(
            "/api/v1/dnc/check",
            Some(&agent.token),
            json!({ "numbers": numbers }),
        )
        .await
        .expect(200)
        .json();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), probes.len(), "one result per number");
    for ((number, expected), got) in probes.iter().zip(results) {
        assert_eq!(got["number"], number.as_str(), "in the order asked");
        match expected {
            Some(free) => {
                // Random area codes lie in every time zone, so some are outside their calling
                // window whenever this runs; the registry's answer is the rest.
                let reasons: Vec<&str> = got["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect();
                assert_eq!(got["allowed"], reasons.is_empty(), "{number}: {got}");
                let registry: Vec<&str> = reasons
                    .into_iter()
                    .filter(|r| *r != "outside_calling_hours")
                    .collect();
                let expected: &[&str] = if *free { &[] } else { &["national_dnc"] };
                assert_eq!(registry, expected, "{number}: {got}");
            }
            None => {
                assert_eq!(got["allowed"], false, "garbage is never allowed: {number}");
                assert_eq!(got["reasons"], json!(["invalid_number"]), "{number}");
            }
        }
    }
    // Batches are bounded and bodies strict.
    let too_many: Vec<String> = (0..10_001)
        .map(|i| format!("202555{:04}", i % 10_000))
        .collect();
    api.post(
        "/api/v1/dnc/check",
        Some(&agent.token),
        json!({ "numbers": too_many }),
    )
    .await
    .expect_problem(422, "validation-failed");
    api.post(
        "/api/v1/dnc/check",
        Some(&agent.token),
        json!({"numbers": ["2025550123"], "force": true}),
    )
    .await
    .expect_problem(400, "bad-request");

    // A file with a bad line is refused whole, naming the line; the registry in force stays.
    let member = *reference.iter().next().unwrap();
    let bad = server.root().join("bad.txt");
    std::fs::write(&bad, "2025550123\n+1 202 555 01\n3035550100\n").unwrap();
    let refused = server.cli(&["dnc", "import", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("line(s) 2"),
        "{}",
        refused.describe()
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = api
        .post(
            "/api/v1/dnc/check",
            Some(&agent.token),
            json!({"numbers": [format!("{member}")]}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(
        still["results"][0]["allowed"], false,
        "the old registry still answers"
    );

    // A new registry replaces it: the old members are callable again, the new one is not.
    let fresh = server.root().join("fresh.txt");
    std::fs::write(&fresh, "2025550123\n").unwrap();
    let replaced = server.cli(&["dnc", "import", fresh.to_str().unwrap()]);
    assert!(replaced.status.success(), "{}", replaced.describe());
    wait_for_registry(
        &server,
        &supervisor.token,
        Some(&sha_of_output(&replaced.stdout)),
    )
    .await;
    let after = api
        .post(
            "/api/v1/dnc/check",
            Some(&agent.token),
            // 15:00 on the East Coast, 09:00 in Hawaii: inside every state's window.
            json!({"numbers": [format!("{member}"), "+12025550123"], "at": "2024-07-15T19:00:00Z"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(after["results"][0]["allowed"], member != 2_025_550_123);
    assert_eq!(after["results"][1]["allowed"], false);

    // Scrubbing a call list keeps the other columns and reports what it removed and why.
    let list = server.root().join("calls.csv");
    std::fs::write(&list, "name,phone,notes\nAda,+1 202 555 0123,\"vip, call first\"\nCy,+48 601 234 567,pl\nDee,garbage,x\n").unwrap();
    let out = server.root().join("callable.csv");
    let scrubbed = server.cli(&[
        "dnc",
        "scrub",
        list.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(scrubbed.status.success(), "{}", scrubbed.describe());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "name,phone,notes\nCy,+48 601 234 567,pl\n"
    );
    let removed = std::fs::read_to_string(server.root().join("callable.removed.csv")).unwrap();
    assert_eq!(removed, "name,phone,notes,removed_because\nAda,+1 202 555 0123,\"vip, call first\",national_dnc\nDee,garbage,x,invalid_number\n");

    // Imports (refused ones too) and the scrub are in the audit log, with counts, not numbers.
    let compliance = server.new_account("dnc-auditor", "compliance").await;
    let log = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .json();
    let dnc: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap_or("").starts_with("dnc."))
        .collect();
    let outcomes: Vec<(&str, &str)> = dnc
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("dnc.import", "success"),
            ("dnc.import", "failure"),
            ("dnc.import", "success"),
            ("dnc.scrub", "success")
        ]
    );
    assert_eq!(dnc[0]["details"]["numbers"], reference.len() as u64);
    assert_eq!(dnc[0]["details"]["sha256"], sha.as_str());
    let text = serde_json::to_string(&log).unwrap();
    for needle in [member.to_string(), "5550123".to_owned()] {
        if let Some(at) = text.find(&needle) {
            panic!(
                "a number in the log: …{}…",
                &text[at.saturating_sub(120)..(at + 40).min(text.len())]
            );
        }
    }
}

both_backends!(calling_windows_follow_the_called_party_across_time_zones);

/// Imports `numbers` (one per line) as the national registry and waits until the server uses it.
async fn import_registry(server: &Server, token: &str, numbers: &str) {
    let file = server
        .root()
        .join(format!("registry-{}.txt", crate::harness::suffix()));
    std::fs::write(&file, numbers).unwrap();
    let ran = server.cli(&["dnc", "import", file.to_str().unwrap()]);
    assert!(ran.status.success(), "{}", ran.describe());
    wait_for_registry(server, token, Some(&sha_of_output(&ran.stdout))).await;
}

/// The reasons given for each number, in the order asked.
async fn reasons(server: &Server, token: &str, body: Value) -> Vec<Vec<String>> {
    let answer = server
        .api()
        .post("/api/v1/dnc/check", Some(token), body)
        .await
        .expect(200)
        .json();
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let reasons: Vec<String> = r["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            assert_eq!(r["allowed"], reasons.is_empty(), "{r}");
            reasons
        })
        .collect()
}

async fn calling_windows_follow_the_called_party_across_time_zones(backend: Backend) {
    // Florida holds calls to 20:00, a state rule stricter than the TCPA's 21:00.
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_DNC_CALLING_HOURS_REGIONS", "US-FL=08:00-20:00")],
    )
    .await;
    let agent = server.new_account("window-agent", "agent").await;
    let supervisor = server.new_account("window-sup", "supervisor").await;
    import_registry(&server, &supervisor.token, "3035550100\n").await;

    let numbers = [
        "+1 212 555 0100", // New York
        "+1 312 555 0100", // Chicago
        "+1 303 555 0100", // Denver, and on the registry
        "+1 415 555 0100", // San Francisco
        "+1 808 555 0100", // Honolulu
        "+1 800 555 0100", // toll-free: nowhere in particular
        "+48 601 234 567", // outside the North American plan
        "call me maybe",
    ];
    let none: Vec<String> = Vec::new();
    let late = vec!["outside_calling_hours".to_owned()];
    // 13:30 UTC in July: 09:30 in New York, 08:30 Chicago, 07:30 Denver, 06:30 San Francisco,
    // 03:30 Honolulu.
    let summer_morning = vec![
        none.clone(),
        none.clone(),
        vec![
            "national_dnc".to_owned(),
            "outside_calling_hours".to_owned(),
        ],
        late.clone(),
        late.clone(),
        late.clone(),
        none.clone(),
        vec!["invalid_number".to_owned()],
    ];
    for at in ["2024-07-15T13:30:00Z", "2024-07-15T09:30:00-04:00"] {
        assert_eq!(
            reasons(&server, &agent.token, json!({"numbers": numbers, "at": at})).await,
            summer_morning,
            "at {at}"
        );
    }
    // 19:00 UTC: 15:00 in New York, 09:00 in Honolulu: everyone is in their window, the
    // toll-free number too (it is held to every state's window at once).
    let afternoon = reasons(
        &server,
        &agent.token,
        json!({"numbers": numbers, "at": "2024-07-15T19:00:00Z"}),
    )
    .await;
    assert_eq!(afternoon[0], none);
    assert_eq!(afternoon[2], vec!["national_dnc".to_owned()]);
    assert_eq!(afternoon[4], none);
    assert_eq!(afternoon[5], none);

    // The day daylight saving time starts, 12:30 UTC moves from 07:30 EST to 08:30 EDT.
    let new_york = json!(["2125550100"]);
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            json!({"numbers": new_york, "at": "2024-03-09T12:30:00Z"})
        )
        .await,
        vec![late.clone()]
    );
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            json!({"numbers": new_york, "at": "2024-03-10T12:30:00Z"})
        )
        .await,
        vec![none.clone()]
    );

    // Florida's own window: at 20:30 EDT Miami is too late, Atlanta (same zone) is not.
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            json!({"numbers": ["+13055550100", "+14045550100"], "at": "2024-07-16T00:30:00Z"})
        )
        .await,
        vec![late.clone(), none.clone()]
    );

    // Without `at` the check is for now: it answers, whatever the hour.
    assert_eq!(
        reasons(&server, &agent.token, json!({"numbers": ["2125550100"]}))
            .await
            .len(),
        1
    );

    // A time that is not RFC 3339 with an offset is refused, naming the field, not echoing it.
    let api = server.api();
    for bad in [
        "tomorrow at nine",
        "2024-07-15T13:30:00",
        "2024-13-40T25:00:00Z",
        "",
    ] {
        let answer = api
            .post(
                "/api/v1/dnc/check",
                Some(&agent.token),
                json!({"numbers": ["2125550100"], "at": bad}),
            )
            .await
            .expect_problem(422, "validation-failed")
            .json();
        let detail = answer["detail"].as_str().unwrap();
        assert!(detail.contains("`at`"), "{detail}");
        assert!(bad.is_empty() || !detail.contains(bad), "{detail}");
    }
    api.post(
        "/api/v1/dnc/check",
        Some(&agent.token),
        json!({"numbers": ["2125550100"], "at": 1_721_050_200}),
    )
    .await
    .expect_problem(400, "bad-request");
}
