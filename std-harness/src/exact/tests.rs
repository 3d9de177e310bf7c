//! Tests of the public API across both paths: the oracle and the fast path against naive
//! enumeration and against each other, thread-count independence, edge cases and refusals.

#![allow(clippy::needless_range_loop)] // index-heavy math reads better with indices

use rapid_core::num::log_2cosh_f64;

use super::fast::{uses_pair_trick, PAIR_DELTA_MAX};
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
