//! Exact enumeration for small models (DESIGN.md §1 and §3 "Exact"): `log Z`, the negative
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
//! ([`ExactError::TooLarge`]). Measured on the 2-core development machine (release build):
//! one (state, field) term of `log Z` costs about 20 ns on one core (`libm` `exp` + `log1p`),
//! halved without biases by the `s ↔ −s` symmetry; [`model_average`] makes a second pass that
//! costs about 40 ns per term (`tanh`, the weight, `n` multiply-adds). For V = 16, H = 1000
//! without biases: [`log_z`] 0.3–0.4 s, [`model_average`] 1.4–2.1 s, [`ground_state`] 30 ms.
//! At the limit, `n = 30` with `m = 30` takes minutes ([`log_z`] ≈ 5 min, [`model_average`]
//! ≈ 20 min), with `m = 1000` hours.
//!
//! # The training path
//! [`model_average_fast`] computes the same averages in `f32` for the exact-gradient baseline
//! (Bars 4×4: V = 16, H = 1000, no biases, once per update), keeping `log Z` and the
//! normalisation in `f64`. Measured with the default portable build (x86-64 baseline, SSE2):
//! about 22–24 ms per call on the 2-core development machine (44 ms of CPU time), with a max
//! abs error on `⟨v h⟩` of 2e−8 (`W ~ N(0, 0.01²)`) and 1.2e−5 (`W ~ 0.3·N(0, 1)`) against
//! [`model_average`], and `log Z` within 1.1e−5. See its docs for how.

use std::fmt;

use rapid_core::num::log_2cosh_f64;
use rayon::prelude::*;

/// Largest number of spins on the smaller layer that exact enumeration accepts.
pub const MAX_ENUM_BITS: usize = 30;

/// Chunks have at least `2^LOCAL_MIN` states (unless there are fewer states)…
const LOCAL_MIN: usize = 10;
/// …and there are at most `2^CHUNK_LOG_MAX` chunks.
const CHUNK_LOG_MAX: usize = 6;

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

/// The exact ground state.
#[derive(Clone, Debug, PartialEq)]
pub struct GroundState {
    /// `E_GS = min_{v,h} E(v,h)`.
    pub energy: f64,
    /// Visible spins of a minimiser (±1).
    pub v: Vec<f32>,
    /// Hidden spins of that minimiser (±1).
    pub h: Vec<f32>,
}

/// Exact model averages (`f64`).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelAverage {
    /// `⟨v_i h_α⟩_model`, V×H row-major.
    pub vh: Vec<f64>,
    /// `⟨v_i⟩_model` (V).
    pub v: Vec<f64>,
    /// `⟨h_α⟩_model` (H).
    pub h: Vec<f64>,
    /// `log Z`.
    pub log_z: f64,
}

/// Model averages from [`model_average_fast`] (`f32`, `log Z` in `f64`); the buffers are
/// reused across calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FastAverage {
    /// `⟨v_i h_α⟩_model`, V×H row-major.
    pub vh: Vec<f32>,
    /// `⟨v_i⟩_model` (V).
    pub v: Vec<f32>,
    /// `⟨h_α⟩_model` (H).
    pub h: Vec<f32>,
    /// `log Z`.
    pub log_z: f64,
}

impl FastAverage {
    /// Zeroed buffers for a V×H model.
    pub fn new(visible: usize, hidden: usize) -> Self {
        FastAverage {
            vh: vec![0.0; visible * hidden],
            v: vec![0.0; visible],
            h: vec![0.0; hidden],
            log_z: 0.0,
        }
    }
}

/// `log Z = log Σ_{v,h} e^{−E(v,h)}`, exactly (in `f64`).
///
/// # Errors
/// [`ExactError::TooLarge`] if `min(V, H) > MAX_ENUM_BITS`.
///
/// # Panics
/// If the lengths of `m`'s slices disagree with its sizes.
pub fn log_z(m: &Bipartite) -> Result<f64, ExactError> {
    let net = m.net();
    net.ensure_small()?;
    Ok(Oriented::new(&net).log_z())
}

/// Free energy `F(v) = −aᵀv − Σ_α log 2cosh φ_α`, `φ = Wᵀv + b` (so `P(v) = e^{−F(v)}/Z`),
/// in `f64`. Any `v` values are accepted (0 is a neutral spin).
///
/// # Panics
/// If `v.len() != V` or the lengths of `m`'s slices disagree with its sizes.
pub fn free_energy(m: &Bipartite, v: &[f32]) -> f64 {
    m.net().free_energy(v)
}

/// Mean negative log-likelihood of `data` (rows of `V` ±1 values): `mean F(v) + log Z`.
/// Returns NaN for empty data.
///
/// # Errors
/// [`ExactError::TooLarge`] if `min(V, H) > MAX_ENUM_BITS`.
///
/// # Panics
/// If `data.len()` is not a multiple of `V`, or the lengths of `m`'s slices disagree with its
/// sizes.
pub fn mean_nll(m: &Bipartite, data: &[f32]) -> Result<f64, ExactError> {
    m.net().mean_nll(data)
}

/// The exact ground state `min_{v,h} E(v,h)`, found by enumerating the smaller layer; the
/// other layer takes the sign of its field (`sign 0 = +1`).
///
/// Ties: the first minimiser in enumeration order (chunk by chunk, Gray order inside a
/// chunk, the state with all enumerated spins `−1` first). Energies are compared as computed
/// with incremental `f64` fields, so states that are degenerate in exact arithmetic (such as
/// `v` and `−v` without biases) may be separated by rounding. `energy` is recomputed from the
/// minimiser's fields.
///
/// # Errors
/// [`ExactError::TooLarge`] if `min(V, H) > MAX_ENUM_BITS`.
///
/// # Panics
/// If the lengths of `m`'s slices disagree with its sizes.
pub fn ground_state(m: &Bipartite) -> Result<GroundState, ExactError> {
    let net = m.net();
    net.ensure_small()?;
    Ok(Oriented::new(&net).ground_state())
}

/// Exact model averages `⟨v_i h_α⟩`, `⟨v_i⟩`, `⟨h_α⟩` and `log Z`, in `f64`: the test oracle
/// for the gradient. Two passes: `log Z`, then the weighted sums with `P(s) = e^{lw(s) − log Z}`.
///
/// Enumerating `v` (`V ≤ H`): `⟨v_i h_α⟩ = Σ_v P(v) v_i tanh φ_α`, `⟨h_α⟩ = Σ_v P(v) tanh φ_α`.
/// Enumerating `h` (`H < V`): `⟨v_i h_α⟩ = Σ_h P(h) tanh ψ_i h_α`, `⟨v_i⟩ = Σ_h P(h) tanh ψ_i`.
///
/// # Errors
/// [`ExactError::TooLarge`] if `min(V, H) > MAX_ENUM_BITS`.
///
/// # Panics
/// If the lengths of `m`'s slices disagree with its sizes.
pub fn model_average(m: &Bipartite) -> Result<ModelAverage, ExactError> {
    m.net().model_average()
}

/// The training path: the same averages as [`model_average`], accumulated in `f32` (`log Z`
/// and the normalisation in `f64`), written into `out` (its vectors are resized to V×H, V, H
/// and overwritten).
///
/// How it is fast (one pass over the states, no `unsafe`, loops that autovectorise on
/// baseline x86-64):
/// * **Symmetry.** Without biases (absent or all zero) `P(s) = P(−s)` and `s_i tanh f_j` is
///   even, so only the half with the last enumerated spin at `+1` is walked; `⟨v⟩ = ⟨h⟩ = 0`.
/// * **One exponential per field, on even states only.** `e = e^{−2|f|}` by range reduction
///   and a polynomial in plain `f32` arithmetic (absolute error ≤ 1.3e−7, tested), then
///   `tanh f = sign(f)(1 − e)/(1 + e)` and `log 2cosh f = |f| + log(1 + e)`, the logs summed
///   as the log of a product kept in 16 `f32` lanes (renormalised by exponent bits). The odd
///   state that follows differs by spin 0 only, and `e^{−2σf'} = e·e^{−2σδ}` (`σ = sign f`,
///   `δ = ±2R_0`) comes from a table: no exponential (used when `|2R_0j| ≤ 12`).
/// * **Gray-code blocks.** In an aligned block of `2^ℓ` consecutive states, spins `ℓ, ℓ+1,…`
///   are constant, so `Σ_s p s_i tanh f` is assembled from block sums of `p·tanh f`: one pass
///   per 4 states adds them to spins 0, 1, 2 and forms their sum, and the higher spins get
///   pairwise block sums, instead of `n` multiply-adds per state.
/// * **Running reference.** Each chunk weights states by `e^{lw − ref}`, with `ref` raised
///   (and the accumulators rescaled) whenever `lw` exceeds it by 32, so `f32` never
///   overflows; states 60 below it count as 0 and no subnormal number is formed (they are
///   slow on x86).
/// * **Exact anchors.** Every 16 states the `f32` fields are rounded afresh from `f64` ones,
///   so `f32` rounding never accumulates over more than 15 flips.
/// * Both cores, via fixed chunks as in the oracle (bit-identical for any thread count).
///
/// Accuracy against [`model_average`]: max abs error on `⟨v h⟩`, `⟨v⟩`, `⟨h⟩` ≤ 2.1e−6 on
/// the unit-test models (asserted ≤ 1e−5), 1.2e−5 for V = 16, H = 1000, `W ~ 0.3·N(0, 1)`.
/// Cost: about 22–24 ms per call for V = 16, H = 1000 on two cores (default build); twice
/// that with biases (no symmetry).
///
/// # Errors
/// [`ExactError::TooLarge`] if `min(V, H) > MAX_ENUM_BITS`; `out` is then untouched.
///
/// # Panics
/// If the lengths of `m`'s slices disagree with its sizes.
pub fn model_average_fast(m: &Bipartite, out: &mut FastAverage) -> Result<(), ExactError> {
    let net = m.net();
    net.ensure_small()?;
    FastNet::new(&net).model_average(out);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Internals (generic over the value type so that tests can perturb weights in f64).

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

    fn free_energy(&self, v: &[f32]) -> f64 {
        let (nv, nh) = (self.visible, self.hidden);
        assert_eq!(v.len(), nv, "v must have V entries");
        let mut fe = 0.0;
        if let Some(a) = self.a {
            fe -= a.iter().zip(v).map(|(&ai, &vi)| ai.into() * f64::from(vi)).sum::<f64>();
        }
        for al in 0..nh {
            let mut phi = self.b.map_or(0.0, |b| b[al].into());
            for (i, &vi) in v.iter().enumerate() {
                phi += self.w[i * nh + al].into() * f64::from(vi);
            }
            fe -= log_2cosh_f64(phi);
        }
        fe
    }

    fn mean_nll(&self, data: &[f32]) -> Result<f64, ExactError> {
        self.ensure_small()?;
        let nv = self.visible;
        assert!(
            if nv == 0 { data.is_empty() } else { data.len().is_multiple_of(nv) },
            "data must have V entries per row"
        );
        let rows = data.len().checked_div(nv).unwrap_or(0);
        if rows == 0 {
            return Ok(f64::NAN);
        }
        let log_z = Oriented::new(self).log_z();
        let fe: Vec<f64> = data.par_chunks(nv).map(|v| self.free_energy(v)).collect();
        Ok(fe.iter().sum::<f64>() / rows as f64 + log_z)
    }

    fn model_average(&self) -> Result<ModelAverage, ExactError> {
        self.ensure_small()?;
        Ok(Oriented::new(self).model_average())
    }
}

/// `k`-th Gray code.
#[inline]
fn gray(k: u64) -> u64 {
    k ^ (k >> 1)
}

/// Spin `i` of the state `code` (bit set: `+1`).
#[inline]
fn spin(code: u64, i: usize) -> f64 {
    if (code >> i) & 1 == 1 {
        1.0
    } else {
        -1.0
    }
}

/// The fixed chunking of `2^bits` states (plus `fixed` bits OR-ed into every code).
#[derive(Clone, Copy, Debug)]
struct Plan {
    bits: usize,
    local: usize,
    fixed: u64,
}

impl Plan {
    fn new(bits: usize, fixed: u64) -> Self {
        Plan { bits, local: bits.min(LOCAL_MIN).max(bits.saturating_sub(CHUNK_LOG_MAX)), fixed }
    }

    fn chunks(self) -> usize {
        1 << (self.bits - self.local)
    }

    fn start(self, chunk: usize) -> u64 {
        gray((chunk as u64) << self.local) | self.fixed
    }
}

/// A running `log Σ e^{x}`: `max + ln(sum)`.
#[derive(Clone, Copy, Debug)]
struct Lse {
    max: f64,
    sum: f64,
}

impl Lse {
    const EMPTY: Lse = Lse { max: f64::NEG_INFINITY, sum: 0.0 };

    fn push(&mut self, x: f64) {
        if x > self.max {
            self.sum = self.sum * (self.max - x).exp() + 1.0;
            self.max = x;
        } else {
            self.sum += (x - self.max).exp();
        }
    }

    fn merge(self, o: Lse) -> Lse {
        if o.max > self.max {
            Lse { max: o.max, sum: o.sum + self.sum * (self.max - o.max).exp() }
        } else if o.max == f64::NEG_INFINITY {
            self
        } else {
            Lse { max: self.max, sum: self.sum + o.sum * (o.max - self.max).exp() }
        }
    }

    fn ln(self) -> f64 {
        self.max + self.sum.ln()
    }
}

/// The model seen from the enumerated side, in `f64`: `n` enumerated spins `s`, `m` summed
/// spins `t`, `r` the `n×m` coupling, `c` and `d` the biases of `s` and `t`.
struct Oriented {
    n: usize,
    m: usize,
    r: Vec<f64>,
    c: Vec<f64>,
    d: Vec<f64>,
    /// `true` when `s = h` (`H < V`).
    transposed: bool,
}

/// Partial sums of one chunk for the model average.
struct Moments {
    cross: Vec<f64>,
    s: Vec<f64>,
    t: Vec<f64>,
}

impl Oriented {
    fn new<T: Copy + Into<f64>>(net: &Net<'_, T>) -> Self {
        let (nv, nh) = (net.visible, net.hidden);
        let bias = |x: Option<&[T]>, len: usize| {
            x.map_or_else(|| vec![0.0; len], |x| x.iter().map(|&y| y.into()).collect())
        };
        if nv <= nh {
            Oriented {
                n: nv,
                m: nh,
                r: net.w.iter().map(|&x| x.into()).collect(),
                c: bias(net.a, nv),
                d: bias(net.b, nh),
                transposed: false,
            }
        } else {
            let mut r = vec![0.0; nv * nh];
            for i in 0..nv {
                for al in 0..nh {
                    r[al * nv + i] = net.w[i * nh + al].into();
                }
            }
            Oriented { n: nh, m: nv, r, c: bias(net.b, nh), d: bias(net.a, nv), transposed: true }
        }
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.r[i * self.m..(i + 1) * self.m]
    }

    /// Fields `f = Rᵀs + d` of the state `code`, computed directly; returns `cᵀs`.
    fn fields(&self, code: u64, f: &mut [f64]) -> f64 {
        f.copy_from_slice(&self.d);
        let mut cs = 0.0;
        for i in 0..self.n {
            let s = spin(code, i);
            cs += s * self.c[i];
            for (fj, &r) in f.iter_mut().zip(self.row(i)) {
                *fj += s * r;
            }
        }
        cs
    }

    /// Walks chunk `chunk` of `plan` in Gray order, calling `visit(code, fields, cᵀs)`.
    fn walk(&self, plan: Plan, chunk: usize, mut visit: impl FnMut(u64, &[f64], f64)) {
        let mut f = vec![0.0; self.m];
        let mut code = plan.start(chunk);
        let mut cs = self.fields(code, &mut f);
        visit(code, &f, cs);
        for j in 1..1u64 << plan.local {
            let i = j.trailing_zeros() as usize;
            code ^= 1 << i;
            let two_s = 2.0 * spin(code, i);
            for (fj, &r) in f.iter_mut().zip(self.row(i)) {
                *fj += two_s * r;
            }
            cs += two_s * self.c[i];
            visit(code, &f, cs);
        }
    }

    /// `log` of the unnormalised weight of a state: `cᵀs + Σ_j log 2cosh f_j`.
    fn log_weight(f: &[f64], cs: f64) -> f64 {
        cs + f.iter().map(|&x| log_2cosh_f64(x)).sum::<f64>()
    }

    /// `log Z`. Without biases `s ↔ −s` is a symmetry, so only the states with the last
    /// spin at `+1` are walked and `ln 2` is added.
    fn log_z(&self) -> f64 {
        let symmetric = self.n > 0 && self.c.iter().chain(&self.d).all(|&x| x == 0.0);
        let (plan, half) = if symmetric {
            (Plan::new(self.n - 1, 1 << (self.n - 1)), std::f64::consts::LN_2)
        } else {
            (Plan::new(self.n, 0), 0.0)
        };
        let parts: Vec<Lse> = (0..plan.chunks())
            .into_par_iter()
            .map(|chunk| {
                let mut acc = Lse::EMPTY;
                self.walk(plan, chunk, |_, f, cs| acc.push(Self::log_weight(f, cs)));
                acc
            })
            .collect();
        parts.into_iter().fold(Lse::EMPTY, Lse::merge).ln() + half
    }

    fn model_average(&self) -> ModelAverage {
        let (n, m) = (self.n, self.m);
        let log_z = self.log_z();
        let plan = Plan::new(n, 0);
        let parts: Vec<Moments> = (0..plan.chunks())
            .into_par_iter()
            .map(|chunk| {
                let mut mo = Moments { cross: vec![0.0; n * m], s: vec![0.0; n], t: vec![0.0; m] };
                let mut t = vec![0.0; m];
                self.walk(plan, chunk, |code, f, cs| {
                    let p = (Self::log_weight(f, cs) - log_z).exp();
                    for (tj, &fj) in t.iter_mut().zip(f) {
                        *tj = fj.tanh();
                    }
                    for (mt, &tj) in mo.t.iter_mut().zip(&t) {
                        *mt += p * tj;
                    }
                    for i in 0..n {
                        let ps = p * spin(code, i);
                        mo.s[i] += ps;
                        for (x, &tj) in mo.cross[i * m..(i + 1) * m].iter_mut().zip(&t) {
                            *x += ps * tj;
                        }
                    }
                });
                mo
            })
            .collect();
        let mut total = Moments { cross: vec![0.0; n * m], s: vec![0.0; n], t: vec![0.0; m] };
        for part in &parts {
            add_into(&mut total.cross, &part.cross);
            add_into(&mut total.s, &part.s);
            add_into(&mut total.t, &part.t);
        }
        let (vh, v, h) = if self.transposed {
            (transpose(&total.cross, n, m), total.t, total.s)
        } else {
            (total.cross, total.s, total.t)
        };
        ModelAverage { vh, v, h, log_z }
    }

    fn ground_state(&self) -> GroundState {
        let plan = Plan::new(self.n, 0);
        let parts: Vec<(f64, u64)> = (0..plan.chunks())
            .into_par_iter()
            .map(|chunk| {
                let mut best = (f64::INFINITY, plan.start(chunk));
                self.walk(plan, chunk, |code, f, cs| {
                    let e = -cs - f.iter().map(|x| x.abs()).sum::<f64>();
                    if e < best.0 {
                        best = (e, code);
                    }
                });
                best
            })
            .collect();
        let mut best = parts[0];
        for &p in &parts[1..] {
            if p.0 < best.0 {
                best = p;
            }
        }
        let code = best.1;
        let mut f = vec![0.0; self.m];
        let cs = self.fields(code, &mut f);
        let energy = -cs - f.iter().map(|x| x.abs()).sum::<f64>();
        let s: Vec<f32> = (0..self.n).map(|i| spin(code, i) as f32).collect();
        let t: Vec<f32> = f.iter().map(|&x| if x >= 0.0 { 1.0 } else { -1.0 }).collect();
        let (v, h) = if self.transposed { (t, s) } else { (s, t) };
        GroundState { energy, v, h }
    }
}

fn add_into(acc: &mut [f64], x: &[f64]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += b;
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

// ---------------------------------------------------------------------------------------------
// The fast f32 path.

/// Lanes of the reductions (four SSE registers: independent chains hide the latency).
const LANES: usize = 16;
/// Groups of `LANES` fields between folds of the lane reductions: the `f32` partial sums
/// (at most 32 terms each) are added into `f64` lanes, and the `Π(1 + e)` lanes are
/// renormalised (factors in `[1, 2]`: a lane stays below `2^32`).
const FOLD_GROUPS: usize = 32;
/// Every `2^ANCHOR_BITS` states the `f32` fields are rounded afresh from exact (`f64`) ones,
/// so that the rounding of the incremental `f32` updates never accumulates over more than
/// 15 flips (unchecked, `f32` drift over a 1024-state chunk gave 6e−5 errors on `⟨v h⟩`).
const ANCHOR_BITS: usize = 4;
/// The reference log-weight is raised when a state exceeds it by this much.
const RESCALE_MARGIN: f64 = 32.0;
/// States with a log-weight this far below the reference get weight 0.
const NEGLIGIBLE: f64 = 60.0;
/// Accumulators that shrink below this when the reference is raised are set to 0.
const TINY: f32 = 1e-30;
/// `e^{−2a}` is computed for `a ≤ CLAMP`, so `e ≥ e^{−60}` and every product formed with it
/// stays a normal `f32` (subnormal arithmetic is slow on x86); the error is below `e^{−60}`.
const CLAMP: f32 = 30.0;

/// `e^{−2a}` for `a ≥ 0`, in plain `f32` arithmetic that autovectorises (no libm, no
/// branches): `x = −2a·log₂e` (with `a` clamped to [`CLAMP`]), `x = k + r` with `k` the
/// nearest integer (added to 1.5·2²³, it lands in the low mantissa bits) and `|r| ≤ 1/2`,
/// `2^r` by a degree-5 minimax polynomial with `p(0) = 1` (relative error 9e−8 in exact
/// arithmetic), `2^k` written into the exponent bits. Measured (test `fast_exp_is_accurate`):
/// absolute error ≤ 1.3e−7 on `[0, ∞)`; relative error ≤ 2.1e−7 for `a ≤ 1/2`, ≤ 5.8e−7 for
/// `a ≤ 4` and ≤ 3.6e−6 up to the clamp (the rounding of `x` grows with `|x|`). `e(0) = 1`
/// exactly, so `tanh 0 = 0`.
#[inline(always)]
fn exp_neg2(a: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: u32 = 0x4B40_0000;
    // Minimax coefficients (c₁ is close to, but not, ln 2).
    #[allow(clippy::approx_constant)]
    const C: [f32; 6] =
        [1.0, 0.693_147, 0.240_222_42, 0.055_507_336, 0.009_671_513, 0.001_326_472_7];
    let a = if a < CLAMP { a } else { CLAMP };
    let x = a * (-2.0 * std::f32::consts::LOG2_E);
    let q = x + MAGIC;
    let r = x - (q - MAGIC);
    let p = ((((C[5] * r + C[4]) * r + C[3]) * r + C[2]) * r + C[1]) * r + C[0];
    let scale = f32::from_bits(q.to_bits().wrapping_add(127u32.wrapping_sub(MAGIC_BITS)) << 23);
    p * scale
}

/// A group of `LANES` values (from `chunks_exact(LANES)`).
#[inline(always)]
fn lanes(x: &[f32]) -> &[f32; LANES] {
    x.try_into().expect("a group of LANES values")
}

/// `LANES` running products of positive `f32` factors, each kept as `prod·2^exp`: [`renorm`]
/// (vectorised integer operations) moves the binary exponents into `exp`, so a lane never
/// overflows or underflows as long as the factors between two calls multiply to a normal
/// number.
///
/// [`renorm`]: LaneProd::renorm
#[derive(Clone, Copy, Debug)]
struct LaneProd {
    prod: [f32; LANES],
    exp: [i32; LANES],
}

impl LaneProd {
    const ONE: LaneProd = LaneProd { prod: [1.0; LANES], exp: [0; LANES] };

    #[inline(always)]
    fn renorm(&mut self) {
        for (p, e) in self.prod.iter_mut().zip(self.exp.iter_mut()) {
            let bits = p.to_bits();
            *e += (bits >> 23) as i32 - 127;
            *p = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
        }
    }

    /// `ln` of the whole product (call after [`LaneProd::renorm`]).
    fn ln(&self) -> f64 {
        let mant: f64 = self.prod.iter().map(|&p| f64::from(p)).product();
        let exp: i64 = self.exp.iter().map(|&e| i64::from(e)).sum();
        exp as f64 * std::f64::consts::LN_2 + mant.ln()
    }
}

/// A state's pass over the fields: optionally `f += ra + rb` first (`±2R_i` rows), then
/// `e = e^{−2|f|}` and `t = tanh f = sign(f)(1 − e)/(1 + e)`; returns
/// `Σ_j log 2cosh f_j = Σ|f| + log Π(1 + e)`. Two simple loops, so that each autovectorises:
/// an element-wise map writing `t` and `e`, then the two reductions in `LANES` lanes.
#[inline(always)]
fn sweep<const UPDATE: bool>(
    f: &mut [f32],
    ra: &[f32],
    rb: &[f32],
    t: &mut [f32],
    e: &mut [f32],
) -> f64 {
    for ((fj, (&a, &b)), (tj, ej)) in
        f.iter_mut().zip(ra.iter().zip(rb)).zip(t.iter_mut().zip(e.iter_mut()))
    {
        let mut x = *fj;
        if UPDATE {
            x = x + a + b;
            *fj = x;
        }
        let y = exp_neg2(x.abs());
        *ej = y;
        let th = (1.0 - y) / (1.0 + y);
        *tj = f32::from_bits(th.to_bits() | (x.to_bits() & SIGN));
    }
    let block = LANES * FOLD_GROUPS;
    let mut sum = [0.0f64; LANES];
    let mut prod = LaneProd::ONE;
    for (fb, eb) in f.chunks(block).zip(e.chunks(block)) {
        let mut sum_abs = [0.0f32; LANES];
        for (fc, ec) in fb.chunks_exact(LANES).zip(eb.chunks_exact(LANES)) {
            let (fc, ec) = (lanes(fc), lanes(ec));
            for l in 0..LANES {
                sum_abs[l] += fc[l].abs();
                prod.prod[l] *= 1.0 + ec[l];
            }
        }
        add_lanes(&mut sum, &sum_abs);
        prod.renorm();
    }
    sum.iter().sum::<f64>() + prod.ln()
}

/// `acc += k·row` in `f64`.
#[inline]
fn add_row(acc: &mut [f64], k: f64, row: &[f32]) {
    for (a, &r) in acc.iter_mut().zip(row) {
        *a += k * f64::from(r);
    }
}

/// `acc += x`, lane by lane, in `f64`.
#[inline(always)]
fn add_lanes(acc: &mut [f64; LANES], x: &[f32; LANES]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += f64::from(b);
    }
}

/// The pass of an odd state, which differs from the preceding even state (fields `f`,
/// `e = e^{−2|f|}`) only by spin 0: `f' = f + δ`, `δ = ±2R_0`. With `σ = sign f`,
/// `u = e^{−2σf'} = e·g` where `g = e^{−2σδ}` is tabulated (`g_pos` for `σ = +1`, `g_neg`
/// for `σ = −1`), so no exponential is needed: `r = 1/(1 + u)`, `tanh f' = σ(1 − u)r`, and
/// `log 2cosh f' = σf' + log(1 + u) = |f| + σδ − log r` (valid whatever the sign of `f'`).
/// `r ≥ 1/(1 + e^{2|δ|max})`, so `fold` groups keep a lane product above `2^−100`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sweep_odd(
    f: &[f32],
    delta: &[f32],
    e: &[f32],
    g_pos: &[f32],
    g_neg: &[f32],
    t: &mut [f32],
    r: &mut [f32],
    fold: usize,
) -> f64 {
    for ((tj, rj), ((&x, &ej), (&gp, &gn))) in
        t.iter_mut().zip(r.iter_mut()).zip(f.iter().zip(e).zip(g_pos.iter().zip(g_neg)))
    {
        let mask = ((x.to_bits() as i32) >> 31) as u32;
        let g = f32::from_bits((gp.to_bits() & !mask) | (gn.to_bits() & mask));
        let u = ej * g;
        let rr = 1.0 / (1.0 + u);
        *rj = rr;
        *tj = f32::from_bits(((1.0 - u) * rr).to_bits() ^ (x.to_bits() & SIGN));
    }
    let block = LANES * fold.min(FOLD_GROUPS);
    let mut sum = [0.0f64; LANES];
    let mut prod = LaneProd::ONE;
    for ((fb, db), rb) in f.chunks(block).zip(delta.chunks(block)).zip(r.chunks(block)) {
        let mut part = [0.0f32; LANES];
        let groups = fb.chunks_exact(LANES).zip(db.chunks_exact(LANES));
        for ((fc, dc), rc) in groups.zip(rb.chunks_exact(LANES)) {
            let (fc, dc, rc) = (lanes(fc), lanes(dc), lanes(rc));
            for l in 0..LANES {
                let sign = fc[l].to_bits() & SIGN;
                part[l] += fc[l].abs() + f32::from_bits(dc[l].to_bits() ^ sign);
                prod.prod[l] *= rc[l];
            }
        }
        add_lanes(&mut sum, &part);
        prod.renorm();
    }
    sum.iter().sum::<f64>() - prod.ln()
}

/// The sign bit of an `f32`.
const SIGN: u32 = 0x8000_0000;
/// The pair trick is used when `|δ| = |2R_0j| ≤ PAIR_DELTA_MAX` for all `j`.
const PAIR_DELTA_MAX: f64 = 12.0;

/// Tables of the pair trick: `g[0] = e^{−4R_0}`, `g[1] = e^{+4R_0}`; `fold` as in
/// [`sweep_odd`].
struct PairTables {
    g: [Vec<f32>; 2],
    fold: usize,
}

/// The model for the fast path: `f32`, the summed side padded to `mp` (a multiple of
/// `LANES`) with zero couplings; `rows[2i + 1] = 2R_i`, `rows[2i] = −2R_i` (the field change
/// when spin `i` flips to `+1` or `−1`).
struct FastNet {
    n: usize,
    m: usize,
    mp: usize,
    rows: Vec<f32>,
    zero: Vec<f32>,
    c: Vec<f64>,
    d: Vec<f64>,
    pair: Option<PairTables>,
    transposed: bool,
    symmetric: bool,
}

/// One chunk's partial sums (weights `e^{lw − lref}`).
struct FastChunk {
    cross: Vec<f32>,
    t: Vec<f32>,
    s: Vec<f64>,
    z: f64,
    lref: f64,
}

/// Work buffers of one chunk.
struct FastScratch {
    f: Vec<f32>,
    /// `tanh f` of the states of the current quad (state `j` in `t[j mod 4]`).
    t: [Vec<f32>; 4],
    /// `e^{−2|f|}` of the even state.
    e: Vec<f32>,
    /// Scratch of the odd pass.
    r: Vec<f32>,
    /// The block sum being carried up the tree.
    val: Vec<f32>,
    /// `slots[ℓ]`: the sum of the pending left block of level `ℓ` (`slots[0..2]` unused).
    slots: Vec<Vec<f32>>,
}

impl FastNet {
    fn new(net: &Net<'_, f32>) -> Self {
        let (nv, nh) = (net.visible, net.hidden);
        let transposed = nh < nv;
        let (n, m) = if transposed { (nh, nv) } else { (nv, nh) };
        let mp = m.div_ceil(LANES) * LANES;
        let mut rows = vec![0.0f32; 2 * n * mp];
        for i in 0..nv {
            for al in 0..nh {
                let x = 2.0 * net.w[i * nh + al];
                let (r, col) = if transposed { (al, i) } else { (i, al) };
                rows[(2 * r + 1) * mp + col] = x;
                rows[2 * r * mp + col] = -x;
            }
        }
        let bias = |x: Option<&[f32]>, len: usize| {
            let mut y = vec![0.0f64; len];
            if let Some(x) = x {
                for (yi, &xi) in y.iter_mut().zip(x) {
                    *yi = f64::from(xi);
                }
            }
            y
        };
        let (mut c, mut d) = (bias(net.a, nv), bias(net.b, nh));
        if transposed {
            std::mem::swap(&mut c, &mut d);
        }
        d.resize(mp, 0.0);
        let symmetric = n > 0 && c.iter().chain(&d).all(|&x| x == 0.0);
        let pair = if n > usize::from(symmetric) {
            let delta = &rows[mp..2 * mp];
            let max = delta.iter().fold(0.0f64, |a, &x| a.max(f64::from(x).abs()));
            (max <= PAIR_DELTA_MAX).then(|| {
                let bits = (1.0 + (2.0 * max).exp()).log2();
                let fold = ((100.0 / bits) as usize).max(1);
                let g = |sign: f64| {
                    delta.iter().map(move |&x| (sign * 2.0 * f64::from(x)).exp() as f32)
                };
                PairTables { g: [g(-1.0).collect(), g(1.0).collect()], fold }
            })
        } else {
            None
        };
        FastNet { n, m, mp, rows, zero: vec![0.0; mp], c, d, pair, transposed, symmetric }
    }

    /// The field change when spin `i` flips to `s`: `2 s R_i`.
    fn row(&self, i: usize, s: f64) -> &[f32] {
        let k = 2 * i + usize::from(s > 0.0);
        &self.rows[k * self.mp..(k + 1) * self.mp]
    }

    /// `acc = d + Σ_{i ≥ from} s_i R_i` for the state `code`, in `f64`; returns `cᵀs`.
    fn high_fields(&self, code: u64, from: usize, acc: &mut [f64]) -> f64 {
        acc.copy_from_slice(&self.d);
        let mut cs = 0.0;
        for i in 0..self.n {
            let s = spin(code, i);
            cs += s * self.c[i];
            if i >= from {
                add_row(acc, 0.5 * s, self.row(i, 1.0));
            }
        }
        cs
    }

    /// The two possible `Σ_{i < lo} s_i R_i` at the start of an aligned block of `2^lo`
    /// states: there the Gray code has its low `lo` bits clear except perhaps bit `lo − 1`,
    /// so `[0]` has all `s_i = −1` and `[1]` has `s_{lo−1} = +1`.
    fn low_fields(&self, lo: usize) -> [Vec<f64>; 2] {
        let mut low = [vec![0.0f64; self.mp], vec![0.0f64; self.mp]];
        for (k, acc) in low.iter_mut().enumerate() {
            for i in 0..lo {
                let s = if i + 1 == lo && k == 1 { 1.0 } else { -1.0 };
                add_row(acc, 0.5 * s, self.row(i, 1.0));
            }
        }
        low
    }

    fn plan(&self) -> Plan {
        if self.symmetric {
            Plan::new(self.n - 1, 1 << (self.n - 1))
        } else {
            Plan::new(self.n, 0)
        }
    }

    fn chunk(&self, plan: Plan, chunk: usize) -> FastChunk {
        let (n, mp, local) = (self.n, self.mp, plan.local);
        let buf = || vec![0.0f32; mp];
        let mut sc = FastScratch {
            f: buf(),
            t: [buf(), buf(), buf(), buf()],
            e: buf(),
            r: buf(),
            val: buf(),
            slots: vec![buf(); local],
        };
        let mut cross = vec![0.0f32; n * mp];
        let mut s_sum = vec![0.0f64; n];
        let (mut z, mut lref, mut ps) = (0.0f64, f64::NEG_INFINITY, [0.0f64; 4]);
        let mut code = plan.start(chunk);
        // Exact fields: of the spins from `lo` on (constant within an anchor block), and the
        // two possible contributions of the low spins at the start of a block.
        let lo = ANCHOR_BITS.min(local);
        let mut high = vec![0.0f64; mp];
        let mut cs = self.high_fields(code, lo, &mut high);
        let low = self.low_fields(lo);
        // With the pair trick, odd states leave `f` at the even state's fields, and the next
        // even state applies both flips.
        let mut pending: &[f32] = &self.zero;
        for j in 0..1u64 << local {
            let odd = (j & 1) as usize;
            let slot = (j & 3) as usize;
            let i = j.trailing_zeros() as usize;
            if j > 0 {
                code ^= 1 << i;
                cs += 2.0 * spin(code, i) * self.c[i];
            }
            let log_cosh = if j & ((1 << lo) - 1) == 0 {
                if j > 0 {
                    // Spin `i ≥ lo` flipped: `R_i` moves to the exact high fields.
                    add_row(&mut high, 1.0, self.row(i, spin(code, i)));
                }
                debug_assert!(lo == 0 || code & ((1u64 << (lo - 1)) - 1) == 0);
                let low = &low[usize::from(lo > 0 && (code >> (lo - 1)) & 1 == 1)];
                for (fj, (&h, &l)) in sc.f.iter_mut().zip(high.iter().zip(low)) {
                    *fj = (h + l) as f32;
                }
                pending = &self.zero;
                sweep::<false>(&mut sc.f, &self.zero, &self.zero, &mut sc.t[slot], &mut sc.e)
            } else if odd == 0 {
                let row = self.row(i, spin(code, i));
                let lc = sweep::<true>(&mut sc.f, pending, row, &mut sc.t[slot], &mut sc.e);
                pending = &self.zero;
                lc
            } else {
                let s = spin(code, 0);
                match &self.pair {
                    Some(pt) => {
                        pending = self.row(0, s);
                        let (gp, gn) =
                            if s > 0.0 { (&pt.g[0], &pt.g[1]) } else { (&pt.g[1], &pt.g[0]) };
                        let FastScratch { f, t, e, r, .. } = &mut sc;
                        sweep_odd(f, pending, e, gp, gn, &mut t[slot], r, pt.fold)
                    }
                    None => {
                        let t = &mut sc.t[slot];
                        sweep::<true>(&mut sc.f, self.row(0, s), &self.zero, t, &mut sc.r)
                    }
                }
            };
            let lw = cs + log_cosh;
            if lw > lref + RESCALE_MARGIN {
                if z > 0.0 {
                    let g = (lref - lw).exp();
                    z *= g;
                    ps.iter_mut().for_each(|x| *x *= g);
                    s_sum.iter_mut().for_each(|x| *x *= g);
                    let g = g as f32;
                    let scale = |x: &mut f32| {
                        let y = *x * g;
                        *x = if y.abs() < TINY { 0.0 } else { y };
                    };
                    cross[..local * mp].iter_mut().for_each(scale);
                    sc.slots.iter_mut().flatten().for_each(scale);
                }
                lref = lw;
            }
            // Far below the reference a state is negligible; flushing it to 0 also keeps
            // subnormal numbers (slow on x86) out of the f32 sums.
            let p = if lw - lref > -NEGLIGIBLE { (lw - lref).exp() } else { 0.0 };
            z += p;
            if !self.symmetric {
                for (i, x) in s_sum.iter_mut().enumerate() {
                    *x += p * spin(code, i);
                }
            }
            ps[slot] = p;
            if local == 0 {
                let pf = p as f32;
                for (v, &x) in sc.val.iter_mut().zip(&sc.t[0]) {
                    *v = pf * x;
                }
            } else if local == 1 && odd == 1 {
                self.accumulate_pair([ps[0] as f32, ps[1] as f32], code, &mut sc, &mut cross);
            } else if slot == 3 {
                let p4 = ps.map(|p| p as f32);
                self.accumulate_quad(p4, j, code, &mut sc, &mut cross);
            }
        }
        // `val` is now the chunk's Σ p·t; spins from `local` on are constant in the chunk.
        for i in local..n {
            let s = spin(code, i) as f32;
            for (x, &y) in cross[i * mp..(i + 1) * mp].iter_mut().zip(&sc.val) {
                *x = s * y;
            }
        }
        FastChunk { cross, t: sc.val, s: s_sum, z, lref }
    }

    /// The whole chunk is the pair of states 0, 1 (weights `p`, `tanh f` in `sc.t[0..2]`):
    /// spin 0 is `−s₀, s₀`, so `cross_0 += s₀(p₁t₁ − p₀t₀)` and `val = p₀t₀ + p₁t₁`.
    fn accumulate_pair(&self, p: [f32; 2], code: u64, sc: &mut FastScratch, cross: &mut [f32]) {
        let s0 = spin(code, 0) as f32;
        let (a0, a1) = (-s0 * p[0], s0 * p[1]);
        let [t0, t1, ..] = &sc.t;
        let c0 = &mut cross[..self.mp];
        for ((c, v), (&x0, &x1)) in c0.iter_mut().zip(&mut sc.val).zip(t0.iter().zip(t1)) {
            *c += a0 * x0 + a1 * x1;
            *v = p[0] * x0 + p[1] * x1;
        }
    }

    /// Adds the quad of states `j − 3 … j` (weights `p`, `tanh f` in `sc.t`) to the block tree.
    ///
    /// The quad is an aligned level-2 block: spins from 2 on are shared, and with `(s₀, s₁)`
    /// the spins 0 and 1 of state `j`, the four states have `(s₀, −s₁), (−s₀, −s₁), (−s₀, s₁),
    /// (s₀, s₁)` (Gray order). One pass over the summed side adds the quad to `cross_0`,
    /// `cross_1`, `cross_2` and forms its sum `Σ p·t`; above, when a level-`ℓ` block completes,
    /// `cross_ℓ += s_ℓ·(its Σ p·t)`, and left blocks wait in `slots[ℓ]` for their sibling.
    fn accumulate_quad(
        &self,
        p: [f32; 4],
        j: u64,
        code: u64,
        sc: &mut FastScratch,
        cross: &mut [f32],
    ) {
        let (mp, local) = (self.mp, sc.slots.len());
        let (s0, s1) = (spin(code, 0) as f32, spin(code, 1) as f32);
        let a = [s0 * p[0], -s0 * p[1], -s0 * p[2], s0 * p[3]];
        let b = [-s1 * p[0], -s1 * p[1], s1 * p[2], s1 * p[3]];
        let [t0, t1, t2, t3] = &sc.t;
        let (c0, rest) = cross.split_at_mut(mp);
        let (c1, rest) = rest.split_at_mut(mp);
        let ts = t0.iter().zip(t1).zip(t2.iter().zip(t3));
        let cs = c0.iter_mut().zip(c1.iter_mut());
        if local == 2 {
            // The quad is the whole chunk.
            for ((c0, c1), (((&x0, &x1), (&x2, &x3)), v)) in cs.zip(ts.zip(sc.val.iter_mut())) {
                *c0 += (a[0] * x0 + a[1] * x1) + (a[2] * x2 + a[3] * x3);
                *c1 += (b[0] * x0 + b[1] * x1) + (b[2] * x2 + b[3] * x3);
                *v = (p[0] * x0 + p[1] * x1) + (p[2] * x2 + p[3] * x3);
            }
            return;
        }
        let s2 = spin(code, 2) as f32;
        let cs = cs.zip(rest[..mp].iter_mut());
        if (j >> 2) & 1 == 0 {
            // A left block of level 3: park the quad's sum.
            let out = sc.slots[2].iter_mut();
            for (((c0, c1), c2), (((&x0, &x1), (&x2, &x3)), v)) in cs.zip(ts.zip(out)) {
                *c0 += (a[0] * x0 + a[1] * x1) + (a[2] * x2 + a[3] * x3);
                *c1 += (b[0] * x0 + b[1] * x1) + (b[2] * x2 + b[3] * x3);
                let y = (p[0] * x0 + p[1] * x1) + (p[2] * x2 + p[3] * x3);
                *c2 += s2 * y;
                *v = y;
            }
            return;
        }
        let out = sc.val.iter_mut().zip(&sc.slots[2]);
        for (((c0, c1), c2), (((&x0, &x1), (&x2, &x3)), (v, &sl))) in cs.zip(ts.zip(out)) {
            *c0 += (a[0] * x0 + a[1] * x1) + (a[2] * x2 + a[3] * x3);
            *c1 += (b[0] * x0 + b[1] * x1) + (b[2] * x2 + b[3] * x3);
            let y = (p[0] * x0 + p[1] * x1) + (p[2] * x2 + p[3] * x3);
            *c2 += s2 * y;
            *v = y + sl;
        }
        for l in 3..local {
            let s = spin(code, l) as f32;
            let cl = &mut cross[l * mp..(l + 1) * mp];
            if (j >> l) & 1 == 0 {
                for (c, &v) in cl.iter_mut().zip(&sc.val) {
                    *c += s * v;
                }
                std::mem::swap(&mut sc.slots[l], &mut sc.val);
                return;
            }
            for ((c, v), &sl) in cl.iter_mut().zip(sc.val.iter_mut()).zip(&sc.slots[l]) {
                *c += s * *v;
                *v += sl;
            }
        }
    }

    fn model_average(&self, out: &mut FastAverage) {
        let (n, m, mp) = (self.n, self.m, self.mp);
        let plan = self.plan();
        let parts: Vec<FastChunk> =
            (0..plan.chunks()).into_par_iter().map(|chunk| self.chunk(plan, chunk)).collect();
        let top = parts.iter().map(|p| p.lref + p.z.ln()).fold(f64::NEG_INFINITY, f64::max);
        let mut cross = vec![0.0f64; n * m];
        let mut s = vec![0.0f64; n];
        let mut t = vec![0.0f64; m];
        let mut z = 0.0f64;
        for part in &parts {
            let g = (part.lref - top).exp();
            z += g * part.z;
            for i in 0..n {
                let src = &part.cross[i * mp..i * mp + m];
                for (x, &y) in cross[i * m..(i + 1) * m].iter_mut().zip(src) {
                    *x += g * f64::from(y);
                }
            }
            for (x, &y) in s.iter_mut().zip(&part.s) {
                *x += g * y;
            }
            for (x, &y) in t.iter_mut().zip(&part.t) {
                *x += g * f64::from(y);
            }
        }
        let inv = 1.0 / z;
        let scale = |x: &[f64]| -> Vec<f32> { x.iter().map(|&y| (y * inv) as f32).collect() };
        let vh = scale(&cross);
        let (s, t) =
            if self.symmetric { (vec![0.0; n], vec![0.0; m]) } else { (scale(&s), scale(&t)) };
        let pad = (mp - m) as f64 * std::f64::consts::LN_2;
        let half = if self.symmetric { std::f64::consts::LN_2 } else { 0.0 };
        out.log_z = top + z.ln() + half - pad;
        let (vh, v, h) = if self.transposed { (transpose(&vh, n, m), t, s) } else { (vh, s, t) };
        for (dst, src) in [(&mut out.vh, vh), (&mut out.v, v), (&mut out.h, h)] {
            dst.clear();
            dst.extend_from_slice(&src);
        }
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index-heavy math reads better with indices
mod tests {
    use super::*;
    use rand_core::{RngCore, SeedableRng};

    fn normal(rng: &mut impl RngCore) -> f64 {
        let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Random `W` (V×H, N(0, sd²)) and biases (N(0, bias_sd²)) as f32.
    fn random_model(
        nv: usize,
        nh: usize,
        sd: f64,
        bias_sd: f64,
        seed: u64,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let mut draw = |len: usize, sd: f64| -> Vec<f32> {
            (0..len).map(|_| (sd * normal(&mut rng)) as f32).collect()
        };
        let w = draw(nv * nh, sd);
        let a = draw(nv, bias_sd);
        let b = draw(nh, bias_sd);
        (w, a, b)
    }

    fn bip<'a>(
        nv: usize,
        nh: usize,
        w: &'a [f32],
        a: &'a [f32],
        b: &'a [f32],
        biases: bool,
    ) -> Bipartite<'a> {
        Bipartite { visible: nv, hidden: nh, w, a: biases.then_some(a), b: biases.then_some(b) }
    }

    /// All ±1 vectors of length `n` (as f64), in binary order.
    fn all_spins(n: usize) -> Vec<Vec<f64>> {
        (0..1u64 << n)
            .map(|k| (0..n).map(|i| if (k >> i) & 1 == 1 { 1.0 } else { -1.0 }).collect())
            .collect()
    }

    /// `E(v,h)` from the definition, in f64.
    fn energy(m: &Bipartite, v: &[f64], h: &[f64]) -> f64 {
        let mut e = 0.0;
        for i in 0..m.visible {
            for al in 0..m.hidden {
                e -= v[i] * f64::from(m.w[i * m.hidden + al]) * h[al];
            }
        }
        if let Some(a) = m.a {
            e -= a.iter().zip(v).map(|(&x, &y)| f64::from(x) * y).sum::<f64>();
        }
        if let Some(b) = m.b {
            e -= b.iter().zip(h).map(|(&x, &y)| f64::from(x) * y).sum::<f64>();
        }
        e
    }

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

    const SMALL_SIZES: [(usize, usize); 4] = [(4, 3), (3, 5), (1, 4), (5, 2)];

    #[test]
    fn log_z_equals_naive_enumeration() {
        for (seed, &(nv, nh)) in SMALL_SIZES.iter().enumerate() {
            let (w, a, b) = random_model(nv, nh, 0.7, 0.5, seed as u64);
            for biases in [false, true] {
                let m = bip(nv, nh, &w, &a, &b, biases);
                let (want, ..) = naive(&m);
                let got = log_z(&m).unwrap();
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs(),
                    "{nv}x{nh} {biases}: {got} {want}"
                );
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
    fn free_energy_sums_out_the_hidden_layer_and_nll_normalises() {
        let (nv, nh) = (3, 4);
        let (w, a, b) = random_model(nv, nh, 0.9, 0.4, 3);
        let m = bip(nv, nh, &w, &a, &b, true);
        let mut total = 0.0;
        for v in all_spins(nv) {
            let want: f64 =
                all_spins(nh).iter().map(|h| (-energy(&m, &v, h)).exp()).sum::<f64>().ln();
            let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            assert!((-free_energy(&m, &v32) - want).abs() < 1e-12);
            total += (-mean_nll(&m, &v32).unwrap()).exp();
        }
        assert!((total - 1.0).abs() < 1e-12, "Σ_v P(v) = {total}");
        assert!(mean_nll(&m, &[]).unwrap().is_nan());
    }

    /// `⟨v_i tanh φ_α⟩_data − ⟨v_i h_α⟩_model = −∂ mean_nll / ∂W_iα` (and likewise for `a`,
    /// `b`), by central differences of the f64 internals (eps 1e−5: truncation ~1e−10).
    #[test]
    fn exact_gradient_matches_finite_differences() {
        for (nv, nh) in [(3, 4), (4, 2)] {
            let (w, a, b) = random_model(nv, nh, 0.8, 0.5, 21);
            let w: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
            let a: Vec<f64> = a.iter().map(|&x| f64::from(x)).collect();
            let b: Vec<f64> = b.iter().map(|&x| f64::from(x)).collect();
            let data: Vec<f32> =
                [1., -1., 1., 1., -1., -1., 1., -1., 1., 1., 1., -1.][..3 * nv].to_vec();
            let nll = |w: &[f64], a: &[f64], b: &[f64]| {
                Net { visible: nv, hidden: nh, w, a: Some(a), b: Some(b) }.mean_nll(&data).unwrap()
            };
            let net = Net { visible: nv, hidden: nh, w: &w, a: Some(&a), b: Some(&b) };
            let model = net.model_average().unwrap();
            // Data averages from the definition.
            let rows = data.len() / nv;
            let (mut dvh, mut dv, mut dh) = (vec![0.0; nv * nh], vec![0.0; nv], vec![0.0; nh]);
            for v in data.chunks(nv) {
                for al in 0..nh {
                    let phi =
                        b[al] + (0..nv).map(|i| f64::from(v[i]) * w[i * nh + al]).sum::<f64>();
                    dh[al] += phi.tanh() / rows as f64;
                    for i in 0..nv {
                        dvh[i * nh + al] += f64::from(v[i]) * phi.tanh() / rows as f64;
                    }
                }
                for i in 0..nv {
                    dv[i] += f64::from(v[i]) / rows as f64;
                }
            }
            let eps = 1e-5;
            let fd = |which: usize, k: usize| {
                let mut plus = [w.clone(), a.clone(), b.clone()];
                let mut minus = plus.clone();
                plus[which][k] += eps;
                minus[which][k] -= eps;
                (nll(&plus[0], &plus[1], &plus[2]) - nll(&minus[0], &minus[1], &minus[2]))
                    / (2.0 * eps)
            };
            let (mut worst, mut largest): (f64, f64) = (0.0, 0.0);
            for k in 0..nv * nh {
                let g = dvh[k] - model.vh[k];
                largest = largest.max(g.abs());
                worst = worst.max((g + fd(0, k)).abs());
            }
            for i in 0..nv {
                let g = dv[i] - model.v[i];
                largest = largest.max(g.abs());
                worst = worst.max((g + fd(1, i)).abs());
            }
            for al in 0..nh {
                let g = dh[al] - model.h[al];
                largest = largest.max(g.abs());
                worst = worst.max((g + fd(2, al)).abs());
            }
            assert!(largest > 0.1, "{nv}x{nh}: the check needs sizeable gradients ({largest})");
            assert!(worst < 1e-8, "{nv}x{nh}: worst gradient error {worst}");
        }
    }

    /// The same check through the public f32 API: weights on a 1/64 grid, eps = 2^−10, so
    /// `w ± eps` is exact in f32.
    #[test]
    fn exact_gradient_matches_finite_differences_public_api() {
        let (nv, nh) = (3, 5);
        let grid = |k: usize| ((k * 37 % 97) as f32 - 48.0) / 64.0;
        let w: Vec<f32> = (0..nv * nh).map(grid).collect();
        let a: Vec<f32> = (0..nv).map(|k| grid(k + 50) * 0.5).collect();
        let b: Vec<f32> = (0..nh).map(|k| grid(k + 70) * 0.5).collect();
        let data = [1.0f32, 1.0, -1.0, -1.0, 1.0, 1.0];
        let m = bip(nv, nh, &w, &a, &b, true);
        let model = model_average(&m).unwrap();
        let eps = 1.0 / 1024.0;
        for k in 0..nv * nh {
            let (i, al) = (k / nh, k % nh);
            let mut data_part = 0.0;
            for v in data.chunks(nv) {
                let phi = f64::from(b[al])
                    + (0..nv).map(|r| f64::from(v[r] * w[r * nh + al])).sum::<f64>();
                data_part += f64::from(v[i]) * phi.tanh() / 2.0;
            }
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp[k] += eps;
            wm[k] -= eps;
            let nll_p = mean_nll(&bip(nv, nh, &wp, &a, &b, true), &data).unwrap();
            let nll_m = mean_nll(&bip(nv, nh, &wm, &a, &b, true), &data).unwrap();
            let fd = (nll_p - nll_m) / (2.0 * f64::from(eps));
            let g = data_part - model.vh[k];
            assert!((g + fd).abs() < 1e-5, "W[{k}]: {g} vs {}", -fd);
        }
    }

    #[test]
    fn ground_state_is_the_minimum_over_all_configurations() {
        for (seed, &(nv, nh)) in SMALL_SIZES.iter().enumerate() {
            let (w, a, b) = random_model(nv, nh, 1.0, 0.7, 30 + seed as u64);
            for biases in [false, true] {
                let m = bip(nv, nh, &w, &a, &b, biases);
                let mut want = f64::INFINITY;
                for v in all_spins(nv) {
                    for h in all_spins(nh) {
                        want = want.min(energy(&m, &v, &h));
                    }
                }
                let gs = ground_state(&m).unwrap();
                assert!((gs.energy - want).abs() < 1e-12, "{nv}x{nh} {biases}");
                let v: Vec<f64> = gs.v.iter().map(|&x| f64::from(x)).collect();
                let h: Vec<f64> = gs.h.iter().map(|&x| f64::from(x)).collect();
                assert!((energy(&m, &v, &h) - want).abs() < 1e-12);
            }
        }
    }

    /// With zero couplings every state ties: the first enumerated one (all `s = −1`) wins and
    /// the summed layer takes `sign 0 = +1`.
    #[test]
    fn ground_state_ties_and_sign_of_zero() {
        let w = vec![0.0f32; 12];
        let gs = ground_state(&bip(3, 4, &w, &[], &[], false)).unwrap();
        assert_eq!(gs, GroundState { energy: 0.0, v: vec![-1.0; 3], h: vec![1.0; 4] });
        let gs = ground_state(&bip(4, 3, &w, &[], &[], false)).unwrap();
        assert_eq!(gs, GroundState { energy: 0.0, v: vec![1.0; 4], h: vec![-1.0; 3] });
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // 17 enumerated spins: 128 chunks in the oracle, 64 in the symmetric fast path.
        let (nv, nh) = (17, 20);
        let (w, a, b) = random_model(nv, nh, 0.3, 0.2, 5);
        for biases in [false, true] {
            let m = bip(nv, nh, &w, &a, &b, biases);
            let run = |threads| {
                rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(
                    || {
                        let mut fast = FastAverage::default();
                        model_average_fast(&m, &mut fast).unwrap();
                        let gs = ground_state(&m).unwrap();
                        (log_z(&m).unwrap(), model_average(&m).unwrap(), fast, gs)
                    },
                )
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

    #[test]
    fn fast_exp_is_accurate() {
        // (max absolute error, max relative error for a ≤ 1/2, for a ≤ 4, for a ≤ 30)
        let mut err = [0.0f64; 4];
        let n = 3_000_000;
        for k in 0..=n {
            let a = 30.0 * k as f32 / n as f32;
            let want = (-2.0 * f64::from(a)).exp();
            let got = f64::from(exp_neg2(a));
            let rel = (got - want).abs() / want;
            err[0] = err[0].max((got - want).abs());
            for (e, bound) in err[1..].iter_mut().zip([0.5, 4.0, 30.0]) {
                if a <= bound {
                    *e = e.max(rel);
                }
            }
        }
        let shown: Vec<String> = err.iter().map(|e| format!("{e:.2e}")).collect();
        eprintln!("exp_neg2 errors: abs, rel (a ≤ 1/2, 4, 30): {shown:?}");
        assert!(err[0] < 1.5e-7, "{err:?}");
        assert!(err[1] < 2.5e-7, "{err:?}");
        assert!(err[2] < 7e-7, "{err:?}");
        assert!(err[3] < 5e-6, "{err:?}");
        assert_eq!(exp_neg2(0.0), 1.0);
        // Clamped: e^{−60}, a normal number.
        for a in [30.0f32, 31.0, 1e30, f32::INFINITY] {
            let e = exp_neg2(a);
            assert!(e.is_normal() && (f64::from(e) / (-60.0f64).exp() - 1.0).abs() < 1e-5);
        }
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
            let fast_net = FastNet::new(&m.net());
            // Spin 0 of the enumerated side couples through row 0 of W, or column 0 if H < V.
            let r0: Vec<f32> =
                if nh < nv { w.iter().step_by(nh).copied().collect() } else { w[..nh].to_vec() };
            let max_delta = r0.iter().fold(0.0f32, |x, &y| x.max(2.0 * y.abs()));
            assert_eq!(fast_net.pair.is_some(), f64::from(max_delta) <= PAIR_DELTA_MAX);
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
}
