//! Ad-hoc GEMM throughput on a few shapes (dev aid; the criterion benches are the reference).
use rapid_core::kernels::{gemm_with, Isa, MatRef, GEMM_PACK_LEN};
use std::time::Instant;
fn main() {
    let mut pack = vec![0.0f32; GEMM_PACK_LEN];
    // (m, n, k, b transposed)
    for &(m, n, k, bt) in &[
        (256, 3000, 200, false),
        (120, 144, 1000, true),
        (120, 1000, 144, false),
        (1024, 16, 1000, true),
        (1024, 200, 784, true),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let bm = if bt { MatRef::row_major(&b, k).t() } else { MatRef::row_major(&b, n) };
        let mut c = vec![0.0f32; m * n];
        for isa in Isa::ALL {
            if !isa.available() {
                continue;
            }
            let reps = (2e9 / (2.0 * (m * n * k) as f64)).max(3.0) as usize;
            let t = Instant::now();
            for _ in 0..reps {
                gemm_with(isa, m, n, k, 1.0, MatRef::row_major(&a, k), bm, &mut c, n, &mut pack);
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{m}x{n}x{k} bt={bt} {}: {:.1} GFLOP/s",
                isa.name(),
                2.0 * (m * n * k) as f64 / s / 1e9
            );
        }
    }
}
