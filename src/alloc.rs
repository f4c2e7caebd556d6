//! Memory for tensors: a global allocator that puts every buffer from 1 KiB to 32 MiB on a 64-byte cache-line
//! boundary, and freed buffers kept for the next batch (by glibc up to 32 MiB, above it by this allocator).
//!
//! glibc aligns to 16 bytes, so three in four AVX-512 loads from a tensor straddle two cache lines and cost two
//! loads (bench/README.md, "Figures behind the code", has what that cost). The `crest` binary does both; a
//! program using the library can do the same:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: crest::alloc::CacheAligned = crest::alloc::CacheAligned;
//!
//! fn main() {
//!     crest::alloc::keep_freed_memory();
//! }
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;

pub struct CacheAligned;

/// Small blocks (strings, shapes, graph nodes) keep malloc's fast path.
const MIN_SIZE: usize = 1024;
/// Nor are blocks from here up aligned: glibc maps them on their own (the threshold `keep_freed_memory` sets) and
/// grows them in place with mremap, which an over-aligned block cannot use: a growing pixel buffer would be copied
/// on every doubling, each copy kept for reuse.
const MAX_SIZE: usize = 32 << 20;
const LINE: usize = 64;

fn widened(layout: Layout) -> Layout {
    if (MIN_SIZE..MAX_SIZE).contains(&layout.size()) && layout.align() < LINE {
        // A size that fits `layout` also fits this alignment: sizes are not rounded, only the start moves.
        Layout::from_size_align(layout.size(), LINE).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every block is allocated and freed through `System` with the same widened layout (the choice depends
// only on size and alignment, and `realloc` moves a block whose choice changes), and a widened layout is at
// least as aligned and as large as the one asked for. A block parked in `BIG_BLOCKS` is one `System` allocated
// with that exact layout and nobody else holds: it is handed out again for that layout only, or freed.
unsafe impl GlobalAlloc for CacheAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(ptr) = BIG_BLOCKS.take(layout) {
            return ptr;
        }
        System.alloc(widened(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Some(ptr) = BIG_BLOCKS.take(layout) {
            std::ptr::write_bytes(ptr, 0, layout.size());
            return ptr;
        }
        System.alloc_zeroed(widened(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !BIG_BLOCKS.park(ptr, layout) {
            System.dealloc(ptr, widened(layout))
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        if widened(new_layout).align() == widened(layout).align() {
            return System.realloc(ptr, widened(layout), new_size);
        }
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

/// Freed blocks of [`MAX_SIZE`] and more, kept for the next request of the same layout once
/// [`keep_freed_memory`] has been called. glibc maps each of these afresh and the kernel zeroes every page of
/// it again on first touch: a 128×128 batch's first activations are 64 MiB each, and faulting them in took as
/// long as computing them. A training step asks for the same sizes as the last one, so an exact match is enough;
/// a request that matches none means the sizes changed (a last, smaller batch; validation), and every parked
/// block is released before it, so parking never holds memory that the old pattern no longer uses.
struct BigBlocks {
    enabled: AtomicBool,
    /// (address, size, alignment) of each parked block; address 0 marks a free slot.
    slots: Mutex<[(usize, usize, usize); BIG_SLOTS]>,
}

/// A training step's large tensors (its stem's activations and their gradients) fit with room to spare.
const BIG_SLOTS: usize = 32;
/// Nor is more than this parked at once: a freed data set of gigabytes goes back to the system at once.
const BIG_PARKED_MAX: usize = 2 << 30;

static BIG_BLOCKS: BigBlocks = BigBlocks { enabled: AtomicBool::new(false), slots: Mutex::new([(0, 0, 0); BIG_SLOTS]) };

impl BigBlocks {
    fn applies(&self, layout: Layout) -> bool {
        layout.size() >= MAX_SIZE && self.enabled.load(Relaxed)
    }

    /// A parked block of exactly `layout`, if there is one; if there is none, every parked block is freed.
    fn take(&self, layout: Layout) -> Option<*mut u8> {
        if !self.applies(layout) {
            return None;
        }
        // Nothing inside panics, so the lock is never poisoned; were it, the slots are still consistent.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.iter_mut().find(|s| s.0 != 0 && (s.1, s.2) == (layout.size(), layout.align())) {
            let ptr = std::ptr::with_exposed_provenance_mut(slot.0);
            *slot = (0, 0, 0);
            return Some(ptr);
        }
        for slot in slots.iter_mut().filter(|s| s.0 != 0) {
            // SAFETY: a parked block was allocated by `System` with this layout (big layouts are never widened)
            // and is owned by the slot alone, which is cleared here.
            unsafe {
                System.dealloc(
                    std::ptr::with_exposed_provenance_mut(slot.0),
                    Layout::from_size_align_unchecked(slot.1, slot.2),
                )
            };
            *slot = (0, 0, 0);
        }
        None
    }

    /// Keeps `ptr` for a later [`take`](Self::take), if `layout` qualifies and there is room.
    fn park(&self, ptr: *mut u8, layout: Layout) -> bool {
        if !self.applies(layout) {
            return false;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let parked: usize = slots.iter().filter(|s| s.0 != 0).map(|s| s.1).sum();
        if parked.saturating_add(layout.size()) > BIG_PARKED_MAX {
            return false;
        }
        let Some(slot) = slots.iter_mut().find(|s| s.0 == 0) else { return false };
        *slot = (ptr.expose_provenance(), layout.size(), layout.align());
        true
    }
}

/// By default glibc returns big freed buffers (a batch's activations are megabytes) to the kernel
/// and page-faults fresh zeroed pages in for the next batch, which made the kernel's page handling
/// as costly as a CNN's own loops. Serve buffers up to glibc's 32 MiB limit (where alignment stops) from
/// the heap and never trim it, so each batch reuses the last one's memory.
///
/// Larger buffers [`CacheAligned`] keeps itself (see `BigBlocks`).
///
/// Call it first thing in `main`; the glibc part does nothing off glibc.
pub fn keep_freed_memory() {
    BIG_BLOCKS.enabled.store(true, Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc_keep_freed_memory();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn glibc_keep_freed_memory() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: mallopt only tunes allocator thresholds, under glibc's own lock; a rejected value leaves the
    // default in place.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, MAX_SIZE as i32);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Whether a buffer of `bytes` could be had now, asked before allocating a size a user chose (an allocation that
/// fails aborts the process): no more than the machine's memory and swap (Linux), and granted by the allocator,
/// which also applies `ulimit -v`. The probe is never touched, so it costs no memory.
pub fn can_allocate(bytes: usize) -> bool {
    if total_memory().is_some_and(|total| bytes > total) {
        return false;
    }
    Vec::<u8>::new().try_reserve_exact(bytes).is_ok()
}

/// Memory and swap in bytes, from /proc/meminfo (Linux; None elsewhere).
fn total_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<usize> {
        let line = info.lines().find_map(|l| l.strip_prefix(key))?;
        line.trim().trim_end_matches("kB").trim().parse().ok()
    };
    Some(kib("MemTotal:")?.saturating_add(kib("SwapTotal:").unwrap_or(0)).saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_the_machine_cannot_be_allocated() {
        assert!(can_allocate(1 << 20));
        assert!(!can_allocate(usize::MAX));
        if let Some(total) = total_memory() {
            assert!(!can_allocate(total + 1));
        }
    }

    /// The tests that allocate through `CacheAligned` share `BIG_BLOCKS`, so they take turns.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    #[test]
    #[cfg_attr(miri, ignore)] // Miri would allocate and write the blocks' hundreds of megabytes for real.
    fn freed_big_blocks_are_reused_for_their_own_layout_only() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        BIG_BLOCKS.enabled.store(true, Relaxed);
        let a = CacheAligned;
        let big = Layout::from_size_align(MAX_SIZE + 4096, 4).unwrap();
        let other = Layout::from_size_align(MAX_SIZE + 8192, 4).unwrap();
        let parked = || BIG_BLOCKS.slots.lock().unwrap().iter().filter(|s| s.0 != 0).count();
        // SAFETY: each block is used within its layout and freed once with it.
        unsafe {
            let p = a.alloc(big);
            std::ptr::write_bytes(p, 7, big.size());
            a.dealloc(p, big);
            assert_eq!(parked(), 1);
            // The same layout gets the same block back, zeroed when asked.
            let q = a.alloc_zeroed(big);
            assert_eq!(q, p);
            assert!((0..big.size()).step_by(4093).all(|i| *q.add(i) == 0));
            assert_eq!(parked(), 0);
            a.dealloc(q, big);
            // Another size releases what is parked, and is not served from it.
            let r = a.alloc(other);
            assert_eq!(parked(), 0);
            a.dealloc(r, other);
            assert_eq!(parked(), 1);
            // More than BIG_PARKED_MAX is not kept.
            let huge = Layout::from_size_align(BIG_PARKED_MAX + 1, 4).unwrap();
            let h = a.alloc(huge);
            assert_eq!(parked(), 0);
            a.dealloc(h, huge);
            assert_eq!(parked(), 0);
            BIG_BLOCKS.take(Layout::from_size_align(MAX_SIZE, 1).unwrap());
        }
        BIG_BLOCKS.enabled.store(false, Relaxed);
    }

    #[test]
    fn large_blocks_are_line_aligned_and_realloc_keeps_contents() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let a = CacheAligned;
        // SAFETY: each block is used within its layout and freed once with the layout it has at that point.
        unsafe {
            let small = Layout::from_size_align(100, 4).unwrap();
            let p = a.alloc(small);
            std::ptr::write_bytes(p, 7, 100);
            // Grows across the threshold (moved to an aligned block), then within it, then shrinks back.
            let p = a.realloc(p, small, 5000);
            assert_eq!(p as usize % LINE, 0);
            assert!((0..100).all(|i| *p.add(i) == 7));
            std::ptr::write_bytes(p, 9, 5000);
            let big = Layout::from_size_align(5000, 4).unwrap();
            let p = a.realloc(p, big, 9000);
            assert_eq!(p as usize % LINE, 0);
            assert!((0..5000).all(|i| *p.add(i) == 9));
            // Past MAX_SIZE the block leaves the aligned range (moved again), and comes back into it.
            let p = a.realloc(p, Layout::from_size_align(9000, 4).unwrap(), MAX_SIZE + 1);
            assert!((0..5000).all(|i| *p.add(i) == 9));
            let p = a.realloc(p, Layout::from_size_align(MAX_SIZE + 1, 4).unwrap(), 9000);
            assert!((p as usize).is_multiple_of(LINE) && (0..5000).all(|i| *p.add(i) == 9));
            let p = a.realloc(p, Layout::from_size_align(9000, 4).unwrap(), 50);
            assert!((0..50).all(|i| *p.add(i) == 9));
            a.dealloc(p, Layout::from_size_align(50, 4).unwrap());
            let z = a.alloc_zeroed(big);
            assert!((z as usize).is_multiple_of(LINE) && (0..5000).all(|i| *z.add(i) == 0));
            a.dealloc(z, big);
        }
    }
}
