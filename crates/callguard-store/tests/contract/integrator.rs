//! PostgreSQL's audit integrator: entries written down without an index by many writers on
//! several nodes get contiguous indexes exactly once, whichever integrators race, and another
//! node takes over when the holder dies.

use super::*;
use callguard_core::audit::merkle::{self, Frontier};
use std::time::Duration;

/// Waits (up to a minute, polling) until `done` holds; fails naming `what` otherwise.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

/// Checks that the log is exactly `0..n` with canonical entries, stored leaves, subtrees and a
/// head that all agree; returns the entries' texts in index order.
async fn whole_log(s: &Arc<dyn Store>) -> Vec<String> {
    let head = s.audit_head().await.unwrap();
    let entries = s.audit_entries(0, head.size + 10).await.unwrap();
    assert_eq!(
        entries.len() as u64,
        head.size,
        "as many entries as the head says"
    );
    let mut f = Frontier::default();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.index, i as u64, "no gap");
        let v: serde_json::Value = serde_json::from_str(&e.text).unwrap();
        assert_eq!(v["index"], i as u64, "the entry names its own index");
        assert_eq!(
            callguard_core::audit::jcs::canonical(&v).unwrap(),
            e.text,
            "canonical"
        );
        let leaf = merkle::leaf_hash(e.text.as_bytes());
        assert_eq!(e.leaf_hash, leaf.to_vec());
        f.append(leaf);
    }
    assert_eq!(f, head, "the head is the tree of the entries");
    for index in [0, head.size / 3, head.size - 1] {
        let plan = merkle::inclusion_plan(index, head.size).unwrap();
        let flat: Vec<_> = plan.iter().flatten().copied().collect();
        let hashes = s.audit_subtrees(&flat).await.unwrap();
        let proof: Vec<_> = plan
            .iter()
            .scan(hashes.into_iter(), |it, parts| {
                let part: Vec<_> = it.by_ref().take(parts.len()).collect();
                Some(merkle::fold(&part).unwrap())
            })
            .collect();
        assert!(
            merkle::verify_inclusion(
                index,
                head.size,
                &f_leaf(&entries, index),
                &proof,
                &head.root()
            ),
            "the stored subtrees prove entry {index}"
        );
    }
    entries.into_iter().map(|e| e.text).collect()
}

fn f_leaf(entries: &[StoredEntry], index: u64) -> merkle::Hash {
    merkle::leaf_hash(entries[index as usize].text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_on_two_nodes_with_racing_integrators_leave_no_gap_and_no_duplicate() {
    let (f, url) = postgres_at().await;
    let one = f.store.clone();
    let two = open(Some(&url), std::path::Path::new("/nonexistent"))
        .await
        .unwrap();
    // Both nodes run their integrator (one holds the lock), and both also index directly, as
    // readers of the log do, so three kinds of sequencer race for the same pending entries.
    one.start_integrator("node-a");
    two.start_integrator("node-b");
    const WRITERS: usize = 32;
    const EACH: usize = 40;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut racers = Vec::new();
    for s in [one.clone(), two.clone()] {
        let stop = stop.clone();
        racers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                s.integrate().await.unwrap();
            }
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let s = if w % 2 == 0 { one.clone() } else { two.clone() };
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                // Every fifth append carries two records that must stay adjacent in order.
                let mut records = vec![a("test.write").detail("w", w as i64).detail("i", i as i64)];
                if i % 5 == 0 {
                    records.push(a("test.follow").detail("w", w as i64).detail("i", i as i64));
                }
                s.append(records).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    for r in racers {
        r.await.unwrap();
    }
    one.integrate().await.unwrap();
    let texts = whole_log(&one).await;
    let follows = WRITERS * EACH.div_ceil(5);
    assert_eq!(texts.len(), WRITERS * EACH + follows, "every entry, once");
    // Each writer's entries appear once each, in the order it wrote them, and a pair written
    // together stays together in order.
    let mut seen = std::collections::HashSet::new();
    let mut last: Vec<Option<usize>> = vec![None; WRITERS];
    for (idx, t) in texts.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        let (w, i) = (
            v["details"]["w"].as_u64().unwrap() as usize,
            v["details"]["i"].as_u64().unwrap() as usize,
        );
        assert!(
            seen.insert((v["action"].as_str().unwrap().to_owned(), w, i)),
            "{t} twice"
        );
        if v["action"] == "test.follow" {
            let before: serde_json::Value = serde_json::from_str(&texts[idx - 1]).unwrap();
            assert_eq!(
                (
                    before["action"].as_str(),
                    before["details"]["w"].as_u64(),
                    before["details"]["i"].as_u64()
                ),
                (Some("test.write"), Some(w as u64), Some(i as u64)),
                "a pair stays together"
            );
        } else {
            assert!(last[w].is_none_or(|p| p < i), "writer {w} in order");
            last[w] = Some(i);
        }
    }
    // Both nodes see the same log.
    assert_eq!(
        two.audit_head().await.unwrap(),
        one.audit_head().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_takes_over_the_integrator_when_the_holders_connection_dies() {
    let (f, url) = postgres_at().await;
    let survivor = f.store.clone();
    // The first node runs on its own runtime, so that it can die: dropping the runtime closes
    // its connections, as a killed process's close.
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (die_tx, die_rx) = tokio::sync::oneshot::channel::<()>();
    let first_url = url.clone();
    let first = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let s = open(Some(&first_url), std::path::Path::new("/nonexistent"))
                .await
                .unwrap();
            s.start_integrator("node-first");
            eventually("the first node holds the integrator", || async {
                s.integrator_state().await.unwrap().unwrap().holding
            })
            .await;
            held_tx.send(()).unwrap();
            let _ = die_rx.await;
        });
        drop(rt);
    });
    tokio::task::spawn_blocking(move || held_rx.recv().unwrap())
        .await
        .unwrap();
    survivor.start_integrator("node-second");
    survivor.append(vec![a("test.before")]).await.unwrap();
    eventually("the holder indexes an entry another node wrote", || async {
        survivor.audit_head().await.unwrap().size == 1
    })
    .await;
    let state = survivor.integrator_state().await.unwrap().unwrap();
    assert!(!state.holding, "only one node holds the integrator");
    assert_eq!(state.holder, "node-first");

    // The holder dies; the survivor's integrator takes over and indexes what is written next,
    // without anyone indexing directly.
    die_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || first.join().unwrap())
        .await
        .unwrap();
    survivor.append(vec![a("test.after")]).await.unwrap();
    eventually(
        "the survivor takes over and indexes the new entry",
        || async { survivor.audit_head().await.unwrap().size == 2 },
    )
    .await;
    eventually("the survivor reports holding", || async {
        let s = survivor.integrator_state().await.unwrap().unwrap();
        s.holding && s.holder == "node-second" && s.backlog == 0
    })
    .await;
    let texts = whole_log(&survivor).await;
    assert!(texts[0].contains("test.before") && texts[1].contains("test.after"));
}

async fn a_caller_that_needs_its_index_gets_the_index_of_its_last_entry(f: Fixture) {
    // Both backends: a caller that needs its index gets the index of its last entry.
    let s = &f.store;
    s.append(vec![a("test.one")]).await.unwrap();
    let last = s
        .append_sequenced(vec![a("test.two"), a("test.three")])
        .await
        .unwrap();
    assert_eq!(last, 2);
    let e = s.audit_entries(2, 1).await.unwrap();
    assert!(e[0].text.contains("test.three"), "{}", e[0].text);
}
both_backends!(a_caller_that_needs_its_index_gets_the_index_of_its_last_entry);

/// On PostgreSQL a change's entries are written either by the change's own statement (a
/// data-modifying `WITH`: `create_pending_user`, `delete_session`) or by a statement sent with
/// its `COMMIT` (`create_active_user`, which writes several tables). When the entries cannot
/// be written (here a trigger refuses them), the change is not committed either, nothing is
/// left half-done on the connection, and once the entries can be written again the same
/// writes go through with their entries, each once.
#[tokio::test]
async fn a_change_whose_entries_cannot_be_written_is_not_committed() {
    let f = postgres().await;
    let s = &f.store;
    crate::vault::raw(
        &f,
        "CREATE FUNCTION refuse_entries() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'entries refused for the test'; END $$; \
         CREATE TRIGGER refuse_entries BEFORE INSERT ON audit_pending \
         FOR EACH ROW EXECUTE FUNCTION refuse_entries();",
    );
    let holder = s
        .create_active_user(crate::identity::active("holder"), a("user.create"))
        .await
        .map(|u| u.id);
    assert!(holder.is_err(), "the entry is refused, so is the change");
    crate::vault::raw(&f, "DROP TRIGGER refuse_entries ON audit_pending;");
    let holder = s
        .create_active_user(crate::identity::active("holder"), a("user.create"))
        .await
        .unwrap()
        .id;
    s.add_passkey(&passkey("kept-key", &holder), a("passkey.add"))
        .await
        .unwrap();
    assert_eq!(size(s).await, 2);
    crate::vault::raw(
        &f,
        "CREATE TRIGGER refuse_entries BEFORE INSERT ON audit_pending \
         FOR EACH ROW EXECUTE FUNCTION refuse_entries();",
    );
    // More attempts than the pool has connections, so every connection meets the refusal.
    for i in 0..40 {
        let name = format!("refused-{i}");
        assert!(s
            .create_pending_user(crate::identity::pending(&name), a("user.create"))
            .await
            .is_err());
        assert!(
            s.user_by_username(&name).await.unwrap().is_none(),
            "a change without its entry is not committed"
        );
        assert!(s
            .create_active_user(
                crate::identity::active(&format!("refused-active-{i}")),
                a("user.create")
            )
            .await
            .is_err());
        assert!(s
            .user_by_username(&format!("refused-active-{i}"))
            .await
            .unwrap()
            .is_none());
        assert!(s.append(vec![a("test.alone")]).await.is_err());
    }
    assert!(s
        .add_passkey(&passkey("refused-key", &holder), a("passkey.add"))
        .await
        .is_err());
    assert!(s
        .delete_passkey(&holder, "kept-key", a("passkey.delete"))
        .await
        .is_err());
    assert_eq!(
        keys(s, &holder).await,
        vec!["kept-key".to_owned()],
        "neither the refused addition nor the refused removal took"
    );
    assert_eq!(size(s).await, 2);
    crate::vault::raw(&f, "DROP TRIGGER refuse_entries ON audit_pending;");
    for i in 0..40 {
        let name = format!("kept-{i}");
        s.create_pending_user(crate::identity::pending(&name), a("user.create"))
            .await
            .unwrap();
        assert!(s.user_by_username(&name).await.unwrap().is_some());
        s.create_active_user(
            crate::identity::active(&format!("kept-active-{i}")),
            a("user.create"),
        )
        .await
        .unwrap();
    }
    s.append(vec![a("test.alone")]).await.unwrap();
    assert!(s
        .delete_passkey(&holder, "kept-key", a("passkey.delete"))
        .await
        .unwrap());
    // Undone (no such passkey): rolled back, its entry with it.
    assert!(!s
        .delete_passkey(&holder, "kept-key", a("passkey.delete"))
        .await
        .unwrap());
    assert!(keys(s, &holder).await.is_empty());
    assert_eq!(size(s).await, 2 + 80 + 1 + 1);
    let log = whole_log(s).await;
    for (action, n) in [
        ("passkey.add", 1),
        ("passkey.delete", 1),
        ("user.create", 81),
    ] {
        assert_eq!(
            log.iter()
                .filter(|e| e.contains(&format!("\"{action}\"")))
                .count(),
            n,
            "{action}: logged once per change kept"
        );
    }
}

async fn keys(s: &Arc<dyn Store>, holder: &str) -> Vec<String> {
    s.passkeys_of(holder)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect()
}

fn passkey(id: &str, user_id: &str) -> PasskeyRecord {
    PasskeyRecord {
        id: id.into(),
        user_id: user_id.into(),
        credential_id: format!("credential-{id}"),
        name: "key".into(),
        passkey: "{}".into(),
        created_at: 1_000,
        last_used_at: None,
    }
}
