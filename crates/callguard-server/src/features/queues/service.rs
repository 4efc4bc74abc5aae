//! Live queue figures (SPEC C10, issue #12), fed by the telephony edge: a call starts waiting in
//! a queue, then is answered, abandoned (the caller hung up) or leaves (overflow to another queue,
//! the maximum wait). Per queue: waiting now, longest wait, answered and abandoned today, the
//! service level (answered within `queues.service_level_seconds` of all answered or abandoned),
//! calls per hour today and the spread of waits. Kept in this node's memory, like the calls
//! themselves (the edge runs on one node); the day is the UTC day and its figures start at zero.

use callguard_core::{now, UnixTime};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// Upper bounds (seconds) of the wait buckets; the last bucket holds every longer wait.
pub const WAIT_BUCKETS: [u64; 6] = [10, 20, 30, 60, 120, 300];

/// Settings of queue figures (`queues.*`).
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Answered within this counts toward the service level.
    pub service_level: Duration,
    /// Queues shown even before their first call (the IVR menu's and the skills' queues).
    pub known: Vec<String>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            service_level: Duration::from_secs(20),
            known: Vec::new(),
        }
    }
}

/// One queue's figures.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct QueueView {
    pub name: String,
    /// Calls waiting now.
    pub waiting: usize,
    /// Seconds the longest-waiting call has waited so far (0 when none waits).
    pub longest_wait_seconds: u64,
    /// Calls answered today (UTC).
    pub answered: u64,
    /// Calls whose caller hung up while waiting, today.
    pub abandoned: u64,
    /// Calls that left for another queue or reached the maximum wait, today.
    pub left: u64,
    /// Answered within `service_level_seconds`, today.
    pub answered_within_service_level: u64,
    pub service_level_seconds: u64,
    /// Percentage of answered or abandoned calls answered within the threshold; null before
    /// the first such call.
    pub service_level_percent: Option<f64>,
    /// Seconds answered callers waited on average today; null before the first.
    pub average_answer_wait_seconds: Option<f64>,
    /// Calls that entered the queue in each UTC hour of today, 0 to 23.
    pub calls_per_hour: Vec<u64>,
    /// Answered and abandoned calls' waits today, counted in buckets ending at 10, 20, 30, 60,
    /// 120 and 300 seconds, and a last one for longer.
    pub wait_buckets: Vec<u64>,
}

/// Every queue's figures.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct QueueBoard {
    /// RFC 3339 time the figures were taken.
    pub at: String,
    pub queues: Vec<QueueView>,
}

#[derive(Debug, Default)]
struct Figures {
    waiting: HashMap<String, Instant>,
    answered: u64,
    abandoned: u64,
    left: u64,
    within: u64,
    answer_wait_total: Duration,
    per_hour: [u64; 24],
    buckets: [u64; WAIT_BUCKETS.len() + 1],
}

#[derive(Debug, Default)]
struct Queues {
    day: i64,
    by_name: BTreeMap<String, Figures>,
}

/// Live queue figures on this node.
pub struct QueueFigures {
    settings: QueueSettings,
    queues: Mutex<Queues>,
    changes: broadcast::Sender<()>,
}

fn day_of(t: UnixTime) -> i64 {
    t.div_euclid(86_400)
}

fn hour_of(t: UnixTime) -> usize {
    usize::try_from(t.rem_euclid(86_400) / 3600).unwrap_or(0)
}

fn bucket_of(wait: Duration) -> usize {
    let s = wait.as_secs();
    WAIT_BUCKETS
        .iter()
        .position(|&b| s < b)
        .unwrap_or(WAIT_BUCKETS.len())
}

impl QueueFigures {
    #[must_use]
    pub fn new(settings: QueueSettings) -> Self {
        let mut q = Queues {
            day: day_of(now()),
            ..Queues::default()
        };
        for name in &settings.known {
            q.by_name.entry(name.clone()).or_default();
        }
        Self {
            settings,
            queues: Mutex::new(q),
            changes: broadcast::channel(256).0,
        }
    }

    /// Whether `queue` is one of this node's queues (the IVR menu's, the skills', or one that
    /// has had calls).
    #[must_use]
    pub fn exists(&self, queue: &str) -> bool {
        self.settings.known.iter().any(|q| q == queue)
            || self
                .queues
                .lock()
                .is_ok_and(|q| q.by_name.contains_key(queue))
    }

    /// Ticks whenever a figure changes (for live pages).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<()> {
        self.changes.subscribe()
    }

    /// The figures, with a new UTC day's counts started when the day changed (calls waiting
    /// carry over).
    fn lock(&self) -> MutexGuard<'_, Queues> {
        let mut q = self
            .queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let today = day_of(now());
        if q.day != today {
            q.day = today;
            for f in q.by_name.values_mut() {
                *f = Figures {
                    waiting: std::mem::take(&mut f.waiting),
                    ..Figures::default()
                };
            }
        }
        q
    }

    fn changed(&self) {
        let _ = self.changes.send(());
    }

    /// A call (its interaction) starts waiting in `queue`. Waiting again in the same queue
    /// (re-queued after an agent did not answer) keeps its first start.
    pub fn waiting(&self, queue: &str, interaction: &str) {
        {
            let mut q = self.lock();
            let f = q.by_name.entry(queue.to_owned()).or_default();
            if !f.waiting.contains_key(interaction) {
                f.waiting.insert(interaction.to_owned(), Instant::now());
                f.per_hour[hour_of(now())] += 1;
            }
        }
        self.changed();
    }

    fn finish(&self, queue: &str, interaction: &str) -> Option<(Duration, MutexGuard<'_, Queues>)> {
        let mut q = self.lock();
        let started = q.by_name.get_mut(queue)?.waiting.remove(interaction)?;
        Some((started.elapsed(), q))
    }

    /// An agent answered the call: how long the caller waited (`None` when it was not waiting).
    pub fn answered(&self, queue: &str, interaction: &str) -> Option<Duration> {
        let within = self.settings.service_level;
        let wait = {
            let (wait, mut q) = self.finish(queue, interaction)?;
            let f = q.by_name.get_mut(queue)?;
            f.answered += 1;
            f.answer_wait_total += wait;
            if wait <= within {
                f.within += 1;
            }
            f.buckets[bucket_of(wait)] += 1;
            wait
        };
        self.changed();
        Some(wait)
    }

    /// The caller hung up while waiting.
    pub fn abandoned(&self, queue: &str, interaction: &str) -> Option<Duration> {
        let wait = {
            let (wait, mut q) = self.finish(queue, interaction)?;
            let f = q.by_name.get_mut(queue)?;
            f.abandoned += 1;
            f.buckets[bucket_of(wait)] += 1;
            wait
        };
        self.changed();
        Some(wait)
    }

    /// The call left the queue unanswered for another reason (overflow to another queue, the
    /// maximum wait): counted apart, neither answered nor abandoned.
    pub fn left(&self, queue: &str, interaction: &str) -> Option<Duration> {
        let wait = {
            let (wait, mut q) = self.finish(queue, interaction)?;
            q.by_name.get_mut(queue)?.left += 1;
            wait
        };
        self.changed();
        Some(wait)
    }

    /// Every queue's figures now, by name.
    #[must_use]
    pub fn board(&self) -> QueueBoard {
        let sl = self.settings.service_level.as_secs();
        let q = self.lock();
        let queues = q
            .by_name
            .iter()
            .map(|(name, f)| {
                let settled = f.answered + f.abandoned;
                #[allow(clippy::cast_precision_loss)]
                let percent = |n: u64, of: u64| (of > 0).then(|| n as f64 * 100.0 / of as f64);
                QueueView {
                    name: name.clone(),
                    waiting: f.waiting.len(),
                    longest_wait_seconds: f
                        .waiting
                        .values()
                        .map(|t| t.elapsed().as_secs())
                        .max()
                        .unwrap_or(0),
                    answered: f.answered,
                    abandoned: f.abandoned,
                    left: f.left,
                    answered_within_service_level: f.within,
                    service_level_seconds: sl,
                    service_level_percent: percent(f.within, settled),
                    average_answer_wait_seconds: (f.answered > 0).then(|| {
                        #[allow(clippy::cast_precision_loss)]
                        let n = f.answered as f64;
                        f.answer_wait_total.as_secs_f64() / n
                    }),
                    calls_per_hour: f.per_hour.to_vec(),
                    wait_buckets: f.buckets.to_vec(),
                }
            })
            .collect();
        QueueBoard {
            at: callguard_core::rfc3339(now()),
            queues,
        }
    }
}

/// A Prometheus label value: quotes, backslashes and line ends escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The queue figures and the agents by state in Prometheus' text format, for `/metrics`.
#[must_use]
pub fn prometheus(board: &QueueBoard, agents: &BTreeMap<&'static str, usize>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&QueueView) -> f64,
    );
    let series: [Series; 6] = [
        ("callguard_queue_waiting", "gauge", "Calls waiting in the queue now.", |q| q.waiting as f64),
        ("callguard_queue_longest_wait_seconds", "gauge", "How long the longest-waiting call has waited.", |q| q.longest_wait_seconds as f64),
        ("callguard_queue_answered_today", "gauge", "Calls answered today (UTC).", |q| q.answered as f64),
        ("callguard_queue_abandoned_today", "gauge", "Calls abandoned while waiting today (UTC).", |q| q.abandoned as f64),
        ("callguard_queue_answered_within_service_level_today", "gauge", "Calls answered within the service level threshold today (UTC).", |q| q.answered_within_service_level as f64),
        ("callguard_queue_service_level_ratio", "gauge", "Answered within the threshold, of answered or abandoned, today (absent before the first).", |q| q.service_level_percent.map_or(f64::NAN, |p| p / 100.0)),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for q in &board.queues {
            let v = value(q);
            if !v.is_nan() {
                let _ = writeln!(out, "{name}{{queue=\"{}\"}} {v}", label(&q.name));
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP callguard_agents Agents signed in to the queues, by state."
    );
    let _ = writeln!(out, "# TYPE callguard_agents gauge");
    for (state, n) in agents {
        let _ = writeln!(out, "callguard_agents{{state=\"{state}\"}} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> QueueFigures {
        QueueFigures::new(QueueSettings {
            service_level: Duration::from_secs(20),
            known: vec!["billing".into(), "support".into()],
        })
    }

    fn queue<'a>(b: &'a QueueBoard, name: &str) -> &'a QueueView {
        b.queues.iter().find(|q| q.name == name).unwrap()
    }

    #[test]
    fn known_queues_show_before_their_first_call_with_no_service_level_yet() {
        let b = figures().board();
        let q = queue(&b, "support");
        assert_eq!((q.waiting, q.answered, q.abandoned), (0, 0, 0));
        assert_eq!(q.service_level_percent, None);
        assert_eq!(q.calls_per_hour.len(), 24);
        assert_eq!(q.wait_buckets.len(), WAIT_BUCKETS.len() + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_longest_wait_answered_and_abandoned_follow_the_calls() {
        let f = figures();
        f.waiting("billing", "a");
        tokio::time::sleep(Duration::from_secs(5)).await;
        f.waiting("billing", "b");
        f.waiting("billing", "c");
        tokio::time::sleep(Duration::from_secs(10)).await;
        let b = f.board();
        assert_eq!(queue(&b, "billing").waiting, 3);
        assert_eq!(queue(&b, "billing").longest_wait_seconds, 15);
        assert_eq!(queue(&b, "billing").calls_per_hour.iter().sum::<u64>(), 3);
        assert_eq!(f.answered("billing", "a"), Some(Duration::from_secs(15)));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(f.answered("billing", "b"), Some(Duration::from_secs(30)));
        assert_eq!(f.abandoned("billing", "c"), Some(Duration::from_secs(30)));
        let b = f.board();
        let q = queue(&b, "billing");
        assert_eq!((q.waiting, q.answered, q.abandoned), (0, 2, 1));
        assert_eq!(q.answered_within_service_level, 1);
        let sl = q.service_level_percent.unwrap();
        assert!((sl - 100.0 / 3.0).abs() < 1e-9, "{sl}");
        assert_eq!(q.average_answer_wait_seconds, Some(22.5));
        // 15 s in the 10-20 bucket; 30 s twice in the 30-60 bucket.
        assert_eq!(q.wait_buckets, vec![0, 1, 0, 2, 0, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_requeued_call_keeps_its_first_start_and_counts_once_per_hour() {
        let f = figures();
        f.waiting("support", "a");
        tokio::time::sleep(Duration::from_secs(8)).await;
        f.waiting("support", "a");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(f.answered("support", "a"), Some(Duration::from_secs(12)));
        assert_eq!(
            queue(&f.board(), "support")
                .calls_per_hour
                .iter()
                .sum::<u64>(),
            1
        );
    }

    #[test]
    fn a_call_that_left_counts_apart_and_reports_for_unknown_calls_change_nothing() {
        let f = figures();
        f.waiting("billing", "a");
        assert!(f.left("billing", "a").is_some());
        assert_eq!(f.answered("billing", "a"), None, "no longer waiting");
        assert_eq!(f.abandoned("nowhere", "x"), None);
        let b = f.board();
        let q = queue(&b, "billing");
        assert_eq!((q.waiting, q.answered, q.abandoned, q.left), (0, 0, 0, 1));
        assert_eq!(q.service_level_percent, None);
        assert!(!b.queues.iter().any(|q| q.name == "nowhere"));
    }

    #[test]
    fn the_metrics_name_each_queue_and_escape_odd_names() {
        let f = figures();
        f.waiting("we\"ird", "a");
        let text = prometheus(&f.board(), &BTreeMap::from([("ready", 2)]));
        assert!(
            text.contains("callguard_queue_waiting{queue=\"billing\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("callguard_queue_waiting{queue=\"we\\\"ird\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("callguard_agents{state=\"ready\"} 2"),
            "{text}"
        );
        assert!(
            !text.contains("service_level_ratio{"),
            "no ratio before the first call: {text}"
        );
    }

    #[test]
    fn waits_fall_in_the_right_buckets() {
        assert_eq!(bucket_of(Duration::from_secs(0)), 0);
        assert_eq!(bucket_of(Duration::from_secs(9)), 0);
        assert_eq!(bucket_of(Duration::from_secs(10)), 1);
        assert_eq!(bucket_of(Duration::from_secs(299)), 5);
        assert_eq!(bucket_of(Duration::from_secs(300)), 6);
    }
}
