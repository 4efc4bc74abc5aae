//! What other nodes change, heard at once: one connection per node LISTENs on the channels the
//! migrations' triggers NOTIFY, and every notification becomes a [`Change`] for the node's
//! services. After a lost connection it reconnects and reports a change (anything may have
//! happened while it was not listening).

use super::PostgresStore;
use crate::Change;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

const SESSIONS_CHANNEL: &str = "callguard_sessions";
const REGISTRY_CHANNEL: &str = "callguard_dnc";

impl PostgresStore {
    /// Starts the listener on first use; later calls share it.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<Change> {
        let rx = self.changes.subscribe();
        if !self
            .listening
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(listen(self.config.clone(), self.changes.clone()));
            }
        }
        rx
    }
}

async fn listen(config: tokio_postgres::Config, changes: broadcast::Sender<Change>) {
    loop {
        match listen_once(&config, &changes).await {
            Ok(()) => {
                tracing::warn!("the PostgreSQL change listener's connection closed; reconnecting")
            }
            Err(e) => {
                tracing::warn!(error = %e, "the PostgreSQL change listener failed; reconnecting")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    changes: &broadcast::Sender<Change>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (heard, mut hearing) = tokio::sync::mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(n) = message? {
                let _ = heard.send(n.channel().to_owned());
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });
    client
        .batch_execute(&format!(
            "LISTEN {SESSIONS_CHANNEL}; LISTEN {REGISTRY_CHANNEL}"
        ))
        .await?;
    // Whatever happened before this connection listened is unknown: look again.
    let _ = changes.send(Change::Sessions);
    let _ = changes.send(Change::Registry);
    while let Some(channel) = hearing.recv().await {
        if channel == SESSIONS_CHANNEL {
            let _ = changes.send(Change::Sessions);
        } else if channel == REGISTRY_CHANNEL {
            let _ = changes.send(Change::Registry);
        }
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
