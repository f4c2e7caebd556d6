//! A byte budget shared by the threads that decode images, so that the memory of parallel decoding is bounded by
//! bytes rather than by a thread count: many small images decode at once, a large one waits until its buffers fit
//! in what is left, and one larger than the whole budget waits until it is alone.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

pub(crate) struct DecodeBudget {
    limit: u64,
    in_use: Mutex<u64>,
    released: Condvar,
}

/// Bytes taken from a `DecodeBudget`, given back when dropped.
pub(crate) struct Reservation<'a> {
    budget: &'a DecodeBudget,
    bytes: u64,
}

impl DecodeBudget {
    pub fn new(limit: u64) -> Self {
        Self { limit, in_use: Mutex::new(0), released: Condvar::new() }
    }

    /// A counter that no thread can leave inconsistent (each holder only adds or subtracts), so a panic elsewhere
    /// while it was held does not make it unusable.
    fn lock(&self) -> MutexGuard<'_, u64> {
        self.in_use.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `bytes` fit in what is left of the budget, or, for a request larger than the whole budget, until
    /// nothing else is reserved.
    pub fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let mut in_use = self.lock();
        while *in_use > 0 && in_use.saturating_add(bytes) > self.limit {
            in_use = self.released.wait(in_use).unwrap_or_else(PoisonError::into_inner);
        }
        *in_use += bytes;
        Reservation { budget: self, bytes }
    }

    #[cfg(test)]
    fn in_use(&self) -> u64 {
        *self.lock()
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        *self.budget.lock() -= self.bytes;
        self.budget.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn reservations_stay_within_the_budget() {
        let budget = DecodeBudget::new(100);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let budget = &budget;
                s.spawn(move || {
                    for i in 0..200u64 {
                        let _r = budget.reserve(10 + (t * 7 + i * 13) % 60);
                        assert!(budget.in_use() <= 100, "{} in use", budget.in_use());
                    }
                });
            }
        });
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn an_oversized_request_runs_alone() {
        let budget = DecodeBudget::new(100);
        let small = budget.reserve(1);
        let (done, finished) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _big = budget.reserve(150);
                done.send(budget.in_use()).unwrap();
            });
            // It waits for the 1 byte held here...
            assert!(finished.recv_timeout(Duration::from_millis(100)).is_err());
            drop(small);
            // ...and then holds all 150, over the limit, alone.
            assert_eq!(finished.recv().unwrap(), 150);
        });
        assert_eq!(budget.in_use(), 0);
    }
}
