//! Call recordings end to end, on the real binary: playback for supervisors and compliance
//! only, for a listed reason, each playback audited and fetched once; a tampered or truncated
//! recording reported and never played; retention deleting expired recordings (file, key share
//! and row) with an audited count; and agents' SIP credentials on "My account", revoked when the
//! account is disabled. The recordings are written the way the telephony edge writes them (the
//! core writer, the installation's key-encryption key, the key share in the database), without
//! placing calls: the telephony tests cover that part.

use crate::harness::{suffix, unix_now, Account, Answer, Api, Backend, Deployment, Server};
use callguard_core::audit::AuditRecord;
use callguard_core::recording::{alaw_to_linear, RecordingWriter};
use callguard_store::RecordingRow;
use serde_json::{json, Value};
use std::path::PathBuf;

both_backends!(
    only_supervisors_and_compliance_play_recordings_and_each_playback_is_audited_with_its_reason,
    a_tampered_or_truncated_recording_is_reported_and_not_played,
    retention_deletes_expired_recordings_and_audits_the_count,
    a_playback_ticket_fetched_by_many_requests_at_once_plays_exactly_once,
    an_agent_issues_sip_credentials_on_my_account_and_disabling_the_account_revokes_them,
);

/// A recording the edge would have made: `frames` 20 ms frames of a tone on the caller's leg,
/// silence on the agent's, started at `started_at`, in queue `billing`.
pub(crate) struct Fixture {
    pub id: String,
    pub interaction: String,
    pub file: PathBuf,
    /// The caller leg's A-law samples.
    pub caller: Vec<u8>,
}

pub(crate) async fn record(d: &Deployment, started_at: i64, frames: usize) -> Fixture {
    let kek = callguard_server::bootstrap::load_or_create_kek(&d.data_dir.join("keys").join("kek"))
        .expect("the installation's key-encryption key");
    let store = callguard_store::open(
        d.pg.as_ref().map(|pg| pg.url.as_str()),
        &d.data_dir.join("callguard.db"),
    )
    .await
    .expect("the installation's database");
    let id = uuid::Uuid::new_v4();
    let dir = d.data_dir.join("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{id}.cgrec"));
    let (mut w, share) =
        RecordingWriter::create(std::fs::File::create(&file).unwrap(), &kek, id).unwrap();
    let mut caller = Vec::new();
    for n in 0..frames {
        let frame: Vec<u8> = (0..160)
            .map(|i| {
                let t = (n * 160 + i) as f64 / 8000.0;
                let v = (t * 1000.0 * std::f64::consts::TAU).sin() * 8000.0;
                callguard_telephony::media::g711::linear_to_alaw(v as i16)
            })
            .collect();
        w.push(&frame, &[]).unwrap();
        caller.extend_from_slice(&frame);
    }
    w.finish().unwrap();
    let interaction = format!("call-{}", suffix());
    let row = RecordingRow {
        id: id.to_string(),
        interaction_id: interaction.clone(),
        customer_id: None,
        file_name: format!("{id}.cgrec"),
        key_share: share.0,
        started_at,
        ended_at: None,
        queue: Some("billing".into()),
    };
    let audit = || AuditRecord::new("recording.start", "user:telephony-edge");
    store.start_recording(&row, audit()).await.unwrap();
    store
        .end_recording(
            &row.id,
            started_at + (frames / 50) as i64,
            AuditRecord::new("recording.end", "user:telephony-edge"),
        )
        .await
        .unwrap();
    Fixture {
        id: id.to_string(),
        interaction,
        file,
        caller,
    }
}

/// A page form POST in `who`'s session, with a valid double-submit anti-forgery pair.
pub(crate) async fn post_form(
    api: &Api,
    who: &Account,
    path: &str,
    fields: &[(&str, &str)],
) -> Answer {
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

async fn audit_entries(api: &Api, officer: &Account) -> Vec<Value> {
    let page = api
        .get("/api/v1/audit?start=0&limit=1000", Some(&officer.token))
        .await
        .expect(200)
        .json();
    page["entries"].as_array().unwrap().clone()
}

async fn start_playback(api: &Api, who: &Account, id: &str, reason: &str, note: &str) -> Answer {
    api.post(
        &format!("/api/v1/recordings/{id}/playback"),
        Some(&who.token),
        json!({ "reason": reason, "note": note }),
    )
    .await
}

/// GET of a playback URL: status, content type and the raw bytes.
async fn fetch_audio(api: &Api, who: &Account, url: &str) -> (u16, String, Vec<u8>) {
    let resp = api
        .client
        .get(api.url(url))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, kind, resp.bytes().await.unwrap().to_vec())
}

async fn only_supervisors_and_compliance_play_recordings_and_each_playback_is_audited_with_its_reason(
    backend: Backend,
) {
    let server = Server::start(backend).await;
    let api = server.api();
    let agent = server
        .new_account(&format!("agent-{}", suffix()), "agent")
        .await;
    let admin = server.admin_session().await;
    let supervisor = server
        .new_account(&format!("sup-{}", suffix()), "supervisor")
        .await;
    let officer = server
        .new_account(&format!("officer-{}", suffix()), "compliance")
        .await;
    let rec = record(&server, unix_now() as i64, 100).await;

    // Agents and admins neither list nor play.
    for who in [&agent, &admin] {
        api.get("/api/v1/recordings", Some(&who.token))
            .await
            .expect(403);
        start_playback(&api, who, &rec.id, "complaint", "")
            .await
            .expect(403);
        api.get("/recordings", Some(&who.token)).await.expect(403);
        api.get(&format!("/recordings/{}", rec.id), Some(&who.token))
            .await
            .expect(403);
    }

    // The list: identifiers, times and the queue, never the customer or the file.
    let list = api
        .get("/api/v1/recordings", Some(&supervisor.token))
        .await
        .expect(200)
        .json();
    let rows = list["recordings"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["id"], rec.id.as_str());
    assert_eq!(rows[0]["interaction_id"], rec.interaction.as_str());
    assert_eq!(rows[0]["queue"], "billing");
    assert_eq!(rows[0]["seconds"], 2);
    assert!(rows[0].get("customer_id").is_none() && rows[0].get("file_name").is_none());
    assert!(list["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "complaint"));
    let count = |q: &str| {
        let api = api.clone();
        let token = officer.token.clone();
        let q = q.to_owned();
        async move {
            api.get(&format!("/api/v1/recordings?{q}"), Some(&token))
                .await
                .expect(200)
                .json()["recordings"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(count("queue=billing").await, 1);
    assert_eq!(count("queue=support").await, 0);
    assert_eq!(count(&format!("interaction={}", rec.interaction)).await, 1);
    assert_eq!(count("from=2999-01-01").await, 0);
    api.get("/api/v1/recordings?from=yesterday", Some(&officer.token))
        .await
        .expect(400);

    // A reason from the list is required; free text is bounded.
    start_playback(&api, &supervisor, &rec.id, "curiosity", "")
        .await
        .expect(422);
    start_playback(&api, &supervisor, &rec.id, "complaint", &"x".repeat(501))
        .await
        .expect(422);
    start_playback(&api, &supervisor, "no-such-recording", "complaint", "")
        .await
        .expect(404);

    let note = format!("caller disputes the fee {}", suffix());
    let started = start_playback(&api, &supervisor, &rec.id, "complaint", &note)
        .await
        .expect(201)
        .json();
    let url = started["url"].as_str().unwrap().to_owned();
    assert_eq!(started["duration_ms"], 2000);
    // The ticket is the supervisor's alone, and good for one fetch.
    let (status, _, _) = fetch_audio(&api, &officer, &url).await;
    assert_eq!(status, 404, "someone else's ticket");
    let (status, kind, wav) = fetch_audio(&api, &supervisor, &url).await;
    assert_eq!((status, kind.as_str()), (200, "audio/wav"));
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "stereo");
    let samples: Vec<i16> = wav[44..]
        .chunks(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let want: Vec<i16> = rec.caller.iter().map(|&c| alaw_to_linear(c)).collect();
    assert_eq!(left, want, "the caller's leg, sample for sample");
    assert!(
        right.iter().all(|&s| s == alaw_to_linear(0xD5)),
        "the agent's leg is silent"
    );
    let (status, _, _) = fetch_audio(&api, &supervisor, &url).await;
    assert_eq!(status, 404, "a ticket plays once");

    // Compliance plays too; the log names who, which recording and the reason, not the note.
    let started = start_playback(&api, &officer, &rec.id, "legal_request", "")
        .await
        .expect(201)
        .json();
    let (status, _, _) = fetch_audio(&api, &officer, started["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let log = audit_entries(&api, &officer).await;
    let plays: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "recording.playback")
        .collect();
    assert_eq!(
        plays.len(),
        2,
        "two playbacks, no entry for the refused attempts"
    );
    assert_eq!(
        plays[0]["actor"],
        format!("user:{}", supervisor.id).as_str()
    );
    assert_eq!(plays[0]["details"]["recording"], rec.id.as_str());
    assert_eq!(plays[0]["details"]["reason"], "complaint");
    assert_eq!(plays[0]["interaction"], rec.interaction.as_str());
    assert_eq!(plays[1]["actor"], format!("user:{}", officer.id).as_str());
    assert_eq!(plays[1]["details"]["reason"], "legal_request");
    assert!(
        !serde_json::to_string(&log).unwrap().contains(&note),
        "the free text stays out of the log"
    );
}

async fn a_tampered_or_truncated_recording_is_reported_and_not_played(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let officer = server
        .new_account(&format!("officer-{}", suffix()), "compliance")
        .await;
    let flipped = record(&server, unix_now() as i64, 150).await;
    let mut bytes = std::fs::read(&flipped.file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&flipped.file, &bytes).unwrap();
    let answer = start_playback(&api, &officer, &flipped.id, "dispute", "")
        .await
        .expect(422);
    assert!(
        answer.text.contains("failed authentication") && answer.text.contains("altered"),
        "{}",
        answer.text
    );

    let cut = record(&server, unix_now() as i64, 150).await;
    let bytes = std::fs::read(&cut.file).unwrap();
    std::fs::write(&cut.file, &bytes[..bytes.len() - 100]).unwrap();
    let answer = start_playback(&api, &officer, &cut.id, "dispute", "")
        .await
        .expect(422);
    assert!(answer.text.contains("truncated"), "{}", answer.text);

    // A call still being recorded is not played yet (and is not reported as damaged).
    let ongoing = record(&server, unix_now() as i64, 50).await;
    execute(
        &server,
        &format!(
            "UPDATE recordings SET ended_at = NULL WHERE id = '{}'",
            ongoing.id
        ),
    )
    .await;
    start_playback(&api, &officer, &ongoing.id, "dispute", "")
        .await
        .expect(409);

    let log = audit_entries(&api, &officer).await;
    let failed: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "recording.playback")
        .collect();
    assert_eq!(failed.len(), 2, "each refused playback is audited");
    for (e, id) in failed.iter().zip([&flipped.id, &cut.id]) {
        assert_eq!(e["outcome"], "failure");
        assert_eq!(e["details"]["damaged"], true);
        assert_eq!(e["details"]["recording"], id.as_str());
    }
}

/// The one-time ticket holds under a burst: of 16 simultaneous fetches by its owner, exactly one
/// gets the audio and the others "not found".
async fn a_playback_ticket_fetched_by_many_requests_at_once_plays_exactly_once(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let supervisor = server
        .new_account(&format!("sup-{}", suffix()), "supervisor")
        .await;
    let rec = record(&server, unix_now() as i64, 100).await;
    let started = start_playback(&api, &supervisor, &rec.id, "complaint", "")
        .await
        .expect(201)
        .json();
    let url = started["url"].as_str().unwrap().to_owned();
    let mut fetches = Vec::new();
    for _ in 0..16 {
        let (api, token, url) = (server.api(), supervisor.token.clone(), url.clone());
        fetches.push(tokio::spawn(async move {
            let resp = api
                .client
                .get(api.url(&url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            status
        }));
    }
    let mut statuses = Vec::new();
    for f in fetches {
        statuses.push(f.await.unwrap());
    }
    statuses.sort_unstable();
    let mut want = vec![200];
    want.extend([404; 15]);
    assert_eq!(statuses, want, "one fetch plays, the rest find no ticket");
}

async fn retention_deletes_expired_recordings_and_audits_the_count(backend: Backend) {
    let server = Server::start(backend).await;
    let api = server.api();
    let officer = server
        .new_account(&format!("officer-{}", suffix()), "compliance")
        .await;
    let now = unix_now() as i64;
    let old = record(&server, now - 91 * 86_400, 50).await;
    let recent = record(&server, now - 89 * 86_400, 50).await;

    let ran = server.cli(&["compliance", "retention"]);
    assert!(ran.status.success(), "{}", ran.describe());
    assert!(ran.stdout.contains(" 1 recordings"), "{}", ran.stdout);
    assert!(!old.file.exists(), "the expired file is deleted");
    assert!(recent.file.exists(), "a recording within 90 days stays");
    let list = api
        .get("/api/v1/recordings", Some(&officer.token))
        .await
        .expect(200)
        .json();
    let ids: Vec<&str> = list["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [recent.id.as_str()]);
    start_playback(&api, &officer, &old.id, "dispute", "")
        .await
        .expect(404);
    let log = audit_entries(&api, &officer).await;
    let purge = log
        .iter()
        .rev()
        .find(|e| e["action"] == "retention.purge")
        .expect("the purge is audited");
    assert_eq!(purge["details"]["recordings"], 1, "{purge}");

    // A second run finds nothing more.
    let ran = server.cli(&["compliance", "retention"]);
    assert!(ran.stdout.contains(" 0 recordings"), "{}", ran.stdout);
}

async fn an_agent_issues_sip_credentials_on_my_account_and_disabling_the_account_revokes_them(
    backend: Backend,
) {
    // A SIP edge on a port of its own, so "My account" can say where to register.
    let port = crate::harness::sip_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start_with(
        Deployment::new(backend),
        &[
            ("CALLGUARD_SIP_LISTEN", listen.as_str()),
            ("CALLGUARD_SIP_TRUNKS", "127.0.0.1"),
            ("CALLGUARD_SIP_REALM", "callguard.test"),
        ],
    )
    .await;
    let api = server.api();
    let agent = server
        .new_account(&format!("agent-{}", suffix()), "agent")
        .await;
    let officer = server
        .new_account(&format!("officer-{}", suffix()), "compliance")
        .await;
    let admin = server.admin_session().await;

    let status = api
        .get("/api/v1/me/sip-credentials", Some(&agent.token))
        .await
        .expect(200)
        .json();
    assert_eq!(status["eligible"], true);
    assert_eq!(status["issued"], false);
    assert_eq!(status["realm"], "callguard.test");
    assert_eq!(status["server"], listen.as_str());

    let issued = api
        .post("/api/v1/me/sip-credentials", Some(&agent.token), json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(issued["sip_username"], agent.username.as_str());
    let password = issued["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 20, "a long random password");
    assert_eq!(issued["server"], listen.as_str());
    let status = api
        .get("/api/v1/me/sip-credentials", Some(&agent.token))
        .await
        .expect(200);
    assert!(!status.text.contains(&password), "shown once");
    assert_eq!(status.json()["issued"], true);

    // Compliance officers have no softphone.
    api.post(
        "/api/v1/me/sip-credentials",
        Some(&officer.token),
        json!({}),
    )
    .await
    .expect(409);

    // The page shows the state and issues (rotates) after a confirmation.
    let page = api.get("/account", Some(&agent.token)).await.expect(200);
    assert!(page.text.contains("Softphone (SIP)") && page.text.contains(&listen));
    assert!(!page.text.contains(&password));
    let code = agent.totp.next_code();
    let rotated = post_form(
        &api,
        &agent,
        "/account/sip-credentials",
        &[
            ("password", agent.password.as_str()),
            ("code", code.as_str()),
        ],
    )
    .await
    .expect(200);
    assert!(rotated.text.contains("data-testid=\"sip-password\""));
    assert!(!rotated.text.contains(&password), "a new password");
    assert!(rotated.text.contains("callguard.test") && rotated.text.contains(&listen));

    let log = audit_entries(&api, &officer).await;
    let issues: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "sip.credentials.issue")
        .collect();
    assert_eq!(issues.len(), 2, "issued, then rotated");
    assert!(issues
        .iter()
        .all(|e| e["target"] == format!("user:{}", agent.id).as_str()));

    // Disabling the account deletes the credentials, not only the sessions.
    api.post(
        &format!("/api/v1/users/{}/disable", agent.id),
        Some(&admin.token),
        json!({}),
    )
    .await
    .expect(200);
    let remaining = sip_credential_rows(&server).await;
    assert_eq!(
        remaining, 0,
        "the disabled agent's SIP credentials are revoked"
    );
}

async fn execute(d: &Deployment, sql: &str) {
    match &d.pg {
        None => {
            let c = rusqlite::Connection::open(d.data_dir.join("callguard.db")).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.execute_batch(sql).unwrap();
        }
        Some(pg) => pg.connect().await.batch_execute(sql).await.unwrap(),
    }
}

async fn sip_credential_rows(d: &Deployment) -> i64 {
    match &d.pg {
        None => {
            let c = rusqlite::Connection::open(d.data_dir.join("callguard.db")).unwrap();
            c.query_row("SELECT COUNT(*) FROM sip_credentials", [], |r| r.get(0))
                .unwrap()
        }
        Some(pg) => pg
            .connect()
            .await
            .query_one("SELECT COUNT(*) FROM sip_credentials", &[])
            .await
            .unwrap()
            .get(0),
    }
}
