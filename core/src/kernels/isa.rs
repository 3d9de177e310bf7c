//! Instruction-set levels: [`Isa`], the CPU/build detection behind [`Isa::available`], and the
//! process-wide level that [`active`] reports and [`force`] sets. A leaf: it imports nothing
//! from the other kernel modules.

use core::sync::atomic::{AtomicU8, Ordering};

#[cfg(test)]
extern crate std;

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

    /// Whether a build for this target has the level's kernels at all (some CPU could run
    /// them): every level on x86-64, only [`Isa::Scalar`] elsewhere.
    pub(super) const fn on_target(self) -> bool {
        matches!(self, Isa::Scalar) || cfg!(target_arch = "x86_64")
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

/// For tests that run once per level: the `candidates` this CPU has, after printing which
/// levels `test` runs and a `SKIP` line for each one the CPU lacks.
#[cfg(test)]
pub(super) fn levels_to_test(test: &str, candidates: &[Isa]) -> std::vec::Vec<Isa> {
    let (run, skip): (std::vec::Vec<Isa>, std::vec::Vec<Isa>) =
        candidates.iter().partition(|isa| isa.available());
    for isa in &skip {
        std::println!("{test}: SKIP {}: not available on this CPU", isa.name());
    }
    let names: std::vec::Vec<&str> = run.iter().map(|isa| isa.name()).collect();
    std::println!("{test}: levels tested: [{}]", names.join(", "));
    run
}
