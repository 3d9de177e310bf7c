//! `project_sign` and `project_clamp` on arbitrary `f32` bit patterns (NaN, ±inf, ±0,
//! subnormals) and an arbitrary bound.
//!
//! Checks exactly what `rapid_core::optim` documents:
//! * sign: every entry becomes `+1.0` or `−1.0`; `x < 0 → −1`, anything else (`±0`, NaN) `→ +1`;
//! * clamp: the effective bound is `b = bound` if `bound > 0`, else `0` (non-positive and NaN
//!   bounds clamp everything to 0); NaN becomes `+0.0`; other entries become
//!   `clamp(x, −b, b)` bit for bit, so every result lies in `[−b, b]` and none is NaN;
//! * `Projection::after_update` / `at_epoch_end` apply the same functions on their cadence.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rapid_core::optim::{project_clamp, project_sign, Projection};

#[derive(Arbitrary, Debug)]
struct Input {
    bound: f32,
    every: u8,
    updates: u8,
    values: Vec<f32>,
}

/// The documented clamp of one entry with the effective bound `b ≥ 0`.
fn want_clamp(x: f32, b: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else if x < -b {
        -b
    } else if x > b {
        b
    } else {
        x
    }
}

fuzz_target!(|input: Input| {
    let Input { bound, every, updates, values } = input;

    let mut signed = values.clone();
    project_sign(&mut signed);
    for (&x, &s) in values.iter().zip(&signed) {
        assert!(s.to_bits() == 1.0f32.to_bits() || s.to_bits() == (-1.0f32).to_bits());
        let want = if x < 0.0 { -1.0f32 } else { 1.0 };
        assert_eq!(s.to_bits(), want.to_bits(), "sign of {x:?} ({:#010x})", x.to_bits());
    }

    let b = if bound > 0.0 { bound } else { 0.0 };
    let mut clamped = values.clone();
    project_clamp(&mut clamped, bound);
    for (&x, &c) in values.iter().zip(&clamped) {
        assert!(!c.is_nan(), "clamp of {x:?} with bound {bound:?} is NaN");
        assert!(-b <= c && c <= b, "clamp of {x:?} = {c:?} outside ±{b:?}");
        if b == 0.0 {
            assert_eq!(c, 0.0, "bound {bound:?} must clamp {x:?} to 0");
        }
        let want = want_clamp(x, b);
        assert_eq!(c.to_bits(), want.to_bits(), "clamp of {x:?} with bound {bound:?}");
    }

    // The projection policy applies the same functions, on its cadence.
    let updates_done = u64::from(updates);
    let mut p = values.clone();
    Projection::Clamp { bound }.after_update(&mut p, updates_done);
    assert!(p.iter().zip(&clamped).all(|(a, b)| a.to_bits() == b.to_bits()));
    let every = u32::from(every);
    let mut p = values.clone();
    Projection::Sign { every }.after_update(&mut p, updates_done);
    let due = every > 0 && updates_done % u64::from(every) == 0;
    let want = if due { &signed } else { &values };
    assert!(p.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()));
    let mut p = values.clone();
    Projection::Sign { every }.at_epoch_end(&mut p);
    let want = if every == 0 { &signed } else { &values };
    assert!(p.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()));
    let mut p = values.clone();
    Projection::None.after_update(&mut p, updates_done);
    Projection::None.at_epoch_end(&mut p);
    assert!(p.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
    // validate() accepts exactly the finite positive bounds.
    let valid = Projection::Clamp { bound }.validate().is_ok();
    assert_eq!(valid, bound.is_finite() && bound > 0.0, "validate({bound:?})");
});
