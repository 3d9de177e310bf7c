//! The machine's f32 FMA peak at a kernel level, measured with the core's register-only loops
//! ([`rapid_core::kernels::peak`]) on every thread of the rayon pool at once.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rapid_core::kernels::{peak, Isa};

/// A measured FMA peak.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FmaPeak {
    /// The level whose loop ran.
    pub isa: Isa,
    /// Threads that ran it at once (the rayon pool's).
    pub threads: usize,
    /// Flops per second of all threads together: the best of the timed runs.
    pub flops_per_second: f64,
}

impl FmaPeak {
    /// [`FmaPeak::flops_per_second`] in GFLOP/s.
    pub fn gflops(&self) -> f64 {
        self.flops_per_second / 1e9
    }
}

/// Timed runs of [`measure_fma_peak`] (the best one is reported).
const PEAK_RUNS: u32 = 3;

/// Measures the FMA peak at `isa` on every thread of the current rayon pool at once
/// (`rayon::broadcast`) in about `budget` of wall time: a calibration that doubles the rounds
/// until one run takes a tenth of the budget (it also brings the cores to their vector
/// clock), then 3 timed runs (`PEAK_RUNS`) sharing the rest. Each run's rate is
/// `threads · rounds · flops per round / wall seconds`; the best is the peak (anything else
/// on the machine only lowers a run). `None` at [`Isa::Scalar`] (no loop) and at a level the
/// CPU cannot run.
///
/// # Panics
/// If a loop returns a non-finite sum (the recurrence stays near 0.1, so it cannot).
pub fn measure_fma_peak(isa: Isa, budget: Duration) -> Option<FmaPeak> {
    let flops_per_round = peak::flops_per_round(isa)?;
    peak::fma_rounds(isa, 1)?;
    let threads = rayon::current_num_threads();
    let run = |rounds: u64| -> f64 {
        let t0 = Instant::now();
        let sums = rayon::broadcast(|_| peak::fma_rounds(isa, black_box(rounds)));
        let s = t0.elapsed().as_secs_f64();
        assert!(sums.iter().all(|x| x.is_some_and(f32::is_finite)), "FMA loop: {sums:?}");
        s
    };
    let budget = budget.as_secs_f64();
    let mut rounds: u64 = 1 << 10;
    let mut s = run(rounds);
    while s < budget / 10.0 && rounds < 1 << 40 {
        rounds *= 2;
        s = run(rounds);
    }
    let per_run = budget * 0.8 / f64::from(PEAK_RUNS);
    let rounds = ((rounds as f64 * per_run / s.max(1e-9)) as u64).max(1);
    let flops = (threads as u64 * rounds) as f64 * flops_per_round as f64;
    let best = (0..PEAK_RUNS).map(|_| flops / run(rounds)).fold(0.0, f64::max);
    Some(FmaPeak { isa, threads, flops_per_second: best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_finite_where_the_level_runs() {
        assert_eq!(measure_fma_peak(Isa::Scalar, Duration::from_millis(5)), None);
        for isa in [Isa::Avx2, Isa::Avx512] {
            match measure_fma_peak(isa, Duration::from_millis(20)) {
                Some(p) => {
                    assert!(isa.available(), "{isa:?}");
                    assert_eq!((p.isa, p.threads), (isa, rayon::current_num_threads()));
                    assert!(p.flops_per_second.is_finite() && p.flops_per_second > 0.0);
                }
                None => assert!(!isa.available(), "{isa:?}"),
            }
        }
    }
}
