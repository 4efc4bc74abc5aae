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

pub async fn wait_for_registry(server: &Server, token: &str, sha: Option<&str>) -> Value {
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

pub fn sha_of_output(stdout: &str) -> String {
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
        // The phone column holds the E.164 number that was checked.
        "name,phone,notes\nCy,+48601234567,pl\n"
    );
    let removed = std::fs::read_to_string(server.root().join("callable.removed.csv")).unwrap();
    assert_eq!(removed, "name,phone,notes,removed_because\nAda,+12025550123,\"vip, call first\",national_dnc\nDee,garbage,x,invalid_number\n");

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
pub async fn import_registry(server: &Server, token: &str, numbers: &str) {
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

both_backends!(an_opt_out_and_a_consent_revocation_take_effect_on_the_very_next_check);

/// Every stored byte of the deployment's lists and log, for scanning: the SQLite files, or the
/// PostgreSQL rows as text.
async fn stored_text(server: &Server) -> String {
    match &server.pg {
        Some(pg) => {
            let client = pg.connect().await;
            let mut text = String::new();
            for table in ["dnc_internal", "consent_ledger", "audit_entries"] {
                let row = client
                    .query_one(
                        &format!("SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t"),
                        &[],
                    )
                    .await
                    .unwrap();
                text.push_str(&row.get::<_, String>(0));
            }
            text
        }
        None => {
            let mut bytes = Vec::new();
            for name in ["callguard.db", "callguard.db-wal"] {
                if let Ok(b) = std::fs::read(server.data_dir.join(name)) {
                    bytes.extend(b);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

async fn an_opt_out_and_a_consent_revocation_take_effect_on_the_very_next_check(backend: Backend) {
    let server = Server::start(backend).await;
    let agent = server.new_account("list-agent", "agent").await;
    let supervisor = server.new_account("list-sup", "supervisor").await;
    let compliance = server.new_account("list-compliance", "compliance").await;
    let api = server.api();
    import_registry(&server, &supervisor.token, "3035550100\n").await;
    // 15:00 in New York, 09:00 in Honolulu: every state is inside its window.
    let noon = "2024-07-15T19:00:00Z";
    let check = |numbers: Value, purpose: Option<&str>| {
        let mut body = json!({"numbers": numbers, "at": noon});
        if let Some(p) = purpose {
            body["purpose"] = json!(p);
        }
        body
    };
    let none: Vec<String> = Vec::new();
    let words = |w: &[&str]| -> Vec<String> { w.iter().map(|s| (*s).to_owned()).collect() };

    // An opt-out heard on a call: callable before, refused on the very next check, whatever
    // the spelling of the number.
    let new_york = json!(["+12125550100"]);
    assert_eq!(
        reasons(&server, &agent.token, check(new_york.clone(), None)).await,
        vec![none.clone()]
    );
    let added = api
        .post(
            "/api/v1/dnc/internal",
            Some(&agent.token),
            json!({"number": "(212) 555-0100", "source": "agent"}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(added["number"], "+1 * *** *** 100", "masked: {added}");
    assert_eq!(added["source"], "agent");
    let opt_out_id = added["id"].as_str().unwrap().to_owned();
    assert!(added["added_by"].as_str().unwrap().starts_with("user:"));
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            check(json!(["+12125550100", "212.555.0100"]), None)
        )
        .await,
        vec![words(&["internal_dnc"]), words(&["internal_dnc"])]
    );
    // Heard again: the first entry stands, nothing new is logged.
    let again = api
        .post(
            "/api/v1/dnc/internal",
            Some(&supervisor.token),
            json!({"number": "+1 212 555 0100", "source": "complaint"}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(again["id"], opt_out_id.as_str());
    // Bad opt-outs change nothing and never echo the number.
    for (body, status, slug) in [
        (
            json!({"number": "212-555-01x0", "source": "agent"}),
            422,
            "validation-failed",
        ),
        (
            json!({"number": "+1 111 555 0100", "source": "agent"}),
            422,
            "validation-failed",
        ),
        (
            json!({"number": "+12125550199", "source": "telepathy"}),
            422,
            "validation-failed",
        ),
        (json!({"number": "+12125550199"}), 400, "bad-request"),
        (
            json!({"number": "+12125550199", "source": "agent", "expires": "never"}),
            400,
            "bad-request",
        ),
        (
            json!({"number": 2125550199u64, "source": "agent"}),
            400,
            "bad-request",
        ),
    ] {
        let answer = api
            .post("/api/v1/dnc/internal", Some(&agent.token), body.clone())
            .await
            .expect_problem(status, slug)
            .json();
        let detail = answer["detail"].as_str().unwrap();
        assert!(!detail.contains("555"), "{body}: {detail}");
    }
    let listed = api
        .get("/api/v1/dnc/internal", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    let entries = listed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["id"], opt_out_id.as_str());
    assert!(!listed.to_string().contains("5550100"));
    api.get("/api/v1/dnc/internal", Some(&agent.token))
        .await
        .expect_problem(403, "forbidden");
    api.get("/api/v1/dnc/internal?limit=lots", Some(&supervisor.token))
        .await
        .expect_problem(400, "bad-request");

    // Consent: required only when the dialer names a purpose.
    let chicago = json!(["+13125550100"]);
    assert_eq!(
        reasons(&server, &agent.token, check(chicago.clone(), None)).await,
        vec![none.clone()]
    );
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            check(chicago.clone(), Some("telemarketing"))
        )
        .await,
        vec![words(&["no_consent"])]
    );
    let granted = api
        .post(
            "/api/v1/consents",
            Some(&agent.token),
            json!({"number": "+1 312 555 0100", "purpose": "telemarketing", "channel": "call",
                   "source": "web_form", "evidence": "https://forms.example/signed/4242"}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(granted["active"], true);
    assert_eq!(granted["evidence_on_file"], true);
    assert_eq!(granted["number"], "+1 * *** *** 100");
    assert!(
        !granted.to_string().contains("forms.example"),
        "evidence is never shown"
    );
    let consent_id = granted["id"].as_str().unwrap().to_owned();
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            check(chicago.clone(), Some("telemarketing"))
        )
        .await,
        vec![none.clone()]
    );
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            check(chicago.clone(), Some("surveys"))
        )
        .await,
        vec![words(&["no_consent"])],
        "consent is for one purpose"
    );
    // Consent to text messages is no consent to calls.
    let sf_sms = api
        .post(
            "/api/v1/consents",
            Some(&compliance.token),
            json!({"number": "+14155550177", "purpose": "telemarketing", "channel": "sms",
                   "source": "portal", "evidence": "ticked the box on the portal"}),
        )
        .await
        .expect(201)
        .json();
    assert_eq!(sf_sms["channel"], "sms");
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            check(json!(["+14155550177"]), Some("telemarketing"))
        )
        .await,
        vec![words(&["no_consent"])]
    );
    let of_chicago = api
        .get(
            "/api/v1/consents?number=%2B13125550100",
            Some(&supervisor.token),
        )
        .await
        .expect(200)
        .json();
    let consents = of_chicago["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 1, "{of_chicago}");
    assert_eq!(consents[0]["id"], consent_id.as_str());
    assert_eq!(
        api.get("/api/v1/consents", Some(&compliance.token))
            .await
            .expect(200)
            .json()["consents"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    api.get("/api/v1/consents?number=garbage", Some(&supervisor.token))
        .await
        .expect_problem(422, "validation-failed");
    api.get("/api/v1/consents", Some(&agent.token))
        .await
        .expect_problem(403, "forbidden");
    api.post(
        "/api/v1/consents",
        Some(&supervisor.token),
        json!({"number": "+13125550100", "purpose": "telemarketing", "channel": "call",
               "source": "agent", "evidence": "x"}),
    )
    .await
    .expect_problem(403, "forbidden");
    for body in [
        json!({"number": "+13125550100", "purpose": "Tele Marketing", "channel": "call", "source": "agent", "evidence": "x"}),
        json!({"number": "+13125550100", "purpose": "telemarketing", "channel": "fax", "source": "agent", "evidence": "x"}),
        json!({"number": "+13125550100", "purpose": "telemarketing", "channel": "call", "source": "guess", "evidence": "x"}),
        json!({"number": "+13125550100", "purpose": "telemarketing", "channel": "call", "source": "agent", "evidence": "  "}),
        json!({"number": "+13125550100", "purpose": "telemarketing", "channel": "call", "source": "agent", "evidence": "e".repeat(2_001)}),
        json!({"number": "not a number", "purpose": "telemarketing", "channel": "call", "source": "agent", "evidence": "x"}),
    ] {
        api.post("/api/v1/consents", Some(&agent.token), body.clone())
            .await
            .expect_problem(422, "validation-failed");
    }
    api.post(
        "/api/v1/consents",
        Some(&agent.token),
        json!({"number": "+13125550100", "purpose": "telemarketing", "channel": "call",
               "source": "agent", "evidence": "x", "granted_at": "2020-01-01T00:00:00Z"}),
    )
    .await
    .expect_problem(400, "bad-request");
    api.post(
        "/api/v1/dnc/check",
        Some(&agent.token),
        check(chicago.clone(), Some("DROP TABLE")),
    )
    .await
    .expect_problem(422, "validation-failed");

    // Revocation: allowed on one check, no_consent on the very next.
    let revoked = api
        .post(
            &format!("/api/v1/consents/{consent_id}/revoke"),
            Some(&compliance.token),
            json!({}),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(revoked["active"], false);
    assert!(revoked["revoked_by"].as_str().unwrap().starts_with("user:"));
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            check(chicago.clone(), Some("telemarketing"))
        )
        .await,
        vec![words(&["no_consent"])]
    );
    api.post(
        &format!("/api/v1/consents/{consent_id}/revoke"),
        Some(&agent.token),
        json!({}),
    )
    .await
    .expect_problem(422, "validation-failed");
    api.post(
        &format!("/api/v1/consents/{}/revoke", uuid::Uuid::new_v4()),
        Some(&agent.token),
        json!({}),
    )
    .await
    .expect_problem(404, "not-found");
    api.post(
        &format!("/api/v1/consents/{consent_id}/revoke"),
        Some(&supervisor.token),
        json!({}),
    )
    .await
    .expect_problem(403, "forbidden");

    // Every reason at once, in the contract's order; garbage is only invalid.
    api.post(
        "/api/v1/dnc/internal",
        Some(&agent.token),
        json!({"number": "+13035550100", "source": "portal"}),
    )
    .await
    .expect(201);
    assert_eq!(
        reasons(
            &server,
            &agent.token,
            json!({"numbers": ["+13035550100", "garbage"], "purpose": "telemarketing",
                   "at": "2024-07-15T13:30:00Z"})
        )
        .await,
        vec![
            words(&[
                "national_dnc",
                "internal_dnc",
                "no_consent",
                "outside_calling_hours"
            ]),
            words(&["invalid_number"])
        ]
    );

    // Scrubbing a call list applies the internal list, and consent when a purpose is named.
    let list = server.root().join("campaign.csv");
    std::fs::write(
        &list,
        "name,phone\nAnn,+1 212 555 0100\nBo,+1 312 555 0100\nCy,+48 601 234 567\nDee,garbage\n",
    )
    .unwrap();
    api.post(
        "/api/v1/consents",
        Some(&agent.token),
        json!({"number": "+48 601 234 567", "purpose": "telemarketing", "channel": "call",
               "source": "agent", "evidence": "recorded call 2024-07-01"}),
    )
    .await
    .expect(201);
    let out = server.root().join("campaign.ok.csv");
    let report = server.root().join("campaign.removed.csv");
    let args = |purpose: Option<&'static str>| {
        let mut a = vec![
            "dnc".to_owned(),
            "scrub".to_owned(),
            list.display().to_string(),
            "--out".to_owned(),
            out.display().to_string(),
            "--report".to_owned(),
            report.display().to_string(),
        ];
        if let Some(p) = purpose {
            a.extend(["--purpose".to_owned(), p.to_owned()]);
        }
        a
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let ran = server.cli(&refs);
        assert!(ran.status.success(), "{}", ran.describe());
    };
    run(args(None));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "name,phone\nBo,+13125550100\nCy,+48601234567\n"
    );
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "name,phone,removed_because\nAnn,+12125550100,internal_dnc\nDee,garbage,invalid_number\n"
    );
    run(args(Some("telemarketing")));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "name,phone\nCy,+48601234567\n"
    );
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        "name,phone,removed_because\nAnn,+12125550100,internal_dnc no_consent\nBo,+13125550100,no_consent\nDee,garbage,invalid_number\n"
    );
    let refused = server.cli(&[
        "dnc",
        "scrub",
        list.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--purpose",
        "Bad Purpose",
    ]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("`purpose`"),
        "{}",
        refused.describe()
    );

    // Every change is in the audit log, by id, with no number and no evidence anywhere in it.
    let log = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&compliance.token))
        .await
        .expect(200)
        .json();
    let actions: Vec<(String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let a = e["action"].as_str().unwrap();
            a.starts_with("dnc.internal") || a.starts_with("consent.")
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (
                "dnc.internal.add".to_owned(),
                format!("dnc-internal:{opt_out_id}")
            ),
            ("consent.grant".to_owned(), format!("consent:{consent_id}")),
            (
                "consent.grant".to_owned(),
                format!("consent:{}", sf_sms["id"].as_str().unwrap())
            ),
            ("consent.revoke".to_owned(), format!("consent:{consent_id}")),
            ("dnc.internal.add".to_owned(), actions[4].1.clone()),
            ("consent.grant".to_owned(), actions[5].1.clone()),
        ]
    );
    let scrubs: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "dnc.scrub")
        .collect();
    assert_eq!(scrubs.len(), 2);
    assert_eq!(scrubs[0]["details"]["removed_internal_dnc"], 1);
    assert_eq!(scrubs[1]["details"]["removed_no_consent"], 2);
    assert_eq!(scrubs[1]["details"]["purpose"], "telemarketing");
    let text = log.to_string();
    let stored = stored_text(&server).await;
    for needle in [
        "5550100",
        "555 0100",
        "555-0100",
        "5550177",
        "601234567",
        "601 234 567",
        "forms.example",
        "ticked the box",
    ] {
        assert!(!text.contains(needle), "{needle} in the audit log");
        assert!(!stored.contains(needle), "{needle} stored in clear");
    }
}
