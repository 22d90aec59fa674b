//! The one matrix product the encoder needs, `C += A · Wᵀ`, where both `A`
//! and `W` are row-major: every output is a dot product of two contiguous
//! rows. Eight independent accumulators let the compiler vectorise the
//! loop without reassociating floating-point sums.

/// Dot product of two equally long slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `c[rows, outputs] += a[rows, inner] · weight[outputs, inner]ᵀ`.
pub fn sgemm_a_bt(a: &[f32], rows: usize, inner: usize, weight: &[f32], outputs: usize, c: &mut [f32]) {
    for i in 0..rows {
        let a_row = &a[i * inner..(i + 1) * inner];
        let c_row = &mut c[i * outputs..(i + 1) * outputs];
        for (j, out) in c_row.iter_mut().enumerate() {
            *out += dot(a_row, &weight[j * inner..(j + 1) * inner]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_product() {
        let (rows, inner, outputs) = (3, 13, 5);
        let a: Vec<f32> = (0..rows * inner).map(|v| (v as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..outputs * inner).map(|v| (v as f32 * 0.11).cos()).collect();
        let mut c = vec![1.0_f32; rows * outputs];
        sgemm_a_bt(&a, rows, inner, &w, outputs, &mut c);
        for i in 0..rows {
            for j in 0..outputs {
                let expected: f32 = 1.0
                    + (0..inner)
                        .map(|p| a[i * inner + p] * w[j * inner + p])
                        .sum::<f32>();
                assert!((c[i * outputs + j] - expected).abs() < 1e-4);
            }
        }
    }
}
