//! The dispatched kernels at every level this CPU has, against definitions and against each
//! other. Tests that loop over levels print the levels they ran and a `SKIP` line for each
//! one the CPU lacks (see them with `--nocapture`).

use super::bulk::{sample_pm1_with, Lanes};
use super::isa::levels_to_test;
use super::*;
extern crate std;
use crate::num::sigmoid;
use crate::test_util::uniform;
use rand_core::SeedableRng;
use rand_pcg::Pcg64;
use std::vec;
use std::vec::Vec;

/// `C += α·A·B` in f64 from the definition, with the bound's `Σ|α a b|`.
#[allow(clippy::too_many_arguments)]
fn reference(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c0: &[f32],
    ldc: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut want = vec![0.0; m * n];
    let mut mag = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            let mut g = 0.0f64;
            for p in 0..k {
                let t = alpha as f64 * a.at(i, p) as f64 * b.at(p, j) as f64;
                s += t;
                g += t.abs();
            }
            want[i * n + j] = c0[i * ldc + j] as f64 + s;
            mag[i * n + j] = g + (c0[i * ldc + j] as f64).abs();
        }
    }
    (want, mag)
}

fn check_level(isa: Isa, seed: u64) {
    let mut rng = Pcg64::seed_from_u64(seed);
    // Exactly what the level needs: empty at the scalar level.
    let mut pack = vec![0.0; gemm_pack_len(isa)];
    let sizes = [0usize, 1, 2, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 121];
    let mut cases = 0;
    for (t, &m) in sizes.iter().enumerate() {
        for &n in &sizes[(t * 5) % 7..] {
            let k = sizes[(t * 3 + n) % sizes.len()] + (t % 3) * 130;
            for layout in 0..4 {
                let (ta, tb) = (layout & 1 == 1, layout & 2 == 2);
                let a_data: Vec<f32> = (0..m * k + 3).map(|_| uniform(&mut rng)).collect();
                let b_data: Vec<f32> = (0..k * n + 3).map(|_| uniform(&mut rng)).collect();
                let a = if ta {
                    MatRef::row_major(&a_data, m.max(1)).t()
                } else {
                    MatRef::row_major(&a_data, k.max(1))
                };
                let b = if tb {
                    MatRef::row_major(&b_data, k.max(1)).t()
                } else {
                    MatRef::row_major(&b_data, n.max(1))
                };
                let ldc = n + (layout % 3);
                let c0: Vec<f32> = (0..m * ldc + 2).map(|_| uniform(&mut rng)).collect();
                let alpha = 0.75 - layout as f32 * 0.5;
                let mut c = c0.clone();
                gemm_with(
                    isa,
                    GemmDims { m, n, k },
                    alpha,
                    a,
                    b,
                    MatMut { data: &mut c, rs: ldc },
                    &mut pack,
                );
                let (want, mag) = reference(m, n, k, alpha, a, b, &c0, ldc);
                let bound = |i: usize| 2.0 * (k + 1) as f64 * 2f64.powi(-24) * mag[i] + 1e-30;
                for i in 0..m {
                    for j in 0..n {
                        let got = c[i * ldc + j] as f64;
                        let w = want[i * n + j];
                        assert!(
                            (got - w).abs() <= bound(i * n + j),
                            "{isa:?} m{m} n{n} k{k} layout{layout} ({i},{j}): {got} vs {w}"
                        );
                    }
                    // Padding between rows is untouched.
                    for j in n..ldc {
                        assert_eq!(c[i * ldc + j], c0[i * ldc + j]);
                    }
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 100);
}

#[test]
#[cfg_attr(miri, ignore = "thousands of f64 reference products: too slow under Miri")]
fn scalar_gemm_matches_the_definition() {
    check_level(Isa::Scalar, 41);
}

#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn simd_gemm_matches_the_definition_on_edge_sizes() {
    for isa in levels_to_test("simd_gemm_edge_sizes", &[Isa::Avx2, Isa::Avx512]) {
        check_level(isa, 42 + isa as u64);
    }
}

/// Thin products with both operands contiguous along `k` (the dot-product kernels on the
/// SIMD levels), with `k` tails and several depth blocks.
#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn thin_k_contiguous_products_match_the_definition() {
    let levels = levels_to_test("thin_k_contiguous", &Isa::ALL);
    let mut rng = Pcg64::seed_from_u64(44);
    let mut pack = vec![0.0; GEMM_PACK_LEN];
    for &(m, n, k) in &[(37, 9, 1031), (64, 64, 520), (20, 17, 533), (300, 16, 1000), (3, 8, 1000)]
    {
        let a_data: Vec<f32> = (0..m * k).map(|_| uniform(&mut rng)).collect();
        let b_data: Vec<f32> = (0..n * k).map(|_| uniform(&mut rng)).collect();
        let a = MatRef::row_major(&a_data, k);
        let b = MatRef::row_major(&b_data, k).t();
        let c0: Vec<f32> = (0..m * n).map(|_| uniform(&mut rng)).collect();
        let (want, mag) = reference(m, n, k, 0.5, a, b, &c0, n);
        for &isa in &levels {
            let mut c = c0.clone();
            gemm_with(
                isa,
                GemmDims { m, n, k },
                0.5,
                a,
                b,
                MatMut { data: &mut c, rs: n },
                &mut pack,
            );
            for (i, (&got, &w)) in c.iter().zip(&want).enumerate() {
                let bound = 2.0 * (k + 1) as f64 * 2f64.powi(-24) * mag[i];
                assert!((got as f64 - w).abs() <= bound, "{isa:?} {m}x{n}x{k} [{i}]");
            }
        }
    }
}

/// Shallow products (`k ≤ 12`, the skinny kernel on AVX-512) with column tails.
#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn shallow_products_match_the_definition() {
    let levels = levels_to_test("shallow_products", &Isa::ALL);
    let mut rng = Pcg64::seed_from_u64(45);
    let mut pack = vec![0.0; GEMM_PACK_LEN];
    for k in 1..=13 {
        for &(m, n) in &[(3, 1000), (8, 16), (11, 17), (5, 33), (2, 47), (1, 31)] {
            let a_data: Vec<f32> = (0..m * k).map(|_| uniform(&mut rng)).collect();
            let b_data: Vec<f32> = (0..k * (n + 5)).map(|_| uniform(&mut rng)).collect();
            for ta in [false, true] {
                let a = if ta {
                    MatRef::row_major(&a_data, m).t()
                } else {
                    MatRef::row_major(&a_data, k)
                };
                let b = MatRef { data: &b_data, rs: n + 5, cs: 1 };
                let ldc = n + 2;
                let c0: Vec<f32> = (0..m * ldc).map(|_| uniform(&mut rng)).collect();
                let (want, mag) = reference(m, n, k, -1.5, a, b, &c0, ldc);
                for &isa in &levels {
                    let mut c = c0.clone();
                    gemm_with(
                        isa,
                        GemmDims { m, n, k },
                        -1.5,
                        a,
                        b,
                        MatMut { data: &mut c, rs: ldc },
                        &mut pack,
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let bound = 2.0 * (k + 1) as f64 * 2f64.powi(-24) * mag[i * n + j];
                            let got = c[i * ldc + j] as f64;
                            assert!((got - want[i * n + j]).abs() <= bound, "{isa:?} {m}x{n}x{k}");
                        }
                        for j in n..ldc {
                            assert_eq!(c[i * ldc + j], c0[i * ldc + j], "padding");
                        }
                    }
                }
            }
        }
    }
}

/// `gemm_epilogue_with` gives the bits of zero-filling `C` and `gemm_with`,
/// at every level, with `B` packed ahead or not, on every path (driver with edge tiles and
/// several depth and column blocks, dot, skinny, direct, empty), over a garbage `C`, with
/// entries that underflow to `−0.0` in the sums (a write of `α·P` without the `+ 0` would
/// leave `−0.0` where the zero-filled `C` gives `+0.0`).
#[test]
#[cfg_attr(miri, ignore = "large products: too slow under Miri (x86.rs tests the paths)")]
fn epilogues_equal_zero_fill_and_add() {
    let mut rng = Pcg64::seed_from_u64(47);
    let mut pack = vec![0.0; GEMM_PACK_LEN];
    let sizes = [(256, 1100, 300), (33, 70, 520), (256, 200, 3000), (17, 9, 100), (40, 50, 5)];
    let sizes = sizes.into_iter().chain([(9, 40, 3), (3, 4, 2), (0, 5, 5), (5, 5, 0)]);
    for (m, n, k) in sizes {
        for layout in 0..4 {
            let (ta, tb) = (layout & 1 == 1, layout & 2 == 2);
            // A third of the rows of A are tiny and B's first column is tiny and negative:
            // their products underflow, so some sums are −0.0.
            let a_data: Vec<f32> = (0..m * k)
                .map(|i| {
                    let row = if ta { i % m.max(1) } else { i / k.max(1) };
                    if row % 3 == 0 {
                        1e-30
                    } else {
                        uniform(&mut rng)
                    }
                })
                .collect();
            let b_data: Vec<f32> = (0..k * n)
                .map(|i| {
                    let col = if tb { i / k.max(1) } else { i % n.max(1) };
                    if col == 0 {
                        -1e-30
                    } else {
                        uniform(&mut rng)
                    }
                })
                .collect();
            let a = if ta {
                MatRef::row_major(&a_data, m.max(1)).t()
            } else {
                MatRef::row_major(&a_data, k.max(1))
            };
            let b = if tb {
                MatRef::row_major(&b_data, k.max(1)).t()
            } else {
                MatRef::row_major(&b_data, n.max(1))
            };
            let ldc = n + layout;
            let alpha = if layout == 1 { -0.5 } else { 0.75 };
            let dims = GemmDims { m, n, k };
            for isa in levels_to_test("epilogues", &Isa::ALL) {
                let mut pre = vec![0.0; prepacked_b_len(isa, k, n)];
                prepack_b_with(isa, k, n, b, &mut pre);
                let c0: Vec<f32> = (0..m * ldc).map(|_| uniform(&mut rng) + 2.0).collect();
                let mut want = c0.clone();
                for row in want.chunks_mut(ldc) {
                    row[..n].fill(0.0);
                }
                gemm_with(isa, dims, alpha, a, b, MatMut { data: &mut want, rs: ldc }, &mut pack);
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                if m > 0 && n > 0 && k > 0 {
                    let zeros = want.iter().filter(|x| x.to_bits() == 0).count();
                    assert!(zeros > 0, "{m}x{n}x{k}: the sums that underflow give +0.0");
                }
                for (epilogue, want) in [(Epilogue::Set, &want)] {
                    let pres: [&[f32]; 2] =
                        if gemm_packs_b(isa, dims, a, b) { [&[], &pre] } else { [&[], &[]] };
                    for p in pres {
                        let mut got = c0.clone();
                        let c = MatMut { data: &mut got, rs: ldc };
                        gemm_epilogue_with(isa, dims, alpha, (a, b), c, (&mut pack, p), epilogue);
                        let what = std::format!("{isa:?} {m}x{n}x{k} layout {layout} {epilogue:?}");
                        assert_eq!(bits(&got), bits(want), "{what}");
                    }
                }
                // Add is gemm_with.
                let mut got = c0.clone();
                let c = MatMut { data: &mut got, rs: ldc };
                gemm_epilogue_with(isa, dims, alpha, (a, b), c, (&mut pack, &[]), Epilogue::Add);
                let mut want = c0.clone();
                gemm_with(isa, dims, alpha, a, b, MatMut { data: &mut want, rs: ldc }, &mut pack);
                assert_eq!(bits(&got), bits(&want), "{isa:?} {m}x{n}x{k} layout {layout} Add");
            }
        }
    }
}

#[test]
fn tiny_gemm_is_exact_on_small_integers() {
    // 2×3 · 3×2 with integers: every level is exact.
    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0];
    let mut pack = vec![0.0; GEMM_PACK_LEN];
    for isa in levels_to_test("tiny_gemm", &Isa::ALL) {
        let mut c = [1.0f32; 4];
        gemm_with(
            isa,
            GemmDims { m: 2, n: 2, k: 3 },
            2.0,
            MatRef::row_major(&a, 3),
            MatRef::row_major(&b, 2),
            MatMut { data: &mut c, rs: 2 },
            &mut pack,
        );
        assert_eq!(c, [117.0, 129.0, 279.0, 309.0], "{isa:?}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "a million draws: too slow under Miri")]
fn draws_follow_sigmoid_and_agree_across_levels() {
    let fields = [-2.0f32, -0.5, -0.1, 0.0, 0.3, 1.0, 9.0];
    let per = 150_000;
    let mut x: Vec<f32> = (0..fields.len() * per).map(|i| fields[i % fields.len()]).collect();
    let x0 = x.clone();
    let mut rng = Pcg64::seed_from_u64(62);
    sample_pm1_in_place(&mut x, &mut rng);
    for (f, &field) in fields.iter().enumerate() {
        let ups = x.iter().skip(f).step_by(fields.len()).filter(|&&s| s == 1.0).count();
        let p = sigmoid(2.0 * field) as f64;
        let got = ups as f64 / per as f64;
        let sd = (p * (1.0 - p) / per as f64).sqrt();
        assert!((got - p).abs() <= 5.0 * sd + 1e-9, "field {field}: {got} vs {p}");
    }
    assert!(x.iter().all(|&s| s == 1.0 || s == -1.0));
    // Every level draws the same spins from the same seed.
    for isa in levels_to_test("draws_agree_across_levels", &Isa::ALL) {
        let mut y = x0.clone();
        let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(62));
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => super::x86::sample_pm1(isa, &mut y, &mut lanes),
            _ => sample_pm1_with(&mut y, &mut lanes),
        }
        assert_eq!(y, x, "{isa:?}");
    }
    // Odd lengths use the first lanes of the last chunk.
    let mut short = vec![0.0f32; 21];
    sample_pm1_in_place(&mut short, &mut rng);
    assert!(short.iter().all(|&s| s == 1.0 || s == -1.0));
}

#[test]
fn pack_lengths_per_level() {
    use super::gemm::{KC, MC, NC};
    assert_eq!(gemm_pack_len(Isa::Scalar), 0);
    assert_eq!(gemm_pack_len(Isa::Avx2), KC * (MC + NC));
    assert_eq!(gemm_pack_len(Isa::Avx512), KC * (MC + NC));
    // Enough for every level this target can have, and no more.
    let want = Isa::ALL.into_iter().filter(|i| i.on_target()).map(gemm_pack_len).max();
    assert_eq!(Some(GEMM_PACK_LEN), want);
}

/// The scalar level packs nothing: an empty pack buffer works, on a product large enough that
/// a SIMD level would pack.
#[test]
#[cfg_attr(miri, ignore = "a 32×40×300 product: slow under Miri")]
fn scalar_gemm_takes_an_empty_pack_buffer() {
    let (m, n, k) = (32, 40, 300);
    let mut rng = Pcg64::seed_from_u64(46);
    let a_data: Vec<f32> = (0..m * k).map(|_| uniform(&mut rng)).collect();
    let b_data: Vec<f32> = (0..k * n).map(|_| uniform(&mut rng)).collect();
    let (a, b) = (MatRef::row_major(&a_data, k), MatRef::row_major(&b_data, n));
    let c0: Vec<f32> = (0..m * n).map(|_| uniform(&mut rng)).collect();
    let mut c = c0.clone();
    gemm_with(
        Isa::Scalar,
        GemmDims { m, n, k },
        0.5,
        a,
        b,
        MatMut { data: &mut c, rs: n },
        &mut [],
    );
    let mut want = c0;
    gemm::gemm_scalar(m, n, k, 0.5, a, b, &mut want, n);
    assert_eq!(c, want);
}

/// A SIMD level panics with a clear message on a pack buffer shorter than its
/// `gemm_pack_len`, even for a product too small to pack.
#[test]
#[cfg_attr(miri, ignore = "panics and unwinding: not what Miri checks here")]
fn simd_gemm_rejects_a_short_pack_buffer() {
    for isa in levels_to_test("short_pack_buffer", &[Isa::Avx2, Isa::Avx512]) {
        std::println!("short_pack_buffer: {}: the panic message below is expected", isa.name());
        let result = std::panic::catch_unwind(|| {
            let (a, b) = ([1.0f32; 4], [1.0f32; 4]);
            let mut c = [0.0f32; 4];
            let mut pack = vec![0.0; gemm_pack_len(isa) - 1];
            let (a, b) = (MatRef::row_major(&a, 2), MatRef::row_major(&b, 2));
            gemm_with(
                isa,
                GemmDims { m: 2, n: 2, k: 2 },
                1.0,
                a,
                b,
                MatMut { data: &mut c, rs: 2 },
                &mut pack,
            );
        });
        let err = result.expect_err("a short pack buffer must panic");
        let msg = err.downcast_ref::<std::string::String>().expect("a formatted panic message");
        assert!(msg.contains("pack buffer") && msg.contains("gemm_pack_len"), "{isa:?}: {msg}");
    }
}

/// The exact draw rule for one lane (the scalar loop's): `+1` iff `u·(1 + E) < 1`.
fn exact_draw(x: f32, bits: u32) -> bool {
    let mut v = [x; bulk::LANES];
    bulk::draw16(&mut v, [bits; bulk::LANES]);
    v[0] == 1.0
}

/// The number of `m` (the word's top 24 bits) for which the exact rule gives `+1` (it is
/// monotone in `m`: `+1` iff `m` is below this).
fn exact_threshold(x: f32) -> u32 {
    let (mut lo, mut hi) = (0u32, 1 << 24); // +1 below lo, −1 from hi
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if exact_draw(x, mid << 8) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Fields for the draw tests: moderate and saturated values, the edges of the proof's cases,
/// and NaN, ±∞, ±0, subnormals and huge values.
fn draw_fields(rng: &mut Pcg64, n: usize) -> Vec<f32> {
    let special = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        1e-40,
        -1e-40,
        8.5,
        -8.5,
        8.500001,
        -8.500001,
        15.0,
        -15.0,
        43.65,
        -44.15,
        1e30,
        -1e30,
        f32::MAX,
        f32::MIN,
    ];
    (0..n)
        .map(|i| match i % 5 {
            0 => special[(rng.next_u32() as usize) % special.len()],
            1 => uniform(rng) * 2.0,
            2 => uniform(rng) * 10.0,
            3 => uniform(rng) * 60.0,
            _ => uniform(rng) * 0.3,
        })
        .collect()
}

/// `e′` of the SIMD levels' cheap test is within the `ρ` of its proof of the exact rule's
/// `E = exp_fast(−2x)` wherever `|2x| ≤ 17`, and `δ ≥ ρ + 2⁻²¹`.
#[test]
#[cfg(target_arch = "x86_64")]
#[cfg_attr(miri, ignore = "a million-point sweep: too slow under Miri")]
fn cheap_draw_exp_is_within_rho() {
    use super::x86::{draw_probe, DRAW_DELTA};
    const RHO: f64 = 8e-5;
    assert!(DRAW_DELTA as f64 >= RHO + 2f64.powi(-21));
    let xs: Vec<f32> = (-1_000_000..=1_000_000)
        .map(|i| i as f32 * 8.5e-6)
        .chain([8.5, -8.5, 0.0, -0.0, 1e-30, -1e-30])
        .collect();
    for isa in levels_to_test("cheap_draw_exp", &[Isa::Avx2, Isa::Avx512]) {
        let mut worst = 0.0f64;
        for chunk in xs.chunks(bulk::LANES) {
            let mut x = [0.0f32; bulk::LANES];
            x[..chunk.len()].copy_from_slice(chunk);
            let (e, _) = draw_probe::cheap(isa, &x, &[0; bulk::LANES]);
            for (&xi, &ei) in x.iter().zip(&e) {
                let want = crate::num::exp_fast(-2.0 * xi) as f64;
                worst = worst.max((ei as f64 / want - 1.0).abs());
            }
        }
        std::println!("cheap_draw_exp: {}: worst |e′/E − 1| = {worst:e}", isa.name());
        assert!(worst <= RHO, "{isa:?}: {worst:e}");
    }
}

/// The SIMD levels' draws (a cheap test with the exact rule as fallback) equal the exact rule
/// lane for lane: random words, and words at the exact threshold and at both edges of the
/// cheap test's undecided band (where a too small margin would show), for random and special
/// fields. Also checks that the cheap test decides most lanes, and that near the edges it did
/// decide lanes on both sides (so the edge words test it, not the fallback).
#[test]
#[cfg(target_arch = "x86_64")]
#[cfg_attr(miri, ignore = "hundreds of thousands of draws: too slow under Miri")]
fn fast_draws_equal_the_exact_rule() {
    use super::x86::{draw_probe, DRAW_HI, DRAW_LO};
    const L: usize = bulk::LANES;
    let mut rng = Pcg64::seed_from_u64(63);
    let fields = draw_fields(&mut rng, 40_000);
    // Per field: random words, then words around m*, LO/(1+E) and HI/(1+E).
    let mut pairs: Vec<(f32, u32, bool)> = Vec::new(); // (x, word, edge word)
    for &x in &fields {
        for _ in 0..4 {
            pairs.push((x, rng.next_u32(), false));
        }
        let t = exact_threshold(x) as i64;
        let one_e = 1.0 + crate::num::exp_fast(-2.0 * x) as f64;
        let mut centres = std::vec![t];
        if one_e.is_finite() {
            centres.push((DRAW_LO as f64 / one_e) as i64);
            centres.push((DRAW_HI as f64 / one_e) as i64);
        }
        for c in centres {
            for d in -3..=3 {
                let m = (c + d).clamp(0, (1 << 24) - 1) as u32;
                pairs.push((x, m << 8 | (rng.next_u32() & 0xff), true));
            }
        }
    }
    for isa in levels_to_test("fast_draws_exact", &[Isa::Avx2, Isa::Avx512]) {
        let (mut random_decided, mut near_plus, mut near_minus) = (0usize, 0usize, 0usize);
        for chunk in pairs.chunks(L) {
            let (mut x, mut w, mut edges) = ([0.0f32; L], [0u32; L], [false; L]);
            for (l, &(xl, wl, el)) in chunk.iter().enumerate() {
                (x[l], w[l], edges[l]) = (xl, wl, el);
            }
            let (_, q) = draw_probe::cheap(isa, &x, &w);
            for (l, &ql) in q.iter().enumerate() {
                let edge = edges[l];
                let decided = !(DRAW_LO..=DRAW_HI).contains(&ql) && !ql.is_nan();
                random_decided += (decided && !edge) as usize;
                near_plus += (edge && ql < DRAW_LO) as usize;
                near_minus += (edge && ql > DRAW_HI) as usize;
            }
            let mut got = x;
            draw_probe::draw(isa, &mut got, &w);
            for l in 0..L {
                let want = if exact_draw(x[l], w[l]) { 1.0 } else { -1.0 };
                assert_eq!(got[l], want, "{isa:?}: x = {:e}, word = {:#x}", x[l], w[l]);
            }
        }
        std::println!(
            "fast_draws_exact: {}: {} pairs, {random_decided} random words decided by the \
             cheap test, {near_plus} / {near_minus} edge words decided +1 / −1",
            isa.name(),
            pairs.len()
        );
        assert!(random_decided > 150_000 && near_plus > 100_000 && near_minus > 100_000);
    }
}

/// The cheap test leaves at most about `2δ` of the lanes to the fallback, whatever the fields.
#[test]
#[cfg(target_arch = "x86_64")]
#[cfg_attr(miri, ignore = "a million draws: too slow under Miri")]
fn cheap_draw_test_rarely_falls_back() {
    use super::x86::{draw_probe, DRAW_DELTA, DRAW_HI, DRAW_LO};
    let mut rng = Pcg64::seed_from_u64(64);
    for isa in levels_to_test("cheap_draw_fallbacks", &[Isa::Avx2, Isa::Avx512]) {
        for scale in [0.3f32, 2.0, 10.0] {
            let n = 1 << 20;
            let mut undecided = 0usize;
            for _ in 0..n / bulk::LANES {
                let x: [f32; bulk::LANES] = core::array::from_fn(|_| uniform(&mut rng) * scale);
                let w: [u32; bulk::LANES] = core::array::from_fn(|_| rng.next_u32());
                let (_, q) = draw_probe::cheap(isa, &x, &w);
                undecided += q.iter().filter(|&&q| (DRAW_LO..=DRAW_HI).contains(&q)).count();
            }
            let rate = undecided as f64 / n as f64;
            std::println!("cheap_draw_fallbacks: {} scale {scale}: {rate:e}", isa.name());
            assert!(rate <= 1.2 * 2.0 * DRAW_DELTA as f64, "{isa:?} scale {scale}: {rate:e}");
        }
    }
}

/// Every level draws the same spins as the scalar loop from the same seed on fields of every
/// kind (NaN, ±∞ and huge ones included), with a tail chunk.
#[test]
#[cfg_attr(miri, ignore = "a hundred thousand draws: too slow under Miri")]
fn draws_agree_across_levels_on_all_fields() {
    let mut rng = Pcg64::seed_from_u64(65);
    let x0 = draw_fields(&mut rng, 100_003);
    let mut want = x0.clone();
    sample_pm1_with(&mut want, &mut Lanes::seed(&mut Pcg64::seed_from_u64(66)));
    assert!(want.iter().all(|&s| s == 1.0 || s == -1.0));
    for isa in levels_to_test("draws_agree_on_all_fields", &Isa::ALL) {
        let mut y = x0.clone();
        let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(66));
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => super::x86::sample_pm1(isa, &mut y, &mut lanes),
            _ => sample_pm1_with(&mut y, &mut lanes),
        }
        assert_eq!(y, want, "{isa:?}");
    }
}

/// The AVX packing (8 × 8 transposes, register copies) writes exactly the buffers of the
/// scalar `pack_a` / `pack_b` for every layout, full and partial panels, and depths with and
/// without a tail of `kc mod 8`; entries past the packed length stay untouched.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx_packing_equals_scalar_packing() {
    use super::gemm::{pack_a, pack_b};
    use super::x86::pack_avx2;
    if levels_to_test("avx_packing", &[Isa::Avx2]).is_empty() {
        return;
    }
    let mut rng = Pcg64::seed_from_u64(70);
    let (rows, cols) = (45usize, 83usize);
    let data: Vec<f32> = (0..rows * cols).map(|_| uniform(&mut rng)).collect();
    // (row stride, column stride) over `data`: rows contiguous, columns contiguous, neither.
    let layouts = [(cols, 1), (1, rows), (2 * 3, 2)];
    let mut checked = 0;
    for &(rs, cs) in &layouts {
        let view = MatRef { data: &data, rs, cs };
        // Offsets and sizes inside a 20 × 25 window that every layout keeps in bounds.
        for &(i0, mc, p0, kc) in
            &[(0usize, 16usize, 0usize, 8usize), (3, 17, 1, 19), (2, 8, 5, 7), (1, 5, 0, 1)]
        {
            let len = mc.div_ceil(8) * 8 * kc;
            let mut want = vec![7.0f32; len + 5];
            let mut got = want.clone();
            pack_a::<8>(view, i0, mc, p0, kc, &mut want);
            pack_avx2::<8>(false, view, (i0, mc, p0, kc), &mut got);
            assert_eq!(got, want, "pack_a rs {rs} cs {cs}: {i0} {mc} {p0} {kc}");
            let len6 = mc.div_ceil(6) * 6 * kc;
            let (mut want, mut got) = (vec![7.0f32; len6], vec![7.0f32; len6]);
            pack_a::<6>(view, i0, mc, p0, kc, &mut want);
            pack_avx2::<6>(false, view, (i0, mc, p0, kc), &mut got);
            assert_eq!(got, want, "pack_a<6> rs {rs} cs {cs}");
            // Two full panels and a partial one at each width (columns up to 2 + 37 + 32).
            for (nr, j0, nc) in [(32usize, 1usize, 77usize), (16, 2, 37)] {
                let (p0, kc) = (i0, kc.min(20 - i0));
                let len = nc.div_ceil(nr) * nr * kc;
                let mut want = vec![7.0f32; len + 5];
                let mut got = want.clone();
                if nr == 32 {
                    pack_b::<32>(view, p0, kc, j0, nc, &mut want);
                    pack_avx2::<32>(true, view, (p0, kc, j0, nc), &mut got);
                } else {
                    pack_b::<16>(view, p0, kc, j0, nc, &mut want);
                    pack_avx2::<16>(true, view, (p0, kc, j0, nc), &mut got);
                }
                assert_eq!(got, want, "pack_b<{nr}> rs {rs} cs {cs}: {p0} {kc} {j0} {nc}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 24);
}
