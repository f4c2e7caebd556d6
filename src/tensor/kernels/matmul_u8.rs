//! Matmul with a u8 left operand (provisional: converts whole).
use super::matmul::sgemm;

pub fn matmul_u8(m: usize, k: usize, n: usize, scale: f32, a: &[u8], b: &[f32], out: &mut [f32]) {
    let af: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    sgemm(m, k, n, scale, &af, k as isize, 1, b, n as isize, 1, 0.0, out, n as isize, 1);
}

#[allow(clippy::too_many_arguments)]
pub fn matmul_u8_tn(m: usize, k: usize, n: usize, scale: f32, a: &[u8], g: &[f32], out: &mut [f32], beta: f32) {
    let af: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    sgemm(k, m, n, scale, &af, 1, k as isize, g, n as isize, 1, beta, out, n as isize, 1);
}
