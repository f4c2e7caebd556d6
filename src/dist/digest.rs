//! The check that every rank read the same data before any of them trains: a rank whose node lacks a file would
//! otherwise train on other batches, and its gradients would silently mix in.

use super::Communicator;
use crate::data::Dataset;
use crate::{Error, Result};

/// What the ranks compare: sizes, shape and classes, and a CRC-32 of each split's labels and of its pixels. The
/// files' names are not compared: ranks whose images and labels agree train the same model whatever the paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataDigest([u64; FIELDS.len()]);

/// The digest's fields as the error names them; each a count (shown) or a checksum (named only).
const FIELDS: [(&str, Shown); 10] = [
    ("training images", Shown::Count),
    ("validation images", Shown::Count),
    ("classes", Shown::Count),
    ("channels", Shown::Count),
    ("image height", Shown::Count),
    ("image width", Shown::Count),
    ("class names", Shown::Checksum),
    ("training labels", Shown::Checksum),
    ("training pixels", Shown::Checksum),
    ("validation labels and pixels", Shown::Checksum),
];

#[derive(Clone, Copy, Debug)]
enum Shown {
    Count,
    Checksum,
}

fn crc(parts: &[&[u8]]) -> u64 {
    let mut crc = crc32fast::Hasher::new();
    parts.iter().for_each(|p| crc.update(p));
    u64::from(crc.finalize())
}

/// The CRC of `prefix` then every image's pixels, read through ([`Dataset::read_through`]).
fn pixels_crc(prefix: &[u8], d: &Dataset) -> u64 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(prefix);
    d.read_through(|image| crc.update(image));
    u64::from(crc.finalize())
}

fn label_bytes(d: &Dataset) -> Vec<u8> {
    d.labels.iter().flat_map(|l| l.to_le_bytes()).collect()
}

impl DataDigest {
    pub fn of(train: &Dataset, valid: &Dataset) -> DataDigest {
        let names: Vec<u8> = train.classes.iter().flat_map(|c| [c.as_bytes(), b"\n"].concat()).collect();
        DataDigest([
            train.len() as u64,
            valid.len() as u64,
            train.classes.len() as u64,
            train.channels as u64,
            train.height as u64,
            train.width as u64,
            crc(&[&names]),
            crc(&[&label_bytes(train)]),
            pixels_crc(&[], train),
            pixels_crc(&label_bytes(valid), valid),
        ])
    }

    /// How `self` (rank `rank`'s) differs from `first` (rank 0's), in words; `None` if it doesn't.
    pub fn difference(&self, first: &DataDigest, rank: usize) -> Option<String> {
        let field = (0..FIELDS.len()).find(|&i| self.0[i] != first.0[i])?;
        let (name, shown) = FIELDS[field];
        let what = match shown {
            Shown::Count => format!("{} {name} against {}", self.0[field], first.0[field]),
            Shown::Checksum => format!("other {name}"),
        };
        Some(format!("rank {rank}'s data differs from rank 0's: {what} (is a file missing or changed on one node?)"))
    }
}

/// Every rank's digest of its data (`None`: the rank stopped before it had any, on an error it prints itself),
/// compared with rank 0's before anything trains. Every rank gets the same answer, so all of them stop together,
/// each with the same line (the first rank that failed or differs), and none waits for a rank that is gone.
pub fn check_same_data(comm: &dyn Communicator, mine: Option<DataDigest>) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    // A leading 1 for a rank that has a digest, 0 for one that stopped.
    let mut fields = vec![u64::from(mine.is_some())];
    fields.extend(mine.map_or([0; FIELDS.len()], |d| d.0));
    let all = comm.all_gather(&fields);
    let ranks: Vec<Option<DataDigest>> = all
        .chunks_exact(fields.len())
        .map(|c| (c[0] == 1).then(|| DataDigest(c[1..].try_into().expect("chunks of the digest's length"))))
        .collect();
    if let Some(rank) = ranks.iter().position(Option::is_none) {
        return Err(Error::Data(format!("rank {rank} stopped before training (its own line says why)")));
    }
    let first = ranks[0].expect("checked above");
    match ranks.iter().flatten().enumerate().find_map(|(rank, d)| d.difference(&first, rank)) {
        Some(why) => Err(Error::Data(why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(pixels: Vec<u8>, labels: Vec<u32>) -> Dataset {
        Dataset {
            pixels: pixels.into(),
            labels,
            classes: vec!["3".into(), "7".into()],
            channels: 1,
            height: 1,
            width: 1,
            paths: Default::default(),
        }
    }

    #[test]
    fn a_missing_image_is_named_by_the_counts_and_other_pixels_by_name() {
        let valid = dataset(vec![9], vec![1]);
        let full = DataDigest::of(&dataset(vec![1, 2, 3], vec![0, 0, 1]), &valid);
        let short = DataDigest::of(&dataset(vec![1, 2], vec![0, 0]), &valid);
        let changed = DataDigest::of(&dataset(vec![1, 2, 4], vec![0, 0, 1]), &valid);
        assert_eq!(full.difference(&full, 1), None);
        assert_eq!(
            short.difference(&full, 1).unwrap(),
            "rank 1's data differs from rank 0's: 2 training images against 3 (is a file missing or changed on one \
             node?)"
        );
        assert_eq!(
            changed.difference(&full, 3).unwrap(),
            "rank 3's data differs from rank 0's: other training pixels (is a file missing or changed on one node?)"
        );
    }
}
