//! A 3x3 projective matrix: flips, rotations, zooms and crops are its affine cases, a perspective warp the general one.
//!
//! As in fastai (and PyTorch's `grid_sample`), a matrix maps a point of the OUTPUT image to the point of the source
//! image it reads from: `(x, y, 1) -> (X, Y, W)`, read at `(X / W, Y / W)`. So `a * b` applies `b` to the output
//! point first, then `a`.

use std::ops::Mul;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Homography(pub [[f64; 3]; 3]);

impl Homography {
    pub const IDENTITY: Homography = Homography([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);

    /// `x' = a x + b y + c`, `y' = d x + e y + f`: fastai's `affine_mat` argument order.
    pub fn affine(a: f64, b: f64, c: f64, d: f64, e: f64, f: f64) -> Homography {
        Homography([[a, b, c], [d, e, f], [0.0, 0.0, 1.0]])
    }

    /// Scale each axis, then shift: `x' = sx x + tx`, `y' = sy y + ty`.
    pub fn scale_shift(sx: f64, tx: f64, sy: f64, ty: f64) -> Homography {
        Homography::affine(sx, 0.0, tx, 0.0, sy, ty)
    }

    /// The point `(x, y)` maps to.
    pub fn map(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.0;
        let w = m[2][0] * x + m[2][1] * y + m[2][2];
        ((m[0][0] * x + m[0][1] * y + m[0][2]) / w, (m[1][0] * x + m[1][1] * y + m[1][2]) / w)
    }

    /// The matrix that maps each of the four points `from[i]` to `to[i]`, with its bottom-right entry 1 (fastai's
    /// `find_coeffs`); `None` when three of the points are collinear.
    pub fn from_points(from: [[f64; 2]; 4], to: [[f64; 2]; 4]) -> Option<Homography> {
        // Eight equations in the eight unknown entries: X (g x + h y + 1) = a x + b y + c, likewise for Y.
        let mut rows = [[0.0f64; 9]; 8];
        for (i, ([x, y], [tx, ty])) in from.into_iter().zip(to).enumerate() {
            rows[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -tx * x, -tx * y, tx];
            rows[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -ty * x, -ty * y, ty];
        }
        let h = solve8(rows)?;
        Some(Homography([[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]]))
    }

    /// The entries as f32, row by row, for the sampler's inner loop.
    pub fn to_f32(&self) -> [[f32; 3]; 3] {
        self.0.map(|row| row.map(|v| v as f32))
    }
}

impl Mul for Homography {
    type Output = Homography;

    fn mul(self, rhs: Homography) -> Homography {
        let (a, b) = (&self.0, &rhs.0);
        Homography(std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum())))
    }
}

/// Gaussian elimination with partial pivoting on an 8x8 system given as augmented rows.
fn solve8(mut rows: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| rows[i][col].abs().total_cmp(&rows[j][col].abs()))?;
        if rows[pivot][col].abs() < 1e-12 {
            return None;
        }
        rows.swap(col, pivot);
        let pivot_row = rows[col];
        for (r, row) in rows.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    Some(std::array::from_fn(|i| rows[i][8] / rows[i][i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12
    }

    #[test]
    fn product_applies_the_right_factor_first() {
        let shift = Homography::scale_shift(1.0, 2.0, 1.0, 0.0);
        let double = Homography::scale_shift(2.0, 0.0, 2.0, 0.0);
        // (1, 1) doubled is (2, 2), then shifted (4, 2); shifted first it would be (3, 1) then (6, 2).
        assert_eq!((shift * double).map(1.0, 1.0), (4.0, 2.0));
        assert_eq!((double * shift).map(1.0, 1.0), (6.0, 2.0));
        assert_eq!((Homography::IDENTITY * shift), shift);
    }

    #[test]
    fn four_points_give_the_perspective_that_maps_them() {
        let square = [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]];
        let quad = [[-1.1, -0.9], [-0.8, 1.2], [1.0, -1.0], [0.9, 1.1]];
        let h = Homography::from_points(square, quad).expect("no three points collinear");
        for (p, q) in square.iter().zip(&quad) {
            assert!(close(h.map(p[0], p[1]), (q[0], q[1])), "{p:?} -> {:?}, not {q:?}", h.map(p[0], p[1]));
        }
        assert_ne!(h.0[2][0], 0.0, "a true perspective, not an affine map");
        let same = Homography::from_points(square, square).expect("the identity");
        assert!(close(same.map(0.5, -0.25), (0.5, -0.25)));
        let collinear = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 0.0]];
        assert_eq!(Homography::from_points(collinear, square), None);
    }
}
