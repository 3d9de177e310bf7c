//! Small dense linear algebra in `f64`: the singular values of `W` (the paper's
//! Fig. 3).
//!
//! The singular values of a `V × H` matrix are the square roots of the eigenvalues of the
//! smaller Gram matrix (`W Wᵀ` when `V ≤ H`, else `Wᵀ W`). The eigenvalues come from the cyclic
//! Jacobi method, which is accurate to a few ulps of the largest eigenvalue; the Gram matrix
//! squares the condition number, so singular values below about `1e-8·σ_max` are noise.

/// Singular values of the row-major `rows × cols` matrix `w`, largest first.
///
/// # Panics
/// If `w.len() != rows·cols`.
pub fn singular_values(w: &[f32], rows: usize, cols: usize) -> Vec<f64> {
    assert_eq!(w.len(), rows * cols, "matrix size");
    let n = rows.min(cols);
    // Gram matrix of the smaller side.
    let mut g = vec![0.0f64; n * n];
    for p in 0..n {
        for q in p..n {
            let s: f64 = if rows <= cols {
                (0..cols).map(|j| w[p * cols + j] as f64 * w[q * cols + j] as f64).sum()
            } else {
                (0..rows).map(|i| w[i * cols + p] as f64 * w[i * cols + q] as f64).sum()
            };
            g[p * n + q] = s;
            g[q * n + p] = s;
        }
    }
    let mut ev = symmetric_eigenvalues(&mut g, n);
    ev.sort_by(|a, b| b.total_cmp(a));
    ev.into_iter().map(|x| x.max(0.0).sqrt()).collect()
}

/// Eigenvalues of the symmetric `n × n` matrix `a` (destroyed), by cyclic Jacobi rotations.
pub fn symmetric_eigenvalues(a: &mut [f64], n: usize) -> Vec<f64> {
    assert_eq!(a.len(), n * n, "matrix size");
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    if scale == 0.0 {
        return vec![0.0; n];
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q].powi(2))
            .sum();
        if off.sqrt() <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| a[i * n + i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_values_of_known_matrices() {
        // diag(3, 2) padded with a zero column: σ = 3, 2.
        let w = [3.0f32, 0.0, 0.0, 0.0, -2.0, 0.0];
        let s = singular_values(&w, 2, 3);
        assert!((s[0] - 3.0).abs() < 1e-12 && (s[1] - 2.0).abs() < 1e-12, "{s:?}");
        // The transpose has the same singular values.
        let wt = [3.0f32, 0.0, 0.0, -2.0, 0.0, 0.0];
        assert_eq!(singular_values(&wt, 3, 2).len(), 2);
        assert!((singular_values(&wt, 3, 2)[0] - 3.0).abs() < 1e-12);
        // Rank one: u vᵀ with |u| = √2, |v| = √3 has σ = √6 and zeros.
        let w = [1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0];
        let s = singular_values(&w, 2, 3);
        assert!((s[0] - 6f64.sqrt()).abs() < 1e-12 && s[1].abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn sum_of_squares_is_the_frobenius_norm() {
        let w: Vec<f32> = (0..7 * 11).map(|i| ((i * 37 % 17) as f32 - 8.0) / 5.0).collect();
        let s = singular_values(&w, 7, 11);
        let fro: f64 = w.iter().map(|&x| (x as f64).powi(2)).sum();
        let ss: f64 = s.iter().map(|x| x * x).sum();
        assert!((fro - ss).abs() < 1e-9 * fro);
        assert!(s.windows(2).all(|p| p[0] >= p[1]));
    }
}
