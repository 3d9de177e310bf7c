//! Compute kernels over caller buffers, each with a scalar oracle and SIMD variants chosen at
//! run time.
//!
//! # Dispatch
//! [`Isa`] names an instruction-set level. With the `std` feature the first call to
//! [`active`] detects the best level the running CPU supports (`is_x86_feature_detected!`);
//! without `std` the level is fixed at compile time from `cfg(target_feature)` (so a
//! microcontroller build is always [`Isa::Scalar`], and an x86-64 `no_std` build picks up
//! AVX2/AVX-512 only when compiled with those target features). [`force`] selects a lower
//! level, for benchmarks and for testing a variant against the scalar oracle. The default
//! build needs no `-C target-cpu=native`.
//!
//! # Numerics
//! Integer kernels are bit-exact across levels. The f32 kernels sum in a different order per
//! level (and fuse multiply-adds on AVX2/AVX-512), so results agree with the scalar oracle
//! within a rounding bound stated on each kernel, and a run is bit-reproducible for a given
//! seed *and* level. [`Isa::name`] is what benchmark output reports.

use core::sync::atomic::{AtomicU8, Ordering};

pub mod bulk;
pub mod gemm;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use bulk::sample_pm1_in_place;
pub use gemm::{gemm, gemm_with, MatRef, GEMM_PACK_LEN};

/// An instruction-set level for the kernels, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, no packing (what microcontrollers run).
    Scalar,
    /// x86-64 AVX2 + FMA (+ POPCNT).
    Avx2,
    /// x86-64 AVX-512F/BW/VL + FMA, with AVX-512 VPOPCNTDQ when present.
    Avx512,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// Short name for reports: `scalar`, `avx2`, `avx512`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parses a [`Isa::name`].
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Whether this CPU (with `std`) or this build (without) can run the level.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => has_avx2(),
            Isa::Avx512 => has_avx512(),
        }
    }

    /// The highest available level.
    pub fn detect() -> Isa {
        if has_avx512() {
            Isa::Avx512
        } else if has_avx2() {
            Isa::Avx2
        } else {
            Isa::Scalar
        }
    }

    const fn code(self) -> u8 {
        match self {
            Isa::Scalar => 1,
            Isa::Avx2 => 2,
            Isa::Avx512 => 3,
        }
    }
}

#[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
fn has_avx2() -> bool {
    extern crate std;
    std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("popcnt")
}

#[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
fn has_avx512() -> bool {
    extern crate std;
    has_avx2()
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
}

#[cfg(not(all(any(feature = "std", test), target_arch = "x86_64")))]
fn has_avx2() -> bool {
    cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "popcnt"
    ))
}

#[cfg(not(all(any(feature = "std", test), target_arch = "x86_64")))]
fn has_avx512() -> bool {
    has_avx2()
        && cfg!(all(
            target_arch = "x86_64",
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vl"
        ))
}

/// 0 = not chosen yet; otherwise [`Isa::code`].
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// The level the kernels use: the one [`force`]d, else the detected best.
pub fn active() -> Isa {
    match ACTIVE.load(Ordering::Relaxed) {
        1 => Isa::Scalar,
        2 => Isa::Avx2,
        3 => Isa::Avx512,
        _ => {
            let isa = Isa::detect();
            ACTIVE.store(isa.code(), Ordering::Relaxed);
            isa
        }
    }
}

/// The CPU (or build) lacks the requested level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaUnavailable(pub Isa);

impl core::fmt::Display for IsaUnavailable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "this CPU does not support the {} kernels", self.0.name())
    }
}

impl core::error::Error for IsaUnavailable {}

/// Makes every kernel use `isa` from now on (process-wide).
///
/// # Errors
/// [`IsaUnavailable`] if the CPU or build cannot run it; the level stays as it was.
pub fn force(isa: Isa) -> Result<(), IsaUnavailable> {
    if !isa.available() {
        return Err(IsaUnavailable(isa));
    }
    ACTIVE.store(isa.code(), Ordering::Relaxed);
    Ok(())
}

/// `x ← tanh x` ([`crate::num::tanh`]) for every entry, at the active level's vector width.
/// Bit-identical at every level (the same IEEE operations per entry, never fused).
pub fn tanh_in_place(x: &mut [f32]) {
    map_in_place(x, crate::num::tanh);
}

/// `x ← σ(2x)` ([`crate::num::sigmoid`]) for every entry: the `P(+1)` of a ±1 spin with field
/// `x`. Bit-identical at every level.
pub fn sigmoid2_in_place(x: &mut [f32]) {
    map_in_place(x, |v| crate::num::sigmoid(2.0 * v));
}

/// Applies `f` to every entry, compiled for the active level.
#[inline(always)]
fn map_in_place<F: Fn(f32) -> f32>(x: &mut [f32], f: F) {
    match active() {
        #[cfg(target_arch = "x86_64")]
        isa @ (Isa::Avx2 | Isa::Avx512) => x86::map_in_place(isa, x, f),
        _ => map_scalar(x, f),
    }
}

#[inline(always)]
fn map_scalar<F: Fn(f32) -> f32>(x: &mut [f32], f: F) {
    for v in x.iter_mut() {
        *v = f(*v);
    }
}
