//! x86-64 entry points that run a caller's closure inside a `#[target_feature]` function, so
//! that its loops (when inlined into it) are compiled for AVX2 or AVX-512: the `unsafe` half
//! of [`super::at_level`]. Each entry is made only after the level was checked with
//! [`Isa::available`]. A leaf called by the dispatcher only.
#![allow(unsafe_code)]

use super::isa::Isa;

/// `f()` compiled for `isa` (AVX2 or AVX-512) where it is inlined.
#[inline(always)]
pub(super) fn run<R, F: FnOnce() -> R>(isa: Isa, f: F) -> R {
    assert!(isa.available(), "the {} kernels need CPU support", isa.name());
    match isa {
        // SAFETY: the level was checked just above.
        Isa::Avx512 => unsafe { run_avx512(f) },
        // SAFETY: as above.
        Isa::Avx2 => unsafe { run_avx2(f) },
        Isa::Scalar => unreachable!("the scalar level does not come here"),
    }
}

/// # Safety
/// The CPU must support AVX-512F/BW/VL, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn run_avx512<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}
