//! Switching a supervisor's mode on a call: only their own leg, the edge told, audited once.

use super::service::*;
use crate::features::audit::service::{AuditLog, WitnessSettings};
use crate::features::presence::service::{Presence, PresenceSettings};
use crate::principal::{Actor, Principal};
use callguard_core::audit::note::NoteSigner;
use callguard_core::audit::record::user as user_ref;
use callguard_core::Role;
use callguard_store::SqliteStore;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// An edge that joins every call at once and remembers each switch it was told.
#[derive(Default)]
struct FakeEdge {
    switched: Mutex<Vec<(String, MonitorMode)>>,
    /// The legs' ends, kept so the legs stay on.
    legs: Mutex<Vec<(oneshot::Receiver<()>, oneshot::Sender<()>)>>,
}

#[async_trait::async_trait]
impl CallMonitor for FakeEdge {
    async fn join(&self, _: &str, _: &str, _: MonitorMode) -> Result<JoinedLeg, JoinError> {
        let (stop, stop_rx) = oneshot::channel();
        let (ended_tx, ended) = oneshot::channel();
        self.legs.lock().unwrap().push((stop_rx, ended_tx));
        Ok(JoinedLeg { stop, ended })
    }

    fn switch(&self, interaction: &str, mode: MonitorMode) -> Result<(), JoinError> {
        self.switched
            .lock()
            .unwrap()
            .push((interaction.to_owned(), mode));
        Ok(())
    }
}

fn person(id: &str, role: Role) -> Principal {
    let mut p = Principal::telephony_edge([127, 0, 0, 1].into());
    p.user.id = id.into();
    p.user.username = id.into();
    p.user.role = role;
    p
}

#[tokio::test]
async fn a_supervisor_switches_only_their_own_leg_and_each_switch_is_audited_once() {
    let dir = std::env::temp_dir().join(format!("callguard-monitor-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("db.sqlite")).await.unwrap());
    let audit = Arc::new(
        AuditLog::new(
            store,
            NoteSigner::generate("localhost/callguard-audit").unwrap(),
            WitnessSettings {
                dir: dir.join("witness"),
                syslog: None,
                url: None,
            },
        )
        .unwrap(),
    );
    let presence = Arc::new(Presence::new(PresenceSettings::default()));
    let ann = Actor {
        id: user_ref("ann"),
        source: None,
    };
    presence.set_ready(&ann, "ann", "ann").unwrap();
    presence.pick("billing").unwrap();
    presence.answered("ann", "call-1").unwrap();
    let monitoring = Arc::new(Monitoring::new(
        MonitorSettings::default(),
        presence,
        audit.clone(),
    ));
    let edge = Arc::new(FakeEdge::default());
    monitoring.attach(edge.clone());
    let (sue, tom) = (
        person("sue", Role::Supervisor),
        person("tom", Role::Supervisor),
    );

    // Nobody on the call yet: nothing to switch.
    assert_eq!(
        monitoring
            .switch(&sue, "call-1", MonitorMode::Whisper)
            .await,
        Err(MonitorError::NotMonitoring)
    );
    monitoring
        .start(&sue, "call-1", MonitorMode::Listen)
        .await
        .unwrap();
    // Another supervisor, or an agent, cannot switch sue's leg.
    assert_eq!(
        monitoring.switch(&tom, "call-1", MonitorMode::Barge).await,
        Err(MonitorError::NotMonitoring)
    );
    assert_eq!(
        monitoring
            .switch(&person("ann", Role::Agent), "call-1", MonitorMode::Barge)
            .await,
        Err(MonitorError::NotSupervisor)
    );
    let view = monitoring
        .switch(&sue, "call-1", MonitorMode::Whisper)
        .await
        .unwrap();
    assert_eq!(view.mode, MonitorMode::Whisper);
    // The same mode again changes nothing.
    monitoring
        .switch(&sue, "call-1", MonitorMode::Whisper)
        .await
        .unwrap();
    monitoring
        .switch(&sue, "call-1", MonitorMode::Barge)
        .await
        .unwrap();
    assert_eq!(
        *edge.switched.lock().unwrap(),
        [
            ("call-1".to_owned(), MonitorMode::Whisper),
            ("call-1".to_owned(), MonitorMode::Barge)
        ]
    );
    assert_eq!(monitoring.active()[0].mode, MonitorMode::Barge);
    assert_eq!(
        monitoring.shown_to_agent("ann"),
        Some(MonitorMode::Barge),
        "the agent's desk follows"
    );
    let (_, entries) = audit.read_page(&Actor::system(), 0, 1000).await.unwrap();
    let changes: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e["action"] == "supervisor.monitor_mode_changed")
        .map(|e| {
            (
                e["details"]["from"].as_str().unwrap().to_owned(),
                e["details"]["mode"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("listen".to_owned(), "whisper".to_owned()),
            ("whisper".to_owned(), "barge".to_owned())
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
