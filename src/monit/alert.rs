//! Alerts as pure decisions: which state changes become alerts, and when one may run. One
//! alert runs at a time; the others wait in a short queue; a token bucket keeps a crash loop
//! from running the alert program without end (what is dropped is counted and told to the
//! next alert that runs).

use std::collections::VecDeque;

/// Most alerts in a burst.
pub const BURST: u32 = 10;
/// One more alert allowed per this many ms once the burst is spent.
pub const REFILL_MS: u64 = 6000;
/// Most alerts waiting while one runs.
pub const QUEUE: usize = 8;
/// An alert still running after this long is killed (its whole process group).
pub const TIMEOUT_MS: u64 = 10_000;

/// The events, as the alert program's first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Started,
    Died,
    Backoff,
    GaveUp,
    Unhealthy,
    Healthy,
    Limit,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Started => "started",
            Event::Died => "died",
            Event::Backoff => "backoff",
            Event::GaveUp => "gave-up",
            Event::Unhealthy => "unhealthy",
            Event::Healthy => "healthy",
            Event::Limit => "limit",
        }
    }
}

/// One alert to run: the event and its details in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub event: Event,
    pub details: String,
    /// Alerts dropped (rate limit or full queue) before this one.
    pub dropped: u32,
}

/// The alert state of one service.
#[derive(Clone, Debug)]
pub struct Alerts {
    tokens: u32,
    /// Monotonic ms of the last refill.
    refilled_at: u64,
    queue: VecDeque<Alert>,
    dropped: u32,
    /// The running alert: (pid, kill deadline).
    pub running: Option<(i32, u64)>,
}

impl Alerts {
    pub fn new(now_ms: u64) -> Alerts {
        Alerts {
            tokens: BURST,
            refilled_at: now_ms,
            queue: VecDeque::new(),
            dropped: 0,
            running: None,
        }
    }

    fn refill(&mut self, now: u64) {
        let n = now.saturating_sub(self.refilled_at) / REFILL_MS;
        if n > 0 {
            self.tokens = (self.tokens as u64 + n).min(BURST as u64) as u32;
            self.refilled_at += n * REFILL_MS;
        }
        if self.tokens == BURST {
            self.refilled_at = now;
        }
    }

    /// A state change happened: queue its alert unless over the rate or the queue is full.
    pub fn push(&mut self, event: Event, details: String, now: u64) {
        self.refill(now);
        if self.tokens == 0 || self.queue.len() >= QUEUE {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.tokens -= 1;
        self.queue.push_back(Alert {
            event,
            details,
            dropped: std::mem::take(&mut self.dropped),
        });
    }

    /// The next alert to start now, if none is running.
    pub fn take_next(&mut self) -> Option<Alert> {
        if self.running.is_some() {
            return None;
        }
        self.queue.pop_front()
    }

    /// The running alert's kill deadline.
    pub fn deadline(&self) -> Option<u64> {
        self.running.map(|(_, t)| t)
    }

    pub fn idle(&self) -> bool {
        self.running.is_none() && self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_at_a_time_in_order() {
        let mut a = Alerts::new(0);
        a.push(Event::Died, "exit 1".into(), 0);
        a.push(Event::Started, "pid 5".into(), 1);
        let first = a.take_next().unwrap();
        assert_eq!(
            (first.event, first.details.as_str()),
            (Event::Died, "exit 1")
        );
        a.running = Some((100, TIMEOUT_MS));
        assert_eq!(a.take_next(), None, "one at a time");
        a.running = None;
        assert_eq!(a.take_next().unwrap().event, Event::Started);
        assert!(a.idle());
    }

    #[test]
    fn crash_loop_is_rate_limited() {
        let mut a = Alerts::new(0);
        a.running = Some((1, u64::MAX));
        let mut t = 0;
        for _ in 0..30 {
            a.push(Event::Died, String::new(), t);
            t += 100;
        }
        assert_eq!(a.queue.len(), QUEUE, "the queue is bounded");
        a.running = None;
        let mut ran = 0;
        while a.take_next().is_some() {
            ran += 1;
        }
        assert_eq!(ran, QUEUE);
        // 8 of the burst of 10 were spent; what found the queue full was dropped and is
        // told to the next alert.
        a.push(Event::Died, String::new(), t);
        let n = a.take_next().unwrap();
        assert_eq!(n.dropped, 22);
        a.push(Event::Died, String::new(), t);
        assert!(a.take_next().is_some());
        // Without tokens, alerts are dropped until the bucket refills.
        a.push(Event::Died, String::new(), t + 10);
        assert_eq!(a.take_next(), None);
        a.push(Event::Started, String::new(), t + REFILL_MS + 10);
        let n = a.take_next().unwrap();
        assert_eq!((n.event, n.dropped), (Event::Started, 1));
    }
}
