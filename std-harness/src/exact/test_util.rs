//! Helpers shared by the tests of several files: random models, all spin vectors, `E(v,h)`.

#![allow(clippy::needless_range_loop)] // index-heavy math reads better with indices

use rand_core::{RngCore, SeedableRng};

use super::Bipartite;

fn normal(rng: &mut impl RngCore) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Random `W` (V×H, N(0, sd²)) and biases (N(0, bias_sd²)) as f32.
pub(super) fn random_model(
    nv: usize,
    nh: usize,
    sd: f64,
    bias_sd: f64,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut draw = |len: usize, sd: f64| -> Vec<f32> {
        (0..len).map(|_| (sd * normal(&mut rng)) as f32).collect()
    };
    let w = draw(nv * nh, sd);
    let a = draw(nv, bias_sd);
    let b = draw(nh, bias_sd);
    (w, a, b)
}

pub(super) fn bip<'a>(
    nv: usize,
    nh: usize,
    w: &'a [f32],
    a: &'a [f32],
    b: &'a [f32],
    biases: bool,
) -> Bipartite<'a> {
    Bipartite { visible: nv, hidden: nh, w, a: biases.then_some(a), b: biases.then_some(b) }
}

/// All ±1 vectors of length `n` (as f64), in binary order.
pub(super) fn all_spins(n: usize) -> Vec<Vec<f64>> {
    (0..1u64 << n)
        .map(|k| (0..n).map(|i| if (k >> i) & 1 == 1 { 1.0 } else { -1.0 }).collect())
        .collect()
}

/// `E(v,h)` from the definition, in f64.
pub(super) fn energy(m: &Bipartite, v: &[f64], h: &[f64]) -> f64 {
    let mut e = 0.0;
    for i in 0..m.visible {
        for al in 0..m.hidden {
            e -= v[i] * f64::from(m.w[i * m.hidden + al]) * h[al];
        }
    }
    if let Some(a) = m.a {
        e -= a.iter().zip(v).map(|(&x, &y)| f64::from(x) * y).sum::<f64>();
    }
    if let Some(b) = m.b {
        e -= b.iter().zip(h).map(|(&x, &y)| f64::from(x) * y).sum::<f64>();
    }
    e
}

pub(super) const SMALL_SIZES: [(usize, usize); 4] = [(4, 3), (3, 5), (1, 4), (5, 2)];
