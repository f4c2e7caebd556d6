//! A 128-bit hash of a stream of fields: std's SipHash run twice, from two different starts.
//!
//! 128 bits because it stands for a whole list (a folder's files, in the image cache's key) or names one real file
//! among millions (the folder walk's files seen): two different inputs giving the same hash by chance, about 2^-128
//! for one comparison and 2^-89 among ten million files, is out of the question. It resists no deliberate forgery,
//! and need not: whoever could craft the files of a data folder could as well write its cache. SipHash's output may
//! change with the Rust release that builds crest; a cache key made by another build then no longer matches, which
//! costs a rebuild of the cache, never a wrong one.

use std::hash::{DefaultHasher, Hasher};

pub(crate) struct Hash128([DefaultHasher; 2]);

impl Hash128 {
    pub fn new() -> Self {
        let mut second = DefaultHasher::new();
        second.write_u8(1);
        Hash128([DefaultHasher::new(), second])
    }

    /// Adds `bytes`, after their length, so that fields cannot run into each other.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.u64(bytes.len() as u64);
        self.0.iter_mut().for_each(|h| h.write(bytes));
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.iter_mut().for_each(|h| h.write(&v.to_le_bytes()));
        self
    }

    pub fn finish(&self) -> u128 {
        (self.0[0].finish() as u128) << 64 | self.0[1].finish() as u128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_kept_apart() {
        let hash = |fields: &[&[u8]]| fields.iter().fold(&mut Hash128::new(), |h, f| h.bytes(f)).finish();
        assert_eq!(hash(&[b"ab", b"c"]), hash(&[b"ab", b"c"]));
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_ne!(hash(&[b"ab"]), hash(&[b"ab", b""]));
        let h = hash(&[b"x"]);
        assert_ne!(h >> 64, h & u64::MAX as u128);
    }
}
