//! The call flow after answering: the recording notice (always, and nothing is taken from the
//! caller before it has played), the IVR menu, self-verification by keypad through the same
//! interactions service and attempt limits as the desk, then "please hold" and the comfort tone
//! until the caller hangs up. Key presses are never logged.

use super::session::{Command, Heard};
use crate::media::prompts::Prompt;
use callguard_core::Secret;
use callguard_server::error::Error;
use callguard_server::features::interactions::model::VerifyRequest;
use callguard_server::features::interactions::service::Interactions;
use callguard_server::principal::Principal;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The IVR menu: a key chooses a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu(pub BTreeMap<char, String>);

impl Menu {
    /// Parses `1=billing,2=support`; an error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut m = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, q) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not key=queue, like 1=billing"))?;
            let mut chars = k.trim().chars();
            let key = match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' => c,
                _ => return Err(format!("{k:?} is not one keypad key 0-9 or *")),
            };
            let q = q.trim();
            if q.is_empty()
                || q.len() > 64
                || !q
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!("queue name {q:?}: 1 to 64 letters, digits, - or _"));
            }
            if m.insert(key, q.to_owned()).is_some() {
                return Err(format!("key {key} is listed twice"));
            }
        }
        if m.is_empty() {
            return Err("the menu needs at least one choice".into());
        }
        Ok(Self(m))
    }
}

impl Default for Menu {
    /// The choices the built-in menu prompt speaks.
    fn default() -> Self {
        Self(BTreeMap::from([
            ('1', "billing".into()),
            ('2', "support".into()),
        ]))
    }
}

/// How long the caller has to start keying after a prompt, and between two keys.
const FIRST_KEY: Duration = Duration::from_secs(10);
const NEXT_KEY: Duration = Duration::from_secs(5);
/// At most this many keys before `#` (a PESEL is 11, a portal code 8).
const MAX_KEYS: usize = 20;

/// The caller's line as the flow sees it: prompts out, key presses in.
pub struct Line {
    pub commands: mpsc::UnboundedSender<Command>,
    pub heard: mpsc::UnboundedReceiver<Heard>,
}

/// What the caller keyed in answer to a prompt.
enum Entry {
    Keys(Secret<String>),
    Nothing,
}

impl Line {
    fn send(&self, c: Command) -> Option<()> {
        self.commands.send(c).ok()
    }

    /// Plays `prompts` to the end; keys pressed meanwhile are dropped.
    pub(super) async fn play_through(&mut self, prompts: Vec<Prompt>) -> Option<()> {
        self.send(Command::Play(prompts))?;
        loop {
            match self.heard.recv().await? {
                Heard::Played => return Some(()),
                Heard::Key(_) => {}
            }
        }
    }

    /// Plays `prompts` and collects keys: the first key stops the prompt; `single` takes one
    /// key, otherwise keys until `#` (not included). Nothing when the caller keys nothing.
    async fn ask(&mut self, prompts: Vec<Prompt>, single: bool) -> Option<Entry> {
        self.send(Command::Play(prompts))?;
        let mut keys = String::new();
        let mut playing = true;
        let mut deadline: Option<Instant> = None;
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, self.heard.recv()).await {
                    Ok(h) => h?,
                    Err(_) => break,
                },
                None => self.heard.recv().await?,
            };
            match next {
                Heard::Played => {
                    playing = false;
                    deadline.get_or_insert(Instant::now() + FIRST_KEY);
                }
                Heard::Key(k) => {
                    if playing {
                        self.send(Command::Interrupt)?;
                        playing = false;
                    }
                    deadline = Some(Instant::now() + NEXT_KEY);
                    let c = k.as_char();
                    if c == '#' && !single {
                        break;
                    }
                    keys.push(c);
                    if single || keys.len() > MAX_KEYS {
                        break;
                    }
                }
            }
        }
        if playing {
            self.send(Command::Interrupt)?;
        }
        Some(if keys.is_empty() {
            Entry::Nothing
        } else {
            Entry::Keys(Secret::new(keys))
        })
    }
}

/// Where a call got to in the IVR.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reached {
    pub queue: Option<String>,
    pub level: i64,
}

/// The services and settings the flow uses.
pub struct Flow<'a> {
    pub menu: &'a Menu,
    pub interactions: &'a Interactions,
    pub edge: &'a Principal,
    pub interaction: &'a str,
}

/// Makes the verification request of what the caller keyed.
type Ask = fn(Secret<String>) -> VerifyRequest;

/// Whether a verification step passed; `None` when no more attempts are allowed.
async fn attempt(f: &Flow<'_>, req: VerifyRequest, level: i64) -> Option<bool> {
    match f.interactions.verify(f.edge, f.interaction, req).await {
        Ok(r) => Some(r.level >= level),
        Err(Error::VerificationLocked(_)) | Err(Error::State(_)) => None,
        Err(e) => {
            tracing::warn!(error = %e, "keypad verification failed to run");
            None
        }
    }
}

impl Flow<'_> {
    /// Runs the flow until the caller is holding; `recording` is called once the notice played.
    pub async fn run(&self, line: &mut Line, recording: impl FnOnce()) -> Option<Reached> {
        let mut reached = Reached::default();
        line.play_through(vec![Prompt::RecordingNotice]).await?;
        recording();
        for _ in 0..2 {
            if let Entry::Keys(k) = line.ask(vec![Prompt::IvrMenu], true).await? {
                let key = k.expose().chars().next().unwrap_or(' ');
                reached.queue = self.menu.0.get(&key).cloned();
                if reached.queue.is_some() {
                    break;
                }
            }
        }
        reached.level = self.verify(line).await?;
        line.send(Command::Play(vec![Prompt::PleaseHold]))?;
        line.send(Command::Hold)?;
        Some(reached)
    }

    /// Level 1 by national id, then level 2 by portal code; stops at the first step skipped.
    async fn verify(&self, line: &mut Line) -> Option<i64> {
        let mut level = 0;
        let steps: [(Prompt, Ask); 2] = [
            (Prompt::EnterCustomerId, |value| VerifyRequest::NationalId {
                value,
            }),
            (Prompt::EnterPortalCode, |code| VerifyRequest::PortalCode {
                code,
            }),
        ];
        for (i, (prompt, request)) in steps.into_iter().enumerate() {
            let want = i as i64 + 1;
            loop {
                let Entry::Keys(keys) = line.ask(vec![prompt], false).await? else {
                    return Some(level);
                };
                match attempt(self, request(keys), want).await {
                    Some(true) => {
                        level = want;
                        break;
                    }
                    Some(false) => line.play_through(vec![Prompt::NoMatch]).await?,
                    None => return Some(level),
                }
            }
        }
        line.play_through(vec![Prompt::Verified]).await?;
        Some(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Key;

    #[test]
    fn a_menu_maps_keys_to_queues_and_bad_ones_say_why() {
        let m = Menu::parse("1=billing, 2=tech_support").unwrap();
        assert_eq!(m.0.get(&'2').map(String::as_str), Some("tech_support"));
        assert!(Menu::parse("12=billing")
            .unwrap_err()
            .contains("one keypad key"));
        assert!(Menu::parse("1=billing,1=sales")
            .unwrap_err()
            .contains("twice"));
        assert!(Menu::parse("1=bad queue")
            .unwrap_err()
            .contains("queue name"));
        assert!(Menu::parse("").is_err());
        assert_eq!(Menu::default().0.len(), 2);
    }

    fn key(c: char) -> Heard {
        Heard::Key(Key::from_char(c).unwrap())
    }

    #[tokio::test]
    async fn keys_are_collected_until_hash_and_the_first_key_stops_the_prompt() {
        let (tx, mut commands) = mpsc::unbounded_channel();
        let (heard_tx, heard) = mpsc::unbounded_channel();
        let mut line = Line {
            commands: tx,
            heard,
        };
        for h in [key('4'), key('2'), key('#'), key('9')] {
            heard_tx.send(h).unwrap();
        }
        let Some(Entry::Keys(k)) = line.ask(vec![Prompt::EnterCustomerId], false).await else {
            panic!("keys expected");
        };
        assert_eq!(k.expose(), "42");
        assert!(matches!(commands.recv().await, Some(Command::Play(_))));
        assert!(matches!(commands.recv().await, Some(Command::Interrupt)));
        let Some(Entry::Keys(k)) = line.ask(vec![Prompt::IvrMenu], true).await else {
            panic!("a key expected");
        };
        assert_eq!(
            k.expose(),
            "9",
            "the key pressed after # belongs to the next question"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_who_keys_nothing_moves_on_after_the_timeout() {
        let (tx, _commands) = mpsc::unbounded_channel();
        let (heard_tx, heard) = mpsc::unbounded_channel();
        let mut line = Line {
            commands: tx,
            heard,
        };
        heard_tx.send(Heard::Played).unwrap();
        assert!(matches!(
            line.ask(vec![Prompt::IvrMenu], true).await,
            Some(Entry::Nothing)
        ));
    }
}
