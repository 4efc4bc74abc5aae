//! The calls this node's SIP edge carries, by interaction, each with a channel to its media
//! glue; and the agent's two actions on a keypad payment of such a call: take it by keypad
//! (the capture starts, the call goes secure) and cancel the capture.
//!
//! The edge attaches a call once it is bridged to an agent ([`LiveCalls::attach`]); the
//! [`LiveLine`] it gets detaches the call when dropped. Nothing here holds a digit: the digits
//! travel from the edge's media straight into the keypad capture.

use crate::error::Error;
use crate::features::keypad::model::CaptureView;
use crate::features::keypad::service::Keypad;
use crate::features::payments::service::Payments;
use crate::principal::Principal;
use callguard_core::role::Role;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What the server tells the edge carrying a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveCommand {
    /// The keypad capture of this payment has started: go secure and feed it the caller's keys.
    Secure { payment_id: String },
    /// The agent cancelled the capture of this payment: leave secure mode.
    Cancelled { payment_id: String },
}

/// The live calls of this node, by interaction.
pub struct LiveCalls {
    payments: Arc<Payments>,
    keypad: Arc<Keypad>,
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<LiveCommand>>>,
}

/// A call attached by the edge: its commands; detached when dropped.
pub struct LiveLine {
    calls: Arc<LiveCalls>,
    interaction: String,
    sender: mpsc::UnboundedSender<LiveCommand>,
    /// What the server asks of this call.
    pub commands: mpsc::UnboundedReceiver<LiveCommand>,
}

impl LiveLine {
    /// The keypad capture service the call's keys go to.
    #[must_use]
    pub fn keypad(&self) -> &Arc<Keypad> {
        &self.calls.keypad
    }

    /// The call's interaction.
    #[must_use]
    pub fn interaction(&self) -> &str {
        &self.interaction
    }
}

impl Drop for LiveLine {
    fn drop(&mut self) {
        if let Ok(mut m) = self.calls.calls.lock() {
            if m.get(&self.interaction)
                .is_some_and(|s| s.same_channel(&self.sender))
            {
                m.remove(&self.interaction);
            }
        }
    }
}

impl LiveCalls {
    #[must_use]
    pub fn new(payments: Arc<Payments>, keypad: Arc<Keypad>) -> Self {
        Self {
            payments,
            keypad,
            calls: Mutex::default(),
        }
    }

    /// The edge carries the call of `interaction` (bridged to its agent) from now on.
    #[must_use]
    pub fn attach(self: &Arc<Self>, interaction: &str) -> LiveLine {
        let (sender, commands) = mpsc::unbounded_channel();
        if let Ok(mut m) = self.calls.lock() {
            m.insert(interaction.to_owned(), sender.clone());
        }
        LiveLine {
            calls: self.clone(),
            interaction: interaction.to_owned(),
            sender,
            commands,
        }
    }

    /// Whether this node's edge carries the call of `interaction`.
    #[must_use]
    pub fn carries(&self, interaction: &str) -> bool {
        self.line_of(interaction).is_some()
    }

    fn line_of(&self, interaction: &str) -> Option<mpsc::UnboundedSender<LiveCommand>> {
        self.calls
            .lock()
            .ok()
            .and_then(|m| m.get(interaction).cloned())
            .filter(|s| !s.is_closed())
    }

    /// The agent's own keypad payment `payment_id`, for an action on it.
    async fn own_payment(
        &self,
        p: &Principal,
        payment_id: &str,
    ) -> Result<callguard_store::PaymentRow, Error> {
        if p.user.role != Role::Agent {
            return Err(Error::Forbidden);
        }
        let row = self.payments.visible(p, payment_id).await?;
        if row.agent_id != p.user.id {
            return Err(Error::NotFound);
        }
        if row.method != "keypad" {
            return Err(Error::State("this payment is paid by link, not by keypad"));
        }
        Ok(row)
    }

    /// The agent takes their keypad payment `payment_id` on the call it was asked in: the
    /// capture starts and the call's edge goes secure. Refused (409) when this node carries no
    /// live call of the payment's interaction, or a capture runs already.
    pub async fn take_by_keypad(
        &self,
        p: &Principal,
        payment_id: &str,
    ) -> Result<CaptureView, Error> {
        let row = self.own_payment(p, payment_id).await?;
        let Some(line) = self.line_of(&row.interaction_id) else {
            return Err(Error::State(
                "the caller is not on a phone line of this server: keypad payments in a call need the call bridged here",
            ));
        };
        let actor = p.actor();
        let view = self.keypad.start(&actor, payment_id).await?;
        let told = line.send(LiveCommand::Secure {
            payment_id: payment_id.to_owned(),
        });
        if told.is_err() {
            // The call ended in between: the capture ends with it.
            let _ = self.keypad.cancel(&actor, payment_id).await;
            return Err(Error::State("the call has ended"));
        }
        Ok(view)
    }

    /// The agent cancels the running capture of their payment: the payment is cancelled and
    /// the call leaves secure mode.
    pub async fn cancel(&self, p: &Principal, payment_id: &str) -> Result<CaptureView, Error> {
        let row = self.own_payment(p, payment_id).await?;
        let view = self.keypad.cancel(&p.actor(), payment_id).await?;
        if let Some(line) = self.line_of(&row.interaction_id) {
            let _ = line.send(LiveCommand::Cancelled {
                payment_id: payment_id.to_owned(),
            });
        }
        Ok(view)
    }
}
