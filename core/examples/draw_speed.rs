use rand_core::SeedableRng;
use rapid_core::kernels::{force, sample_pm1_in_place, sigmoid2_in_place, tanh_in_place, Isa};
use std::time::Instant;
fn main() {
    let n = 1 << 16;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    for isa in Isa::ALL {
        if force(isa).is_err() {
            continue;
        }
        let mut x: Vec<f32> = (0..n).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
        let t = Instant::now();
        for _ in 0..300 {
            sample_pm1_in_place(&mut x, &mut rng);
            for v in x.iter_mut() {
                *v *= 0.3;
            }
        }
        let s = t.elapsed().as_secs_f64() / 300.0;
        let t2 = Instant::now();
        for _ in 0..300 {
            tanh_in_place(&mut x);
        }
        let s2 = t2.elapsed().as_secs_f64() / 300.0;
        let t3 = Instant::now();
        for _ in 0..300 {
            sigmoid2_in_place(&mut x);
        }
        let s3 = t3.elapsed().as_secs_f64() / 300.0;
        println!(
            "{}: draws {:.2} ns each, tanh {:.3} ns, sigmoid {:.3} ns",
            isa.name(),
            s / n as f64 * 1e9,
            s2 / n as f64 * 1e9,
            s3 / n as f64 * 1e9
        );
    }
}
