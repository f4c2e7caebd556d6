//! Where a tensor's values live, shared by every view of them (`reshape`, `detach`).
//!
//! Two kinds: f32 values, which parameter updates change in place, and u8 pixels read as `byte · scale` (a batch
//! of images, a quarter of the bytes of f32), which never change. Each storage counts the writes made to it, as
//! PyTorch's `tensor._version` does, so that a copy derived from the values (a Linear layer's packed weight) can
//! tell whether it is still current.
//!
//! Readers take a snapshot: `values()` clones an `Arc` under a short lock and reads without holding it, so any
//! number of threads read at once, a reader never waits for another, and a thread that reads the same storage
//! twice (`x + x`) cannot deadlock. A write (`values_mut`) copies the values first only if a snapshot is still
//! being read at that moment, so a reader never sees a half-written update.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub(crate) struct Storage {
    /// Unique for the process's lifetime: with `version`, it names one state of one storage.
    id: u64,
    version: AtomicU64,
    kind: Kind,
}

enum Kind {
    F32(Mutex<Arc<Vec<f32>>>),
    U8(U8Pixels),
}

/// Pixels kept as bytes; `value = byte · scale`.
pub(crate) struct U8Pixels {
    pub bytes: Vec<u8>,
    pub scale: f32,
}

static NEXT_STORAGE: AtomicU64 = AtomicU64::new(0);

impl Storage {
    fn new(kind: Kind) -> Arc<Storage> {
        Arc::new(Storage { id: NEXT_STORAGE.fetch_add(1, Ordering::Relaxed), version: AtomicU64::new(0), kind })
    }

    pub fn f32(values: Vec<f32>) -> Arc<Storage> {
        Storage::new(Kind::F32(Mutex::new(Arc::new(values))))
    }

    pub fn u8(bytes: Vec<u8>, scale: f32) -> Arc<Storage> {
        Storage::new(Kind::U8(U8Pixels { bytes, scale }))
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn pixels(&self) -> Option<&U8Pixels> {
        match &self.kind {
            Kind::U8(p) => Some(p),
            Kind::F32(_) => None,
        }
    }

    /// The values as f32: a snapshot of f32 storage, or u8 pixels widened into a new buffer on every call.
    pub fn values(&self) -> Values {
        match &self.kind {
            Kind::F32(v) => Values(Snapshot::Shared(lock(v).clone())),
            Kind::U8(p) => Values(Snapshot::Widened(p.bytes.iter().map(|&b| b as f32 * p.scale).collect())),
        }
    }

    /// The values for a write, which counts as one new version. Panics on u8 pixels: they are inputs, never
    /// updated (widen them into a new tensor first).
    pub fn values_mut(&self) -> ValuesMut<'_> {
        let Kind::F32(v) = &self.kind else { panic!("data_mut on a tensor of u8 pixels: inputs are read-only") };
        self.version.fetch_add(1, Ordering::AcqRel);
        let mut guard = lock(v);
        Arc::make_mut(&mut guard);
        ValuesMut(guard)
    }
}

/// A panic while a write was in progress leaves values that are still valid f32s: keep using them.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A read-only view of a tensor's values (see [`crate::Tensor::data`]).
pub struct Values(Snapshot);

enum Snapshot {
    Shared(Arc<Vec<f32>>),
    Widened(Vec<f32>),
}

impl Values {
    /// The values as a vector of their own: the widened buffer itself, or a copy of the shared snapshot.
    pub fn into_vec(self) -> Vec<f32> {
        match self.0 {
            Snapshot::Shared(v) => Arc::unwrap_or_clone(v),
            Snapshot::Widened(v) => v,
        }
    }
}

impl Deref for Values {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &self.0 {
            Snapshot::Shared(v) => v,
            Snapshot::Widened(v) => v,
        }
    }
}

/// The values of a tensor, writable in place (see [`crate::Tensor::data_mut`]). Other threads reading or writing
/// the same storage wait until it is dropped.
pub struct ValuesMut<'a>(MutexGuard<'a, Arc<Vec<f32>>>);

impl Deref for ValuesMut<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for ValuesMut<'_> {
    fn deref_mut(&mut self) -> &mut [f32] {
        // Unique since `values_mut` made it so, and no snapshot can be taken while this guard holds the lock.
        Arc::make_mut(&mut self.0).as_mut_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_count_and_snapshots_stay_whole() {
        let s = Storage::f32(vec![1.0, 2.0]);
        let before = s.values();
        assert_eq!(s.version(), 0);
        s.values_mut()[0] = 5.0;
        assert_eq!(s.version(), 1);
        // The snapshot taken before the write still reads the old values; a new one reads the new.
        assert_eq!(&*before, &[1.0, 2.0]);
        assert_eq!(&*s.values(), &[5.0, 2.0]);
        let u = Storage::u8(vec![0, 255], 0.5);
        assert_eq!(&*u.values(), &[0.0, 127.5]);
        assert!(u.pixels().is_some() && s.pixels().is_none());
        assert_ne!(s.id(), u.id());
    }
}
