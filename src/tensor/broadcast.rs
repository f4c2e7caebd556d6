//! NumPy broadcasting: shapes align from the right; an axis of size 1 stretches to match.

/// The shape two operands broadcast to. Panics naming both shapes when they don't fit.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let nd = a.len().max(b.len());
    (0..nd)
        .map(|i| {
            let da = if i + a.len() >= nd { a[i + a.len() - nd] } else { 1 };
            let db = if i + b.len() >= nd { b[i + b.len() - nd] } else { 1 };
            match (da, db) {
                _ if da == db => da,
                (1, d) | (d, 1) => d,
                _ => panic!("shapes {a:?} and {b:?} cannot be broadcast together"),
            }
        })
        .collect()
}

/// For each element of `out` (row-major), the offset of the element of an operand of `shape` it reads.
pub fn broadcast_offsets(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let nd = out.len();
    let mut strides = vec![0usize; nd];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        let oi = i + nd - shape.len();
        if shape[i] != 1 {
            strides[oi] = s;
        }
        s *= shape[i];
    }
    strided_offsets(out, &strides)
}

/// Offsets visited when walking `out` in row-major order through storage with the given strides.
pub(crate) fn strided_offsets(out: &[usize], strides: &[usize]) -> Vec<usize> {
    let nd = out.len();
    let total: usize = out.iter().product();
    let mut offsets = Vec::with_capacity(total);
    let mut idx = vec![0usize; nd];
    let mut off = 0usize;
    for _ in 0..total {
        offsets.push(off);
        for d in (0..nd).rev() {
            idx[d] += 1;
            off += strides[d];
            if idx[d] < out[d] {
                break;
            }
            off -= strides[d] * idx[d];
            idx[d] = 0;
        }
    }
    offsets
}

/// How an operand of `shape` sits inside `out`, for the loops that avoid per-element offsets.
pub(crate) enum Layout {
    /// Same number of elements: read element i.
    Same,
    /// One value, read for every element.
    Scalar,
    /// A trailing block repeated: read element i % len (bias over a batch).
    Suffix(usize),
    /// Anything else: precomputed offsets.
    General(Vec<usize>),
}

pub(crate) fn layout(shape: &[usize], out: &[usize]) -> Layout {
    let n: usize = shape.iter().product();
    let total: usize = out.iter().product();
    let trimmed: &[usize] = {
        let first = shape.iter().position(|&d| d != 1).unwrap_or(shape.len());
        &shape[first..]
    };
    if n == total {
        Layout::Same
    } else if n == 1 {
        Layout::Scalar
    } else if out.ends_with(trimmed) {
        Layout::Suffix(n)
    } else {
        Layout::General(broadcast_offsets(shape, out))
    }
}

impl Layout {
    pub(crate) fn at(&self, i: usize) -> usize {
        match self {
            Layout::Same => i,
            Layout::Scalar => 0,
            Layout::Suffix(n) => i % n,
            Layout::General(o) => o[i],
        }
    }
}

/// The gradient of a broadcast operand: `g` (shaped like the output) summed back onto `shape`; an operand shaped
/// like the output takes `g` as it is.
pub fn reduce_to_shape(g: Vec<f32>, shape: &[usize], out: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    match layout(shape, out) {
        Layout::Same => g,
        Layout::Scalar => vec![g.iter().sum()],
        Layout::Suffix(n) => {
            let mut r = vec![0.0; n];
            for row in g.chunks_exact(n) {
                r.iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
            r
        }
        Layout::General(offsets) => {
            let mut r = vec![0.0; n];
            for (gi, o) in g.iter().zip(offsets) {
                r[o] += gi;
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_broadcast_from_the_right() {
        assert_eq!(broadcast_shape(&[4, 1, 3], &[5, 1]), vec![4, 5, 3]);
        assert_eq!(broadcast_shape(&[], &[2, 2]), vec![2, 2]);
    }

    #[test]
    #[should_panic(expected = "shapes [2, 3] and [4] cannot be broadcast")]
    fn mismatch_names_both_shapes() {
        broadcast_shape(&[2, 3], &[4]);
    }

    #[test]
    fn offsets_and_reduction_agree() {
        assert_eq!(broadcast_offsets(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_offsets(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        let g = [1., 2., 3., 4., 5., 6.];
        assert_eq!(reduce_to_shape(g.to_vec(), &[2, 1], &[2, 3]), vec![6., 15.]);
        assert_eq!(reduce_to_shape(g.to_vec(), &[1, 3], &[2, 3]), vec![5., 7., 9.]);
        assert_eq!(reduce_to_shape(g.to_vec(), &[], &[2, 3]), vec![21.]);
    }
}
