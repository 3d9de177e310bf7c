#![allow(unsafe_code)]
use std::arch::x86_64::*;
use std::time::Instant;
#[target_feature(enable = "avx512f,fma")]
unsafe fn run(iters: usize) -> f32 {
    let mut acc = [_mm512_set1_ps(0.0); 16];
    let a = _mm512_set1_ps(0.999999);
    let b = _mm512_set1_ps(1e-7);
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for r in acc {
        s = _mm512_add_ps(s, r);
    }
    _mm512_reduce_add_ps(s)
}
fn main() {
    let iters = 50_000_000;
    let t = Instant::now();
    let x = unsafe { run(iters) };
    let s = t.elapsed().as_secs_f64();
    println!("{x} peak {:.1} GFLOP/s per core", (iters * 16 * 16 * 2) as f64 / s / 1e9);
}
