//! Backoff policy, written once: jittered exponential delays for polling the
//! migration lock, retrying a migration that hit lock_timeout (55P03), and
//! racing other runners on CREATE DATABASE. (The resume-aware error
//! classification for Aurora will live here too.)

use std::time::Duration;

/// Jittered exponential backoff: each delay is drawn from [d/2, d), and d
/// doubles up to `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff { next: first, cap }
    }

    /// The delay before the next attempt.
    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.cap);
        d / 2 + jitter(d / 2)
    }
}

/// A pseudo-random duration below `max`, without a random-number dependency
/// (clock nanoseconds mixed with the process id, enough to spread runners).
pub fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let ms = max.as_millis().max(1) as u32;
    Duration::from_millis(u64::from((nanos ^ std::process::id().wrapping_mul(2654435761)) % ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        for want in [100, 200, 400, 400] {
            let d = b.delay().as_millis() as u64;
            assert!(d >= want / 2 && d < want, "{d} not in [{}, {want})", want / 2);
        }
    }
}
