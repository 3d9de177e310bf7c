//! Exact enumeration for small models: `log Z`, the negative
//! log-likelihood, the model average (the exact gradient) and the ground state, in `f64` and
//! in constant memory.
//!
//! # Model
//! Spins are ±1; `E(v,h) = −vᵀWh − aᵀv − bᵀh` with `W` V×H row-major and optional biases
//! ([`Bipartite`]). Summing one layer out analytically,
//!
//! ```text
//! log Σ_h e^{−E(v,h)} = aᵀv + Σ_α log 2cosh φ_α,   φ = Wᵀv + b,   i.e. −F(v)
//! log Σ_v e^{−E(v,h)} = bᵀh + Σ_i log 2cosh ψ_i,   ψ = W h + a
//! ```
//!
//! with `log 2cosh x = |x| + log1p(e^{−2|x|})` (never overflows). The module enumerates the
//! **smaller** layer (`v` if `V ≤ H`, else `h`) and sums the other one out, so the cost is
//! `2^min(V,H)` states times `O(max(V,H))` work each. Below, `s` is the enumerated layer (`n`
//! spins), `t` the summed one (`m` spins), `R` the `n×m` coupling (`W` or `Wᵀ`), `c`, `d` the
//! biases of `s` and `t`, and `f = Rᵀs + d` the fields on `t`.
//!
//! * `log Z = logsumexp_s [cᵀs + Σ_j log 2cosh f_j]`.
//! * Model average: `⟨s_i t_j⟩ = Σ_s P(s) s_i tanh f_j`, `⟨s_i⟩ = Σ_s P(s) s_i`,
//!   `⟨t_j⟩ = Σ_s P(s) tanh f_j` (the summed layer is Rao–Blackwellised). The exact gradient of
//!   the mean log-likelihood is `⟨v_i tanh φ_α⟩_data − ⟨v_i h_α⟩_model` for `W`,
//!   `⟨v_i⟩_data − ⟨v_i⟩_model` for `a`, `⟨tanh φ_α⟩_data − ⟨h_α⟩_model` for `b`.
//! * Ground state: `E_GS = min_s [−cᵀs − Σ_j |f_j|]`, the summed layer at `t = sign f`
//!   (`sign 0 = +1`).
//!
//! # Gray-code enumeration and chunking
//! State number `k` is the Gray code `g = k ⊕ (k >> 1)`; bit `i` of `g` set means `s_i = +1`.
//! Consecutive states differ in one spin (bit `trailing_zeros(k)`), so flipping `s_i` to `s`
//! updates the fields in `O(m)`: `f += 2 s R_i`, and `cᵀs += 2 s c_i`. Memory is `O(n·m)`,
//! independent of the number of states.
//!
//! The state space is cut into a fixed number of aligned chunks of `2^L` states, with `L`
//! chosen from `n` only (`L = max(min(n, 10), n − 6)`: at most 64 chunks). Each chunk
//! computes the fields of its first state directly, walks its own Gray sequence, and returns a
//! partial result; the partials are combined in chunk order (log-sum-exp for `log Z`). The
//! work inside a chunk is sequential, so every result is bit-identical whatever the rayon
//! thread count.
//!
//! # Limit and cost
//! Enumeration is refused above [`MAX_ENUM_BITS`] = 30 spins on the smaller layer
//! ([`ExactError::TooLarge`]). The production walks ([`log_z`], [`ground_state`],
//! [`model_average_fast`]) run their loops at the active SIMD level
//! ([`rapid_core::kernels::at_level`]; the same bits at every level, tested). Measured on the
//! 2-core development machine (AMD EPYC Zen 4, family 25 model 17, level `avx512`, release
//! build, one thread, CPU time per call, V = 16, H = 1000, `W ~ 0.3·N(0, 1)`, old and new
//! binaries alternated on a loaded machine):
//!
//! | per call (ns per (state, summed unit) term) | no biases | biases | `h` enumerated |
//! |---|---|---|---|
//! | [`log_z`] | 52–57 ms (0.8) | 105–115 ms (1.7) | 116–118 ms (1.8) |
//! | [`ground_state`] | 3.9–5.0 ms (0.07) | 7.3–9.3 ms (0.13) | 8.8–11 ms (0.15) |
//! | [`model_average_fast`] | 20–23 ms (0.33) | 40–54 ms (0.7) | 43–46 ms (0.7) |
//!
//! against 740–840 ms, 1.50–1.57 s, 1.52–1.53 s ([`log_z`], `libm` `exp` + `log1p` per
//! term: 13–16×, 14×, 13× faster), 68–69 ms, 66–69 ms, 68 ms ([`ground_state`], sequential
//! `f64` sums: 9×, 4–4.7×, 3.3–3.4×) and 46–57 ms, 89 ms, 98–99 ms ([`model_average_fast`]
//! compiled for SSE2 with its lane accumulators in memory: 2.0–2.8×, 1.7–2.2×, 2.2–2.3×)
//! before (two alternated repeats each). [`ground_state`]'s walk in `f32` (instead of `f64`,
//! re-evaluating the same candidates exactly) took 1.5×, 1.8×, 1.7× less CPU time than the
//! `f64` walk (7.0–10 ms, 15–20 ms, 14–19 ms per call; three alternated repeats, `perf stat`
//! task clock, on the loaded machine). Without biases the `s ↔ −s` symmetry halves the
//! states. [`model_average`] (the test oracle, `libm` `tanh`, `n` multiply-adds per term,
//! two passes) is unchanged: about 30–100 ns per term (2–6.5 s here). At the limit, `n = 30`
//! with `m = 30` (padded to 32): [`log_z`] about a minute and [`ground_state`] about 10 s by
//! the per-term costs above (estimated, not measured), [`model_average`] ≈ 20 min; with
//! `m = 1000`, 30 times that.
//!
//! # The training path
//! [`model_average_fast`] computes the same averages in `f32` for the exact-gradient baseline
//! (Bars 4×4: V = 16, H = 1000, no biases, once per update), keeping `log Z` and the
//! normalisation in `f64`: about 20 ms of CPU time per call at level `avx512` (about 10 ms
//! on two cores), with a max abs error on `⟨v h⟩` of 2e−8 (`W ~ N(0, 0.01²)`) and 1.2e−5
//! (`W ~ 0.3·N(0, 1)`) against [`model_average`], and `log Z` within 1.1e−5. See its docs for
//! how. `rapid reproduce all --seeds 1 --epochs 30` (which trains it and computes the ground
//! state every epoch) went from 28.0–32.4 s to 18.8–20.3 s of wall time (1.4–1.7×; CPU
//! time 31.9–32.4 s → 18.7–19.9 s, 1.6–1.7×; three alternated runs on the loaded machine),
//! with every metric of its `runs.csv` unchanged; the rest of its time is the other methods'
//! training and sampling kernels.
//!
//! # Layout
//! * `mod.rs` (this file): [`Bipartite`], [`ExactError`], [`MAX_ENUM_BITS`] and the internal
//!   view `Net` shared by both paths.
//! * `gray.rs`: Gray-code order, the spin of a state code and the fixed chunking (`Plan`).
//! * `oracle.rs`: the public `f64` functions [`log_z`], [`free_energy`], [`mean_nll`],
//!   [`ground_state`], [`model_average`], and the straightforward enumeration (`libm` per
//!   term, incremental fields) that is the tests' oracle and [`model_average`]'s code.
//! * `fast.rs`: the `f32` training path [`model_average_fast`] and its sweep kernels, and the
//!   vectorised `f64` walks behind [`log_z`] and [`ground_state`] (`Net64`).
//! * `tests.rs`: tests of both paths against naive enumeration and against each other
//!   (helpers shared by the tests of several files in `test_util.rs`).

use std::fmt;

mod fast;
mod gray;
mod oracle;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use fast::{model_average_fast, FastAverage};
pub use oracle::{
    free_energy, ground_state, log_z, mean_nll, model_average, GroundState, ModelAverage,
};

/// Largest number of spins on the smaller layer that exact enumeration accepts.
pub const MAX_ENUM_BITS: usize = 30;

/// A dense RBM seen by the enumeration: `E(v,h) = −vᵀWh − aᵀv − bᵀh`, ±1 spins.
///
/// Fields are public; the functions of this module panic if the lengths disagree
/// (`w.len() != V·H`, `a.len() != V`, `b.len() != H`): those are caller bugs.
#[derive(Clone, Copy, Debug)]
pub struct Bipartite<'a> {
    /// Number of visible spins `V`.
    pub visible: usize,
    /// Number of hidden spins `H`.
    pub hidden: usize,
    /// Couplings `W`, V×H row-major (as formed by `RaModel::weights`).
    pub w: &'a [f32],
    /// Visible biases `a` (V), if any.
    pub a: Option<&'a [f32]>,
    /// Hidden biases `b` (H), if any.
    pub b: Option<&'a [f32]>,
}

impl<'a> Bipartite<'a> {
    /// Number of spins enumerated: `min(V, H)`.
    pub fn enumerated_bits(&self) -> usize {
        self.visible.min(self.hidden)
    }

    fn net(&self) -> Net<'a, f32> {
        let net =
            Net { visible: self.visible, hidden: self.hidden, w: self.w, a: self.a, b: self.b };
        net.check();
        net
    }
}

/// Why an exact computation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExactError {
    /// The smaller layer has `bits` spins, more than `limit` ([`MAX_ENUM_BITS`]).
    TooLarge {
        /// Spins on the smaller layer.
        bits: usize,
        /// The largest accepted.
        limit: usize,
    },
}

impl fmt::Display for ExactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExactError::TooLarge { bits, limit } => write!(
                f,
                "exact enumeration refused: the smaller layer has {bits} spins (2^{bits} states), \
                 the limit is {limit}"
            ),
        }
    }
}

impl std::error::Error for ExactError {}

// ---------------------------------------------------------------------------------------------
// Internals shared by the oracle and the fast path (generic over the value type so that tests
// can perturb weights in f64).

/// A view of a dense RBM with values of type `T` (`f32` from [`Bipartite`], `f64` in tests).
#[derive(Clone, Copy, Debug)]
struct Net<'a, T> {
    visible: usize,
    hidden: usize,
    w: &'a [T],
    a: Option<&'a [T]>,
    b: Option<&'a [T]>,
}

impl<T: Copy + Into<f64> + Sync> Net<'_, T> {
    fn check(&self) {
        assert_eq!(self.w.len(), self.visible * self.hidden, "w must have V·H entries");
        if let Some(a) = self.a {
            assert_eq!(a.len(), self.visible, "a must have V entries");
        }
        if let Some(b) = self.b {
            assert_eq!(b.len(), self.hidden, "b must have H entries");
        }
    }

    fn ensure_small(&self) -> Result<(), ExactError> {
        let bits = self.visible.min(self.hidden);
        if bits > MAX_ENUM_BITS {
            return Err(ExactError::TooLarge { bits, limit: MAX_ENUM_BITS });
        }
        Ok(())
    }
}

/// `x` is `rows×cols` row-major; returns its `cols×rows` transpose.
fn transpose<T: Copy + Default>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut y = vec![T::default(); rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            y[c * rows + r] = x[r * cols + c];
        }
    }
    y
}
