//! Helper threads that spin between jobs, as OpenMP's threads do, for the kernels of an inference pass.
//!
//! A rayon worker goes to sleep within microseconds of running out of work, and on a small VM it comes back late
//! and at an uneven pace, so a layer split over two rayon threads can take longer than half of it on one
//! (bench/README.md, "Figures behind the code"). So the helpers here keep spinning for [`SPIN_FOR`] after each job,
//! long enough to span the gap between one batch's layers and the next batch, then park.
//!
//! Parts are claimed from a shared counter, so a helper that is slow to wake only leaves more parts to the caller:
//! never slower than running them all on one thread. Which thread runs a part does not change its result.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a helper keeps looking for the next job before it parks.
const SPIN_FOR: Duration = Duration::from_millis(1);

/// Runs `task(0)`, …, `task(parts - 1)`, each once, on the calling thread and the helpers together; returns when
/// all are done. Where rayon has one thread (`RAYON_NUM_THREADS=1`, or inside a one-thread pool), the caller runs
/// them all.
pub(crate) fn for_each_part(parts: usize, task: &(dyn Fn(usize) + Sync)) {
    // The helpers start on the first call that can use them.
    let pool = if parts > 1 && rayon::current_num_threads() > 1 { pool() } else { None };
    let Some(pool) = pool else { return (0..parts).for_each(task) };
    // The helpers outlive this call, so they get the task's address without its lifetime: see `Job::task` for
    // why it is only ever dereferenced while `task` (and this local) is alive.
    let task_ref: &(dyn Fn(usize) + Sync) = task;
    let job = Arc::new(Job {
        task: std::ptr::from_ref(&task_ref).cast(),
        parts,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panicked: false.into(),
    });
    pool.publish(job.clone());
    job.work();
    // Every part has been claimed (our own `work` returned) and every claimed part has finished once `done`
    // reaches `parts`: from here on nobody dereferences `task`, and it may go.
    while job.done.load(Acquire) < parts {
        std::hint::spin_loop();
    }
    assert!(!job.panicked.load(Relaxed), "a kernel task panicked on a helper thread");
}

/// `task(i, chunk)` for the `i`-th `chunk_len` values of `data` (the last chunk may be shorter), as rayon's
/// `par_chunks_mut(chunk_len).enumerate().for_each(task)` but on [`for_each_part`]'s threads.
pub(crate) fn for_each_chunk_mut<T: Send>(data: &mut [T], chunk_len: usize, task: &(dyn Fn(usize, &mut [T]) + Sync)) {
    assert!(chunk_len > 0, "for_each_chunk_mut: empty chunks");
    let (len, base) = (data.len(), SharedPtr(data.as_mut_ptr()));
    for_each_part(len.div_ceil(chunk_len), &|i| {
        let start = i * chunk_len;
        // SAFETY: each part index runs once and the chunks are disjoint ranges inside `data`, which stays
        // mutably borrowed until every part has finished.
        let chunk = unsafe { std::slice::from_raw_parts_mut(base.at(start), chunk_len.min(len - start)) };
        task(i, chunk)
    });
}

/// `data`'s address, shared with the threads that each write their own chunk of it.
struct SharedPtr<T>(*mut T);
// SAFETY: only disjoint chunks are handed out, each to one thread (see `for_each_chunk_mut`).
unsafe impl<T: Send> Sync for SharedPtr<T> {}

impl<T> SharedPtr<T> {
    /// # Safety
    /// `offset` is within the slice the pointer came from.
    unsafe fn at(&self, offset: usize) -> *mut T {
        self.0.add(offset)
    }
}

struct Job {
    /// The caller's task. It lives until `for_each_part` returns, which happens only after every part index below
    /// `parts` has been claimed and has finished; it is dereferenced only to run a part just claimed, so never
    /// after it is gone. A helper may still hold the `Job` later (it looked at the pool between jobs), but then
    /// finds no part left to claim and never touches the pointer.
    task: *const (),
    parts: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
}

// SAFETY: `task` leads to a `Fn + Sync`, which may be called from any thread; the other fields are atomics.
unsafe impl Send for Job {}
// SAFETY: as for Send.
unsafe impl Sync for Job {}

impl Job {
    /// Claims and runs parts until none is left.
    fn work(&self) {
        loop {
            let part = self.next.fetch_add(1, AcqRel);
            if part >= self.parts {
                return;
            }
            // SAFETY: `task` is the address of a `&(dyn Fn(usize) + Sync)` local to `for_each_part`. `part` was
            // just claimed and has not finished, so that call is still waiting and the local, and the task it
            // borrows, are alive (see `Job::task`).
            let task = unsafe { *self.task.cast::<&(dyn Fn(usize) + Sync)>() };
            if catch_unwind(AssertUnwindSafe(|| task(part))).is_err() {
                self.panicked.store(true, Relaxed);
            }
            self.done.fetch_add(1, Release);
        }
    }
}

struct Pool {
    current: Mutex<Option<Arc<Job>>>,
    /// Bumped for each job published; helpers spin on it.
    generation: AtomicUsize,
    parked: AtomicUsize,
    wake: Condvar,
}

fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<&'static Pool>> = OnceLock::new();
    *POOL.get_or_init(|| {
        let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
        if helpers == 0 {
            return None;
        }
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            current: Mutex::new(None),
            generation: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            wake: Condvar::new(),
        }));
        for i in 0..helpers {
            let spawned = std::thread::Builder::new().name(format!("crest-spin-{i}")).spawn(move || pool.serve());
            if spawned.is_err() {
                // Without its helpers the caller runs every part itself.
                return Some(pool);
            }
        }
        Some(pool)
    })
}

impl Pool {
    fn publish(&self, job: Arc<Job>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        self.generation.fetch_add(1, SeqCst);
        if self.parked.load(SeqCst) > 0 {
            // Taking the lock orders this notify after a parking helper's check of `generation`.
            drop(self.current.lock().unwrap_or_else(|e| e.into_inner()));
            self.wake.notify_all();
        }
    }

    fn serve(&self) {
        let mut seen = self.generation.load(SeqCst);
        loop {
            seen = self.next_generation(seen);
            let job = self.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(job) = job {
                job.work();
            }
        }
    }

    /// Waits for a generation other than `seen`: spinning for SPIN_FOR, then parked.
    fn next_generation(&self, seen: usize) -> usize {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                let now = self.generation.load(Acquire);
                if now != seen {
                    return now;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN_FOR {
                break;
            }
            // Lets a rayon worker that shares this CPU run.
            std::thread::yield_now();
        }
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.parked.fetch_add(1, SeqCst);
        while self.generation.load(SeqCst) == seen {
            guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        self.parked.fetch_sub(1, SeqCst);
        self.generation.load(SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_across_calls() {
        for parts in [0, 1, 2, 7, 64] {
            for _ in 0..50 {
                let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                for_each_part(parts, &|i| {
                    hits[i].fetch_add(1, Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "{parts} parts");
            }
        }
    }

    #[test]
    fn chunks_cover_the_slice_once() {
        let mut data = vec![0usize; 103];
        for_each_chunk_mut(&mut data, 10, &|i, chunk| chunk.iter_mut().for_each(|v| *v += i + 1));
        assert_eq!(data, (0..103).map(|j| j / 10 + 1).collect::<Vec<_>>());
    }

    #[test]
    fn parks_and_wakes_for_the_next_job() {
        let sum = AtomicUsize::new(0);
        for_each_part(4, &|i| {
            sum.fetch_add(i, Relaxed);
        });
        std::thread::sleep(SPIN_FOR * 5);
        for_each_part(4, &|i| {
            sum.fetch_add(i, Relaxed);
        });
        assert_eq!(sum.load(Relaxed), 12);
    }
}
