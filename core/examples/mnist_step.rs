use rand_core::{RngCore, SeedableRng};
use rapid_core::model::{Dims, RaModel};
use rapid_core::train::{pid_gradient, pid_scratch_len, NegativePhase};
use std::time::Instant;
fn main() {
    let d = Dims::new(784, 3000, 200);
    let b = 8000;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let xi: Vec<f32> =
        (0..d.xi_len()).map(|_| (rng.next_u32() >> 8) as f32 / 16777216.0 * 2.0 - 1.0).collect();
    let batch: Vec<f32> =
        (0..b * d.visible).map(|_| if rng.next_u32() & 1 == 1 { 1.0 } else { -1.0 }).collect();
    let mut grad = vec![0.0; d.xi_len()];
    let mut scratch = vec![0.0; pid_scratch_len(d)];
    let m = RaModel::new(&xi[..], d);
    for neg in [NegativePhase::Patterns, NegativePhase::Gibbs { steps: 1 }] {
        let t = Instant::now();
        pid_gradient(&m, &batch, 0, neg, &mut grad, &mut scratch, &mut rng);
        let s = t.elapsed().as_secs_f64();
        let flops = 2.0
            * (b + 200) as f64
            * (2.0 * (d.visible * 200) as f64 + 3.0 * (d.hidden * 200) as f64);
        println!("{neg:?}: {s:.3} s, {:.1} GFLOP/s", flops / s / 1e9);
    }
}
