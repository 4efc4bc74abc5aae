//! The wallboard's charts, drawn on the server as SVG geometry (no script, no third party):
//! today's calls per hour and the spread of waits. Pure arithmetic; the template draws it.

use super::service::{QueueBoard, WAIT_BUCKETS};

/// One bar of a bar chart, in the chart's own coordinates (viewBox 0 0 WIDTH HEIGHT).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub label: String,
    pub value: u64,
}

/// A bar chart ready to draw, with a sentence that says what it shows (for screen readers).
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub summary: String,
    pub bars: Vec<Bar>,
    pub max: u64,
    /// Every how many bars a label is printed under the axis.
    pub label_every: usize,
}

pub const WIDTH: u32 = 480;
pub const HEIGHT: u32 = 160;
/// Room under the bars for their labels.
pub const AXIS: u32 = 20;

fn bars(values: &[(String, u64)]) -> (Vec<Bar>, u64) {
    let max = values.iter().map(|(_, v)| *v).max().unwrap_or(0);
    let n = u32::try_from(values.len().max(1)).unwrap_or(1);
    let slot = WIDTH / n;
    let room = u64::from(HEIGHT - AXIS - 4);
    let bars = values
        .iter()
        .zip(0u32..)
        .map(|((label, value), i)| {
            let h = (value * room).checked_div(max).unwrap_or(0);
            let h = u32::try_from(h).unwrap_or(0);
            Bar {
                x: i * slot + slot / 8,
                y: HEIGHT - AXIS - h,
                width: slot - slot / 4,
                height: h,
                label: label.clone(),
                value: *value,
            }
        })
        .collect();
    (bars, max)
}

/// Calls that entered any queue in each UTC hour of today.
#[must_use]
pub fn calls_per_hour(board: &QueueBoard) -> BarChart {
    let mut per_hour = [0u64; 24];
    for q in &board.queues {
        for (h, n) in q.calls_per_hour.iter().enumerate().take(24) {
            per_hour[h] += n;
        }
    }
    let values: Vec<(String, u64)> = per_hour
        .iter()
        .enumerate()
        .map(|(h, n)| (format!("{h:02}"), *n))
        .collect();
    let total: u64 = per_hour.iter().sum();
    let busiest = per_hour
        .iter()
        .enumerate()
        .max_by_key(|(h, n)| (**n, std::cmp::Reverse(*h)))
        .filter(|(_, n)| **n > 0)
        .map(|(h, n)| format!(" The busiest hour is {h:02}:00 with {n}."))
        .unwrap_or_default();
    let (bars, max) = bars(&values);
    BarChart {
        title: "Calls per hour today (UTC)".into(),
        summary: format!("{total} calls entered the queues today.{busiest}"),
        bars,
        max,
        label_every: 3,
    }
}

/// Answered and abandoned calls' waits today, by bucket.
#[must_use]
pub fn waits(board: &QueueBoard) -> BarChart {
    let mut counts = vec![0u64; WAIT_BUCKETS.len() + 1];
    for q in &board.queues {
        for (i, n) in q.wait_buckets.iter().enumerate() {
            if let Some(c) = counts.get_mut(i) {
                *c += n;
            }
        }
    }
    let mut from = 0;
    let mut values = Vec::new();
    for (i, n) in counts.iter().enumerate() {
        let label = match WAIT_BUCKETS.get(i) {
            Some(&to) => {
                let l = format!("{from}–{to}s");
                from = to;
                l
            }
            None => format!("{from}s+"),
        };
        values.push((label, *n));
    }
    let total: u64 = counts.iter().sum();
    let (bars, max) = bars(&values);
    BarChart {
        title: "Waits today".into(),
        summary: format!(
            "{total} calls answered or abandoned today; {} of them within 20 seconds.",
            counts.iter().take(2).sum::<u64>()
        ),
        bars,
        max,
        label_every: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::super::service::QueueView;
    use super::*;

    fn board(per_hour: Vec<u64>, waits: Vec<u64>) -> QueueBoard {
        QueueBoard {
            at: String::new(),
            queues: vec![QueueView {
                name: "billing".into(),
                waiting: 0,
                longest_wait_seconds: 0,
                answered: 0,
                abandoned: 0,
                left: 0,
                answered_within_service_level: 0,
                service_level_seconds: 20,
                service_level_percent: None,
                average_answer_wait_seconds: None,
                calls_per_hour: per_hour,
                wait_buckets: waits,
            }],
        }
    }

    #[test]
    fn the_tallest_bar_fills_the_chart_and_the_others_scale_with_it() {
        let mut hours = vec![0; 24];
        hours[9] = 4;
        hours[10] = 2;
        let c = calls_per_hour(&board(hours, vec![0; 7]));
        assert_eq!(c.bars.len(), 24);
        assert_eq!(c.max, 4);
        let full = HEIGHT - AXIS - 4;
        assert_eq!(c.bars[9].height, full);
        assert_eq!(c.bars[10].height, full / 2);
        assert_eq!(c.bars[0].height, 0);
        assert_eq!(c.bars[9].y + c.bars[9].height, HEIGHT - AXIS);
        assert!(
            c.summary.contains("6 calls") && c.summary.contains("09:00"),
            "{}",
            c.summary
        );
    }

    #[test]
    fn an_empty_day_draws_flat_bars_and_says_so() {
        let c = waits(&board(vec![0; 24], vec![0; 7]));
        assert!(c.bars.iter().all(|b| b.height == 0));
        assert_eq!(c.bars.len(), 7);
        assert_eq!(c.bars[0].label, "0–10s");
        assert_eq!(c.bars[6].label, "300s+");
        assert!(c.summary.starts_with("0 calls"));
    }
}
