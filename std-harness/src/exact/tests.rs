//! Tests of the public API across both paths: the oracle and the fast path against naive
//! enumeration and against each other, thread-count independence, edge cases and refusals.

#![allow(clippy::needless_range_loop)] // index-heavy math reads better with indices

use rapid_core::num::log_2cosh_f64;

use super::fast::{run_at, uses_pair_trick, Level, PAIR_DELTA_MAX};
use super::oracle::{ground_state_oracle, log_z_oracle};
use super::test_util::{all_spins, bip, energy, random_model, SMALL_SIZES};
use super::*;

/// Naive log Z and the averages ⟨v h⟩, ⟨v⟩, ⟨h⟩ over all (v, h).
fn naive(m: &Bipartite) -> (f64, Vec<f64>, Vec<f64>, Vec<f64>) {
    let (vs, hs) = (all_spins(m.visible), all_spins(m.hidden));
    let mut z = 0.0;
    let mut vh = vec![0.0; m.visible * m.hidden];
    let (mut mv, mut mh) = (vec![0.0; m.visible], vec![0.0; m.hidden]);
    for v in &vs {
        for h in &hs {
            let p = (-energy(m, v, h)).exp();
            z += p;
            for i in 0..m.visible {
                mv[i] += p * v[i];
                for al in 0..m.hidden {
                    vh[i * m.hidden + al] += p * v[i] * h[al];
                }
            }
            for al in 0..m.hidden {
                mh[al] += p * h[al];
            }
        }
    }
    for x in vh.iter_mut().chain(&mut mv).chain(&mut mh) {
        *x /= z;
    }
    (z.ln(), vh, mv, mh)
}

fn max_abs_diff<A: Copy + Into<f64>, B: Copy + Into<f64>>(x: &[A], y: &[B]) -> f64 {
    assert_eq!(x.len(), y.len());
    x.iter().zip(y).map(|(&a, &b)| (a.into() - b.into()).abs()).fold(0.0, f64::max)
}

#[test]
fn log_z_equals_naive_enumeration() {
    for (seed, &(nv, nh)) in SMALL_SIZES.iter().enumerate() {
        let (w, a, b) = random_model(nv, nh, 0.7, 0.5, seed as u64);
        for biases in [false, true] {
            let m = bip(nv, nh, &w, &a, &b, biases);
            let (want, ..) = naive(&m);
            let got = log_z(&m).unwrap();
            assert!((got - want).abs() <= 1e-9 * want.abs(), "{nv}x{nh} {biases}: {got} {want}");
            let mut fast = FastAverage::default();
            model_average_fast(&m, &mut fast).unwrap();
            assert!((fast.log_z - want).abs() <= 1e-5 * want.abs(), "fast {nv}x{nh} {biases}");
        }
    }
}

#[test]
fn model_average_equals_naive_enumeration() {
    for (seed, &(nv, nh)) in SMALL_SIZES.iter().enumerate() {
        let (w, a, b) = random_model(nv, nh, 0.8, 0.6, 10 + seed as u64);
        for biases in [false, true] {
            let m = bip(nv, nh, &w, &a, &b, biases);
            let (lz, vh, v, h) = naive(&m);
            let got = model_average(&m).unwrap();
            assert!((got.log_z - lz).abs() <= 1e-12 * lz.abs().max(1.0));
            assert!(max_abs_diff(&got.vh, &vh) < 1e-12, "{nv}x{nh} {biases}");
            assert!(max_abs_diff(&got.v, &v) < 1e-12, "{nv}x{nh} {biases}");
            assert!(max_abs_diff(&got.h, &h) < 1e-12, "{nv}x{nh} {biases}");
            let mut fast = FastAverage::default();
            model_average_fast(&m, &mut fast).unwrap();
            assert!(max_abs_diff(&fast.vh, &vh) < 1e-6, "fast {nv}x{nh} {biases}");
            assert!(max_abs_diff(&fast.v, &v) < 1e-6, "fast {nv}x{nh} {biases}");
            assert!(max_abs_diff(&fast.h, &h) < 1e-6, "fast {nv}x{nh} {biases}");
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // 17 enumerated spins: 128 chunks in the oracle, 64 in the symmetric fast path.
    let (nv, nh) = (17, 20);
    let (w, a, b) = random_model(nv, nh, 0.3, 0.2, 5);
    for biases in [false, true] {
        let m = bip(nv, nh, &w, &a, &b, biases);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                let mut fast = FastAverage::default();
                model_average_fast(&m, &mut fast).unwrap();
                let gs = ground_state(&m).unwrap();
                (log_z(&m).unwrap(), model_average(&m).unwrap(), fast, gs)
            })
        };
        let one = run(1);
        for threads in [2, 3] {
            let other = run(threads);
            assert_eq!(one.0.to_bits(), other.0.to_bits());
            // PartialEq on f64/f32 vectors: no NaN here, so equality is bit-identity.
            assert_eq!(one.1, other.1);
            assert_eq!(one.2, other.2);
            assert_eq!(one.3, other.3);
        }
    }
}

/// An empty layer: one enumerated state, `log Z = Σ log 2cosh` of the other side's biases.
#[test]
fn empty_layers() {
    let b = [0.3f32, -1.2, 0.0];
    let want: f64 = b.iter().map(|&x| log_2cosh_f64(f64::from(x))).sum();
    for (nv, nh) in [(0, 3), (3, 0)] {
        let (a, bb) = if nv == 0 { (None, Some(&b[..])) } else { (Some(&b[..]), None) };
        let m = Bipartite { visible: nv, hidden: nh, w: &[], a, b: bb };
        assert!((log_z(&m).unwrap() - want).abs() < 1e-12);
        let avg = model_average(&m).unwrap();
        let mut fast = FastAverage::default();
        model_average_fast(&m, &mut fast).unwrap();
        assert!((fast.log_z - want).abs() < 1e-6);
        let tanh: Vec<f64> = b.iter().map(|&x| f64::from(x).tanh()).collect();
        let (got, got_fast) = if nv == 0 { (&avg.h, &fast.h) } else { (&avg.v, &fast.v) };
        assert!(max_abs_diff(got, &tanh) < 1e-12 && max_abs_diff(got_fast, &tanh) < 1e-6);
        assert!(avg.vh.is_empty() && fast.vh.is_empty());
        let gs = ground_state(&m).unwrap();
        let want_gs = -b.iter().map(|x| f64::from(x.abs())).sum::<f64>();
        assert!((gs.energy - want_gs).abs() < 1e-12);
    }
    let none = Bipartite { visible: 0, hidden: 0, w: &[], a: None, b: None };
    assert_eq!(log_z(&none), Ok(0.0));
}

#[test]
fn too_large_is_refused_immediately() {
    let w = vec![0.0f32; 40 * 40];
    let m = bip(40, 40, &w, &[], &[], false);
    let err = ExactError::TooLarge { bits: 40, limit: MAX_ENUM_BITS };
    assert_eq!(log_z(&m), Err(err));
    assert_eq!(mean_nll(&m, &[1.0; 40]), Err(err));
    assert_eq!(ground_state(&m), Err(err));
    assert_eq!(model_average(&m), Err(err));
    let mut out = FastAverage::default();
    assert_eq!(model_average_fast(&m, &mut out), Err(err));
    let msg = err.to_string();
    assert!(msg.contains("40 spins") && msg.contains("limit is 30"), "{msg}");
    // A long thin model is fine: the smaller layer is enumerated.
    let w = vec![0.0f32; 3 * 40];
    let lz = log_z(&bip(40, 3, &w, &[], &[], false)).unwrap();
    assert!((lz - 43.0 * std::f64::consts::LN_2).abs() < 1e-12);
}

/// Fast path against the f64 oracle, symmetric (no biases) and general, both sides.
#[test]
fn fast_average_matches_the_oracle() {
    let cases = [
        (16, 200, 0.1, 0.0, false),
        (16, 200, 0.3, 0.0, false),
        (10, 12, 0.3, 0.3, true),
        (13, 7, 0.5, 0.3, true),
        (11, 8, 0.5, 0.0, false),
        // Strong couplings: the reference is raised often, many states are negligible.
        (12, 300, 1.0, 0.0, false),
        // More than 2^10 states per chunk: fields are re-anchored inside a chunk.
        (17, 20, 0.3, 0.2, true),
        (18, 20, 0.3, 0.0, false),
        // |2 W_0α| > 12 for some α: the odd states fall back to the plain pass.
        (8, 9, 6.0, 0.5, true),
    ];
    for (seed, &(nv, nh, sd, bias_sd, biases)) in cases.iter().enumerate() {
        let (w, a, b) = random_model(nv, nh, sd, bias_sd, 40 + seed as u64);
        let m = bip(nv, nh, &w, &a, &b, biases);
        // Spin 0 of the enumerated side couples through row 0 of W, or column 0 if H < V.
        let r0: Vec<f32> =
            if nh < nv { w.iter().step_by(nh).copied().collect() } else { w[..nh].to_vec() };
        let max_delta = r0.iter().fold(0.0f32, |x, &y| x.max(2.0 * y.abs()));
        assert_eq!(uses_pair_trick(&m), f64::from(max_delta) <= PAIR_DELTA_MAX);
        let exact = model_average(&m).unwrap();
        let mut fast = FastAverage::new(nv, nh);
        model_average_fast(&m, &mut fast).unwrap();
        let errs = [
            max_abs_diff(&fast.vh, &exact.vh),
            max_abs_diff(&fast.v, &exact.v),
            max_abs_diff(&fast.h, &exact.h),
            (fast.log_z - exact.log_z).abs() / exact.log_z.abs(),
        ];
        let shown: Vec<String> = errs.iter().map(|e| format!("{e:.1e}")).collect();
        eprintln!("{nv}x{nh} sd {sd} biases {biases}: vh v h logZ errors {shown:?}");
        assert!(errs[..3].iter().all(|&e| e < 1e-5), "{nv}x{nh}: {errs:?}");
        assert!(errs[3] < 1e-7, "{nv}x{nh}: {errs:?}");
    }
}

/// Models for the `f64` walks against their oracles: (V, H, sd of W, sd of the biases, biases).
const WALK_CASES: [(usize, usize, f64, f64, bool); 10] = [
    (16, 200, 0.1, 0.0, false),
    (16, 200, 0.3, 0.0, false),
    (10, 12, 0.3, 0.3, true),
    // h enumerated.
    (13, 7, 0.5, 0.3, true),
    (30, 9, 0.4, 0.0, false),
    // Several product blocks and padding on the summed side.
    (9, 1100, 1.0, 0.0, false),
    (7, 1030, 0.2, 0.5, true),
    // More than 2^10 states per chunk: the walk re-anchors its fields inside a chunk.
    (17, 20, 0.3, 0.2, true),
    (18, 20, 0.3, 0.0, false),
    (8, 9, 6.0, 0.5, true),
];

/// The vectorised `log Z` against the `libm` oracle: relative error ≤ 1e−13 (measured: at
/// most a few 1e−16).
#[test]
fn log_z_matches_the_libm_oracle() {
    let mut worst = 0.0f64;
    for (seed, &(nv, nh, sd, bias_sd, biases)) in WALK_CASES.iter().enumerate() {
        let (w, a, b) = random_model(nv, nh, sd, bias_sd, 60 + seed as u64);
        let m = bip(nv, nh, &w, &a, &b, biases);
        let (got, want) = (log_z(&m).unwrap(), log_z_oracle(&m).unwrap());
        let rel = (got - want).abs() / want.abs();
        worst = worst.max(rel);
        assert!(rel <= 1e-13, "{nv}x{nh} sd {sd} {biases}: {got} vs {want} ({rel:.1e})");
    }
    // Zero couplings: log Z = (V + H) log 2 exactly enough; with biases, a sum of log 2cosh.
    let w = vec![0.0f32; 5 * 1040];
    let lz = log_z(&bip(5, 1040, &w, &[], &[], false)).unwrap();
    assert!((lz / (1045.0 * std::f64::consts::LN_2) - 1.0).abs() < 1e-14, "{lz}");
    eprintln!("log Z: worst relative error against the libm oracle {worst:.1e}");
}

/// The ground state equals the oracle's (incremental `f64` fields, every state): the same
/// energy bits, and a state with that energy.
#[test]
fn ground_state_matches_the_oracle() {
    for (seed, &(nv, nh, sd, bias_sd, biases)) in WALK_CASES.iter().enumerate() {
        let (w, a, b) = random_model(nv, nh, sd, bias_sd, 80 + seed as u64);
        let m = bip(nv, nh, &w, &a, &b, biases);
        let (got, want) = (ground_state(&m).unwrap(), ground_state_oracle(&m).unwrap());
        assert_eq!(got.energy.to_bits(), want.energy.to_bits(), "{nv}x{nh} sd {sd} {biases}");
        let v: Vec<f64> = got.v.iter().map(|&x| f64::from(x)).collect();
        let h: Vec<f64> = got.h.iter().map(|&x| f64::from(x)).collect();
        let e = energy(&m, &v, &h);
        assert!((e - got.energy).abs() <= 1e-12 * e.abs(), "{nv}x{nh}: {e} vs {}", got.energy);
        if biases {
            assert_eq!((&got.v, &got.h), (&want.v, &want.h), "{nv}x{nh} sd {sd}");
        }
    }
}

/// Many exact ties (weights and biases on a coarse grid, so every energy is exact): the
/// ground state is the first state of lowest energy in enumeration order, as found by a
/// plain scan, with and without biases, on either side.
#[test]
fn ground_state_ties_are_broken_by_enumeration_order() {
    let mut all_ties = 0;
    for (seed, &(nv, nh)) in [(6, 9), (9, 5), (12, 4), (4, 12), (11, 11)].iter().enumerate() {
        let grid = |k: usize| ((k * 7 + seed * 3) % 5) as f32 * 0.5 - 1.0;
        let w: Vec<f32> = (0..nv * nh).map(|k| grid(k * 13 + 1)).collect();
        let a: Vec<f32> = (0..nv).map(|k| grid(k + 2)).collect();
        let b: Vec<f32> = (0..nh).map(|k| grid(k + 4)).collect();
        for biases in [false, true] {
            let m = bip(nv, nh, &w, &a, &b, biases);
            let (n, transposed) = (nv.min(nh), nh < nv);
            // Plain scan over the full order: k-th state is the Gray code of k.
            let mut best = (f64::INFINITY, 0u64);
            let mut ties = 0usize;
            for k in 0..1u64 << n {
                let code = k ^ (k >> 1);
                let s: Vec<f64> =
                    (0..n).map(|i| if (code >> i) & 1 == 1 { 1.0 } else { -1.0 }).collect();
                let (e, _) = best_other_side(&m, &s, transposed);
                if e < best.0 {
                    (best, ties) = ((e, code), 0);
                } else if e == best.0 {
                    ties += 1;
                }
            }
            let gs = ground_state(&m).unwrap();
            let s = if transposed { &gs.h } else { &gs.v };
            let code = s.iter().enumerate().fold(0u64, |c, (i, &x)| c | u64::from(x > 0.0) << i);
            assert_eq!(gs.energy, best.0, "{nv}x{nh} {biases}");
            assert_eq!(code, best.1, "{nv}x{nh} {biases} ({ties} ties)");
            all_ties += ties;
        }
    }
    assert!(all_ties > 0, "the grid models must have tied ground states");
}

/// `(min_t E, argmin)` over the summed side for the enumerated side `s`, in f64.
fn best_other_side(m: &Bipartite, s: &[f64], transposed: bool) -> (f64, Vec<f64>) {
    let other = if transposed { m.visible } else { m.hidden };
    let mut t = vec![0.0; other];
    for (j, tj) in t.iter_mut().enumerate() {
        let mut f = 0.0;
        for (i, &si) in s.iter().enumerate() {
            let w = if transposed { m.w[j * m.hidden + i] } else { m.w[i * m.hidden + j] };
            f += si * f64::from(w);
        }
        f += if transposed { m.a } else { m.b }.map_or(0.0, |x| f64::from(x[j]));
        *tj = if f >= 0.0 { 1.0 } else { -1.0 };
    }
    let e = if transposed { energy(m, &t, s) } else { energy(m, s, &t) };
    (e, t)
}

/// The walks give the same bits at the active SIMD level as in plain code of the default
/// build.
#[test]
fn fast_paths_give_the_same_bits_at_every_level() {
    eprintln!("active level: {}", rapid_core::kernels::active().name());
    for (seed, &(nv, nh, sd, bias_sd, biases)) in WALK_CASES.iter().enumerate() {
        if nv.min(nh) > 18 {
            continue;
        }
        let (w, a, b) = random_model(nv, nh, sd, bias_sd, 100 + seed as u64);
        let m = bip(nv, nh, &w, &a, &b, biases);
        let (active, plain) = (run_at(&m, Level::Active), run_at(&m, Level::Plain));
        assert_eq!(active.0, plain.0, "{nv}x{nh}");
        assert_eq!(active.1.to_bits(), plain.1.to_bits(), "{nv}x{nh}");
        assert_eq!(active.2 .0.to_bits(), plain.2 .0.to_bits(), "{nv}x{nh}");
        assert_eq!(active.2 .1, plain.2 .1, "{nv}x{nh}");
    }
}

/// Per-function timing for V = 16, H = 1000 (no biases, biases, and the `h` side
/// enumerated): `cargo test --release -p rapid-harness --lib exact::tests::timing -- --ignored
/// --nocapture`. Prints ms per call and ns per (state, summed unit) term.
#[test]
#[ignore]
fn timing_exact_functions() {
    let time = |reps: usize, f: &mut dyn FnMut()| {
        f();
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            f();
        }
        t0.elapsed().as_secs_f64() / reps as f64 * 1e3
    };
    for (nv, nh, biases) in [(16, 1000, false), (16, 1000, true), (1000, 16, true)] {
        let (w, a, b) = random_model(nv, nh, 0.3, 0.3, 7);
        let m = bip(nv, nh, &w, &a, &b, biases);
        let terms = (1u64 << 16) as f64 * 1000.0 / 1e6; // ms → ns per term
        let mut fast = FastAverage::new(nv, nh);
        let t_fast = time(10, &mut || model_average_fast(&m, &mut fast).unwrap());
        let t_lz = time(3, &mut || {
            log_z(&m).unwrap();
        });
        let t_gs = time(5, &mut || {
            ground_state(&m).unwrap();
        });
        let t_avg = time(1, &mut || {
            model_average(&m).unwrap();
        });
        eprintln!(
            "TIMING {nv}x{nh} biases {biases}: model_average_fast {t_fast:.2} ms ({:.3} ns/term), \
             log_z {t_lz:.1} ms ({:.3}), ground_state {t_gs:.2} ms ({:.3}), model_average \
             {t_avg:.0} ms ({:.2})",
            t_fast / terms,
            t_lz / terms,
            t_gs / terms,
            t_avg / terms
        );
    }
}

/// Timing of the training path on Bars 4×4 sizes, and of the oracle:
/// `cargo test --release -p rapid-harness --lib exact -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_fast_average_bars_sizes() {
    let (nv, nh) = (16, 1000);
    for sd in [0.01, 0.3] {
        let (w, a, b) = random_model(nv, nh, sd, 0.0, 7);
        let m = bip(nv, nh, &w, &a, &b, false);
        let mut fast = FastAverage::new(nv, nh);
        model_average_fast(&m, &mut fast).unwrap();
        let reps = 40;
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            model_average_fast(&m, &mut fast).unwrap();
        }
        let per = t0.elapsed().as_secs_f64() / reps as f64 * 1e3;
        let t0 = std::time::Instant::now();
        let exact = model_average(&m).unwrap();
        let oracle = t0.elapsed().as_secs_f64() * 1e3;
        let t0 = std::time::Instant::now();
        let lz = log_z(&m).unwrap();
        let lz_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t0 = std::time::Instant::now();
        let gs = ground_state(&m).unwrap();
        let gs_ms = t0.elapsed().as_secs_f64() * 1e3;
        let err = max_abs_diff(&fast.vh, &exact.vh);
        eprintln!(
            "V=16 H=1000 sd {sd}: fast {per:.2} ms/call; oracle model_average {oracle:.0} ms, \
             log_z {lz_ms:.0} ms, ground_state {gs_ms:.0} ms; max |Δ⟨vh⟩| {err:.2e}, \
             log Z {} (fast) vs {lz} (E_GS {})",
            fast.log_z, gs.energy
        );
        assert!(err < 1e-4 && (fast.log_z - lz).abs() < 1e-4);
    }
}

/// Single-thread timing of one function (for `perf stat`): `EXACT_FN` = fast | log_z | gs |
/// avg, `EXACT_CASE` = 0 (16×1000), 1 (16×1000 with biases), 2 (1000×16 with biases),
/// `EXACT_REPS` calls.
#[test]
#[ignore]
fn timing_one_function() {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let case: usize = env("EXACT_CASE", "0").parse().unwrap();
    let reps: usize = env("EXACT_REPS", "10").parse().unwrap();
    let (nv, nh, biases) = [(16, 1000, false), (16, 1000, true), (1000, 16, true)][case];
    let (w, a, b) = random_model(nv, nh, 0.3, 0.3, 7);
    let m = bip(nv, nh, &w, &a, &b, biases);
    let mut fast = FastAverage::new(nv, nh);
    let which = env("EXACT_FN", "fast");
    rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| {
        let t0 = std::time::Instant::now();
        for _ in 0..reps {
            match which.as_str() {
                "fast" => model_average_fast(&m, &mut fast).unwrap(),
                "log_z" => drop(log_z(&m).unwrap()),
                "gs" => drop(ground_state(&m).unwrap()),
                _ => drop(model_average(&m).unwrap()),
            }
        }
        let ms = t0.elapsed().as_secs_f64() / reps as f64 * 1e3;
        eprintln!("ONE {which} case {case}: {ms:.2} ms per call (wall, one thread)");
    });
}
