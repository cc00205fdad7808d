//! The invocation's deadline, from the Runtime API's
//! `Lambda-Runtime-Deadline-Ms` (epoch milliseconds), as two instants:
//!
//! - `stop_before` = deadline − margin: no migration starts after it, and
//!   the one running is stopped (`UpOptions::stop_before`);
//! - `answer_by` = deadline − a second (a tenth of the time for short
//!   invocations): whatever still runs is abandoned and the answer is sent,
//!   so a CloudFormation stack never waits for a function Lambda killed.
//!
//! The margin is `--margin` / `CHATMIGRATE_LAMBDA_MARGIN` (default 10 s),
//! at most a third of the time the invocation has.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The default margin before the deadline.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub stop_before: Instant,
    pub answer_by: Instant,
    /// What the invocation had when it started.
    pub remaining: Duration,
}

impl Deadline {
    /// From the deadline in epoch milliseconds and the configured margin.
    pub fn new(deadline_ms: u64, margin: Duration) -> Deadline {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Deadline::at(Instant::now(), deadline_ms.saturating_sub(now_ms), margin)
    }

    fn at(now: Instant, remaining_ms: u64, margin: Duration) -> Deadline {
        let remaining = Duration::from_millis(remaining_ms);
        let margin = margin.min(remaining / 3);
        let last = Duration::from_secs(1).min(remaining / 10);
        let answer_by = now + remaining.saturating_sub(last);
        Deadline {
            stop_before: (now + remaining.saturating_sub(margin)).min(answer_by),
            answer_by,
            remaining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_and_last_second() {
        let now = Instant::now();
        // 15 minutes: stop 10 s before, answer 1 s before.
        let d = Deadline::at(now, 900_000, DEFAULT_MARGIN);
        assert_eq!(d.stop_before - now, Duration::from_secs(890));
        assert_eq!(d.answer_by - now, Duration::from_secs(899));
        // 6 s: the margin is a third (2 s), the answer 0.6 s before.
        let d = Deadline::at(now, 6_000, DEFAULT_MARGIN);
        assert_eq!(d.stop_before - now, Duration::from_secs(4));
        assert_eq!(d.answer_by - now, Duration::from_millis(5_400));
        // Already past: both now.
        let d = Deadline::at(now, 0, DEFAULT_MARGIN);
        assert_eq!(d.stop_before, now);
        assert_eq!(d.answer_by, now);
        // A margin of 0: stop when the answer is due.
        let d = Deadline::at(now, 60_000, Duration::ZERO);
        assert_eq!(d.stop_before - now, Duration::from_secs(59));
    }
}
