use rapid_core::kernels::{gemm_with, Isa, MatRef, GEMM_PACK_LEN};
use std::time::Instant;
fn main() {
    let (m, n, k) = (256, 3000, 200);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut c = vec![0.0f32; m * n];
    let mut pack = vec![0.0f32; GEMM_PACK_LEN];
    for isa in Isa::ALL {
        if !isa.available() {
            continue;
        }
        let reps = 20;
        let t = Instant::now();
        for _ in 0..reps {
            gemm_with(
                isa,
                m,
                n,
                k,
                1.0,
                MatRef::row_major(&a, k),
                MatRef::row_major(&b, n),
                &mut c,
                n,
                &mut pack,
            );
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!("{}: {:.1} GFLOP/s", isa.name(), 2.0 * (m * n * k) as f64 / s / 1e9);
    }
}
