//! Dense ±1 RBMs over a caller-owned parameter slice, trained by CD-k and PCD-k (the
//! baselines of DESIGN.md §2).
//!
//! # Equations (DESIGN.md §1)
//! ```text
//! E(v, h) = −vᵀ W h − aᵀ v − bᵀ h
//! φ = Wᵀ v + b   (hidden field, H)        P(h_α = +1 | v) = σ(2φ_α)
//! ψ = W h + a    (visible field, V)       P(v_i = +1 | h) = σ(2ψ_i)
//! F(v) = −aᵀ v − Σ_α log(2 cosh φ_α)
//! ```
//!
//! `log 2cosh` is [`crate::num::log_2cosh`], `|x| + log1p(e^{−2|x|})` (no `+ ln 2`, which
//! DESIGN.md §1 wrongly adds). A model without biases has `a = 0`, `b = 0`.
//!
//! The log-likelihood ascent direction, Rao–Blackwellised (the hidden units are summed out):
//!
//! ```text
//! ∂/∂W_iα = ⟨v_i tanh φ_α⟩_data − ⟨v_i tanh φ_α⟩_neg
//! ∂/∂a_i  = ⟨v_i⟩_data          − ⟨v_i⟩_neg
//! ∂/∂b_α  = ⟨tanh φ_α⟩_data     − ⟨tanh φ_α⟩_neg
//! ```
//!
//! Each phase term is `−∂⟨F⟩_S/∂θ` over a sample set `S` ([`dense_accumulate_phase`]). The
//! negative set comes from Gibbs chains: CD-k ([`cd_gradient`]) starts one chain at each batch
//! row; PCD-k ([`pcd_gradient`]) keeps caller-owned chains that persist across calls.
//!
//! # Packed fields
//! Chains hold `v` bit-packed ([`crate::spins`]). With `colsum_α = Σ_i W_iα`,
//!
//! ```text
//! φ = Wᵀ v + b = 2·Σ_{i: v_i = +1} W_i − colsum + b
//! ```
//!
//! (`W_i` is row `i`): one row addition per `+1` spin, no multiplies
//! ([`DenseRbm::hidden_field_packed`]). The negative phase likewise adds or subtracts
//! `tanh φ` into row `i` of the `W` gradient by the sign of `v_i`.
//!
//! # Layout
//! The parameters are one `f32` slice: `W` row-major `V × H` (row `i` holds the `H` weights of
//! visible unit `i`), then `a` (`V`) and `b` (`H`) when the model has biases. The gradient
//! slices have the same layout. This is also the payload order of the model file format.
//!
//! # Batched Gibbs and phases
//! CD-k, PCD-k and [`gibbs_rows`] hold chains as rows of ±1 `f32` in blocks of up to
//! [`DENSE_BLOCK`] rows and compute a block's fields as GEMMs (`F = V W + b`, `G = H Wᵀ + a`;
//! [`crate::kernels::gemm()`]), its draws in bulk ([`crate::kernels::sample_pm1_in_place`]:
//! one call per block and half-step), and its phase term as `∂W += c·Vᵀ tanh F`. The packed
//! per-chain functions ([`gibbs_packed`], [`dense_accumulate_phase_packed`]) remain as
//! references and for single chains.
//!
//! # Randomness
//! The per-chain functions draw one `next_u32` per unit ([`crate::num::sample_spin`]): a Gibbs
//! step draws the hidden units in order, then the visible units in order. The batched ones
//! draw per block and half-step (hidden, then visible), blocks in order, each block through
//! all its steps. Either way a run is reproducible from the RNG's seed (for the batched
//! functions, for a given scratch length, which sets the block size).

use rand_core::RngCore;

use crate::error::ConfigError;
use crate::kernels::{gemm, sample_pm1_in_place, tanh_in_place, MatRef, GEMM_PACK_LEN};
use crate::model::{axpy, dot};
use crate::num::{log_2cosh, sample_spin, tanh};
use crate::sample::sample_spins_in_place;
use crate::spins::{words_for, PackedSpins, WORD_BITS};

/// Layer sizes of a dense RBM and whether it has biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DenseDims {
    /// Visible units `V`.
    pub visible: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Whether the parameters include the biases `a` (`V`) and `b` (`H`).
    pub biases: bool,
}

impl DenseDims {
    /// Sizes `V`, `H` and the bias flag.
    pub const fn new(visible: usize, hidden: usize, biases: bool) -> Self {
        DenseDims { visible, hidden, biases }
    }

    /// Length of `W`, `V·H`.
    #[inline]
    pub const fn weights_len(&self) -> usize {
        self.visible * self.hidden
    }

    /// Length of the parameter (and gradient) slice: `V·H`, plus `V + H` with biases.
    #[inline]
    pub const fn param_len(&self) -> usize {
        if self.biases {
            self.weights_len() + self.visible + self.hidden
        } else {
            self.weights_len()
        }
    }

    /// Checks that both sizes are non-zero and that the buffer lengths fit in `usize`.
    ///
    /// # Errors
    /// [`ConfigError::NoVisible`], [`ConfigError::NoHidden`] or [`ConfigError::TooLarge`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.visible == 0 {
            return Err(ConfigError::NoVisible);
        }
        if self.hidden == 0 {
            return Err(ConfigError::NoHidden);
        }
        let w = self.visible.checked_mul(self.hidden).ok_or(ConfigError::TooLarge)?;
        let sides = self.visible.checked_add(self.hidden).ok_or(ConfigError::TooLarge)?;
        let total = w.checked_add(sides).ok_or(ConfigError::TooLarge)?;
        // Keeps byte sizes (×4) and index arithmetic comfortably in range.
        if total > (isize::MAX as usize) / 8 {
            return Err(ConfigError::TooLarge);
        }
        Ok(())
    }
}

/// A dense RBM: a view over its parameters (see the module docs for the layout).
#[derive(Clone, Copy, Debug)]
pub struct DenseRbm<S> {
    params: S,
    dims: DenseDims,
}

/// Scratch length for [`DenseRbm::free_energy`]: `H`.
pub const fn free_energy_scratch_len(dims: DenseDims) -> usize {
    dims.hidden
}

/// Scratch length for [`gibbs_packed`]: `H` (holds the last hidden state after the call).
pub const fn gibbs_scratch_len(dims: DenseDims) -> usize {
    dims.hidden
}

/// Scratch length for [`dense_accumulate_phase`] and [`dense_accumulate_phase_packed`]: `H`.
pub const fn phase_scratch_len(dims: DenseDims) -> usize {
    dims.hidden
}

/// Rows (chains or samples) per block of the batched dense code: enough for the SIMD GEMMs to
/// run near peak on x86-64; one row elsewhere, to keep microcontroller scratch small.
pub const DENSE_BLOCK: usize = if cfg!(target_arch = "x86_64") { 256 } else { 1 };

/// Scratch length for the batched dense functions ([`gibbs_rows`], [`cd_gradient`],
/// [`pcd_gradient`], and the GEMM path of [`dense_accumulate_phase`]) over sets of up to `rows`
/// rows: `b·(V + H) + GEMM_PACK_LEN` with `b = clamp(rows, 1, DENSE_BLOCK)`. More scratch
/// never hurts; less (down to one row) means smaller blocks.
pub const fn block_scratch_len(dims: DenseDims, rows: usize) -> usize {
    let b = if rows > DENSE_BLOCK {
        DENSE_BLOCK
    } else if rows == 0 {
        1
    } else {
        rows
    };
    b * (dims.visible + dims.hidden) + GEMM_PACK_LEN
}

/// Scratch length for [`cd_gradient`] on batches of up to `batch` rows.
pub const fn cd_scratch_len(dims: DenseDims, batch: usize) -> usize {
    block_scratch_len(dims, batch)
}

/// Scratch length for [`pcd_gradient`] with `n_chains` chains and batches of up to `batch`
/// rows.
pub const fn pcd_scratch_len(dims: DenseDims, n_chains: usize, batch: usize) -> usize {
    block_scratch_len(dims, if n_chains > batch { n_chains } else { batch })
}

/// Splits `scratch` for a chain set of `n ≥ 1` rows: the block size `b` ([`block_rows`]), the
/// packing buffer, `b` visible rows and `b` hidden rows.
///
/// # Panics
/// If `scratch` holds less than one row (plus the packing buffer).
fn block_buffers(
    d: DenseDims,
    scratch: &mut [f32],
    n: usize,
) -> (usize, &mut [f32], &mut [f32], &mut [f32]) {
    let b = block_rows(d, scratch.len(), n).expect("scratch shorter than block_scratch_len");
    let (pack, work) = scratch.split_at_mut(GEMM_PACK_LEN);
    let (vbuf, h) = work.split_at_mut(b * d.visible);
    (b, pack, vbuf, &mut h[..b * d.hidden])
}

/// Rows per block that `scratch_len` allows for a set of `n ≥ 1` rows, or `None` if it holds
/// less than one row (plus the packing buffer).
fn block_rows(d: DenseDims, scratch_len: usize, n: usize) -> Option<usize> {
    let per = d.visible + d.hidden;
    let rows = scratch_len.checked_sub(GEMM_PACK_LEN)? / per;
    (rows >= 1).then(|| rows.min(n).max(1))
}

/// Chain words for `n_chains` persistent chains: `n_chains · words_for(V)`.
pub const fn pcd_chain_words_len(dims: DenseDims, n_chains: usize) -> usize {
    n_chains * words_for(dims.visible)
}

/// Mask of the valid bits in word `c` of a vector of `len` spins.
#[inline]
fn word_mask(c: usize, len: usize) -> u64 {
    let start = c * WORD_BITS;
    if len >= start + WORD_BITS {
        u64::MAX
    } else if len <= start {
        0
    } else {
        (1u64 << (len - start)) - 1
    }
}

impl<S: AsRef<[f32]>> DenseRbm<S> {
    /// Wraps the parameters.
    ///
    /// # Panics
    /// If `V = 0`, `H = 0` or `params.len() != dims.param_len()`.
    pub fn new(params: S, dims: DenseDims) -> Self {
        assert!(dims.visible > 0 && dims.hidden > 0, "a dense RBM needs V ≥ 1 and H ≥ 1");
        assert_eq!(params.as_ref().len(), dims.param_len(), "parameter slice length mismatch");
        DenseRbm { params, dims }
    }

    /// The sizes.
    #[inline]
    pub fn dims(&self) -> DenseDims {
        self.dims
    }

    /// All parameters (`W`, then `a` and `b` with biases).
    #[inline]
    pub fn params(&self) -> &[f32] {
        self.params.as_ref()
    }

    /// Gives the storage back.
    pub fn into_inner(self) -> S {
        self.params
    }

    /// The weights `W`, row-major `V × H`.
    #[inline]
    pub fn w(&self) -> &[f32] {
        &self.params.as_ref()[..self.dims.weights_len()]
    }

    /// The visible biases `a` (`V`), if the model has biases.
    #[inline]
    pub fn a(&self) -> Option<&[f32]> {
        let n = self.dims.weights_len();
        self.dims.biases.then(|| &self.params.as_ref()[n..n + self.dims.visible])
    }

    /// The hidden biases `b` (`H`), if the model has biases.
    #[inline]
    pub fn b(&self) -> Option<&[f32]> {
        let n = self.dims.weights_len() + self.dims.visible;
        self.dims.biases.then(|| &self.params.as_ref()[n..n + self.dims.hidden])
    }

    /// Row `i` of `W`: the `H` weights of visible unit `i`.
    ///
    /// # Panics
    /// If `i >= V`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        assert!(i < self.dims.visible, "visible index out of range");
        let h = self.dims.hidden;
        &self.params.as_ref()[i * h..(i + 1) * h]
    }

    /// Hidden field `φ = Wᵀ v + b` (replaces `phi`). `v` may hold any reals (0 acts as a
    /// neutral spin).
    ///
    /// # Panics
    /// If `v.len() != V` or `phi.len() != H`.
    pub fn hidden_field(&self, v: &[f32], phi: &mut [f32]) {
        assert_eq!(v.len(), self.dims.visible, "v must have V entries");
        assert_eq!(phi.len(), self.dims.hidden, "phi must have H entries");
        match self.b() {
            Some(b) => phi.copy_from_slice(b),
            None => phi.fill(0.0),
        }
        for (i, &vi) in v.iter().enumerate() {
            axpy(vi, self.row(i), phi);
        }
    }

    /// Visible field `ψ = W h + a` (replaces `psi`).
    ///
    /// # Panics
    /// If `h.len() != H` or `psi.len() != V`.
    pub fn visible_field(&self, h: &[f32], psi: &mut [f32]) {
        assert_eq!(h.len(), self.dims.hidden, "h must have H entries");
        assert_eq!(psi.len(), self.dims.visible, "psi must have V entries");
        for (i, p) in psi.iter_mut().enumerate() {
            *p = dot(self.row(i), h);
        }
        if let Some(a) = self.a() {
            for (p, &ai) in psi.iter_mut().zip(a) {
                *p += ai;
            }
        }
    }

    /// Column sums `colsum_α = Σ_i W_iα` (replaces `out`), the constant term of
    /// [`DenseRbm::hidden_field_packed`]. Recompute after every parameter update.
    ///
    /// # Panics
    /// If `out.len() != H`.
    pub fn column_sums(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.dims.hidden, "colsum must have H entries");
        out.fill(0.0);
        for i in 0..self.dims.visible {
            for (o, &w) in out.iter_mut().zip(self.row(i)) {
                *o += w;
            }
        }
    }

    /// Hidden field of a packed `v`, `φ = 2·Σ_{i: v_i=+1} W_i − colsum + b` (replaces `phi`):
    /// sign-selected row additions, no multiplies. `colsum` comes from
    /// [`DenseRbm::column_sums`] on the current parameters. Padding bits are never read.
    ///
    /// Equals [`DenseRbm::hidden_field`] up to f32 rounding (the sums run in another order).
    ///
    /// # Panics
    /// If `v.len() != V`, `colsum.len() != H` or `phi.len() != H`.
    pub fn hidden_field_packed<T: AsRef<[u64]>>(
        &self,
        v: &PackedSpins<T>,
        colsum: &[f32],
        phi: &mut [f32],
    ) {
        let d = self.dims;
        assert_eq!(v.len(), d.visible, "v must have V spins");
        assert_eq!(colsum.len(), d.hidden, "colsum must have H entries");
        assert_eq!(phi.len(), d.hidden, "phi must have H entries");
        phi.fill(0.0);
        for (c, &word) in v.as_words().iter().enumerate() {
            let mut bits = word & word_mask(c, d.visible);
            while bits != 0 {
                let i = c * WORD_BITS + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                for (p, &w) in phi.iter_mut().zip(self.row(i)) {
                    *p += w;
                }
            }
        }
        for (p, &cs) in phi.iter_mut().zip(colsum) {
            *p = 2.0 * *p - cs;
        }
        if let Some(b) = self.b() {
            for (p, &bj) in phi.iter_mut().zip(b) {
                *p += bj;
            }
        }
    }

    /// Energy `E(v, h) = −vᵀ W h − aᵀ v − bᵀ h`, no scratch.
    ///
    /// # Panics
    /// If `v.len() != V` or `h.len() != H`.
    pub fn energy(&self, v: &[f32], h: &[f32]) -> f32 {
        assert_eq!(v.len(), self.dims.visible, "v must have V entries");
        assert_eq!(h.len(), self.dims.hidden, "h must have H entries");
        let mut e: f32 =
            -v.iter().enumerate().map(|(i, &vi)| vi * dot(self.row(i), h)).sum::<f32>();
        if let (Some(a), Some(b)) = (self.a(), self.b()) {
            e -= dot(a, v) + dot(b, h);
        }
        e
    }

    /// Free energy `F(v) = −aᵀ v − Σ_α log(2 cosh φ_α)` (overflow-safe). `scratch` needs
    /// [`free_energy_scratch_len`] entries.
    ///
    /// # Panics
    /// If `v.len() != V` or `scratch` is too short.
    pub fn free_energy(&self, v: &[f32], scratch: &mut [f32]) -> f32 {
        let phi = &mut scratch[..self.dims.hidden];
        self.hidden_field(v, phi);
        let mut f = -phi.iter().map(|&x| log_2cosh(x)).sum::<f32>();
        if let Some(a) = self.a() {
            f -= dot(a, v);
        }
        f
    }
}

impl<S: AsRef<[f32]> + AsMut<[f32]>> DenseRbm<S> {
    /// All parameters, mutable (same layout as [`DenseRbm::params`]).
    #[inline]
    pub fn params_mut(&mut self) -> &mut [f32] {
        self.params.as_mut()
    }
}

/// Draws `h ~ P(h | v)` into `h` for a real-valued `v` (0 acts as a neutral spin, as in the
/// reconstruction test of DESIGN.md §3). One `next_u32` per hidden unit, in order.
///
/// # Panics
/// If `v.len() != V` or `h.len() != H`.
pub fn sample_hidden<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    v: &[f32],
    h: &mut [f32],
    rng: &mut R,
) {
    model.hidden_field(v, h);
    sample_spins_in_place(h, rng);
}

/// Draws `v ~ P(v | h)` into `v` as `±1.0`. One `next_u32` per visible unit, in order.
///
/// # Panics
/// If `h.len() != H` or `v.len() != V`.
pub fn sample_visible<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    h: &[f32],
    v: &mut [f32],
    rng: &mut R,
) {
    model.visible_field(h, v);
    sample_spins_in_place(v, rng);
}

/// Draws `h ~ P(h | v)` into `h` for a packed `v` (fields by
/// [`DenseRbm::hidden_field_packed`]). One `next_u32` per hidden unit, in order.
///
/// # Panics
/// If `v.len() != V`, `colsum.len() != H` or `h.len() != H`.
pub fn sample_hidden_packed<S, T, R>(
    model: &DenseRbm<S>,
    colsum: &[f32],
    v: &PackedSpins<T>,
    h: &mut [f32],
    rng: &mut R,
) where
    S: AsRef<[f32]>,
    T: AsRef<[u64]>,
    R: RngCore + ?Sized,
{
    model.hidden_field_packed(v, colsum, h);
    sample_spins_in_place(h, rng);
}

/// Draws `v ~ P(v | h)` into the packed `v` (padding bits stay 0). One `next_u32` per visible
/// unit, in order.
///
/// # Panics
/// If `h.len() != H` or `v.len() != V`.
pub fn sample_visible_packed<S, T, R>(
    model: &DenseRbm<S>,
    h: &[f32],
    v: &mut PackedSpins<T>,
    rng: &mut R,
) where
    S: AsRef<[f32]>,
    T: AsRef<[u64]> + AsMut<[u64]>,
    R: RngCore + ?Sized,
{
    let d = model.dims();
    assert_eq!(h.len(), d.hidden, "h must have H entries");
    assert_eq!(v.len(), d.visible, "v must have V spins");
    let a = model.a();
    for i in 0..d.visible {
        let psi = dot(model.row(i), h) + a.map_or(0.0, |a| a[i]);
        v.set(i, sample_spin(psi, rng) > 0.0);
    }
}

/// Runs `steps` block Gibbs steps `v → h → v` on a packed visible state, in place. `h` lives
/// in `scratch[..H]` as `±1.0` and holds the last hidden draw after the call (untouched when
/// `steps = 0`); `v` is written back as bits, padding bits stay 0. Each step draws one
/// `next_u32` per hidden unit in order, then one per visible unit in order.
///
/// `colsum` must be [`DenseRbm::column_sums`] of the current parameters.
///
/// # Panics
/// If `v.len() != V`, `colsum.len() != H` or `scratch` is shorter than [`gibbs_scratch_len`].
pub fn gibbs_packed<S, T, R>(
    model: &DenseRbm<S>,
    colsum: &[f32],
    v: &mut PackedSpins<T>,
    steps: u32,
    scratch: &mut [f32],
    rng: &mut R,
) where
    S: AsRef<[f32]>,
    T: AsRef<[u64]> + AsMut<[u64]>,
    R: RngCore + ?Sized,
{
    let d = model.dims();
    assert!(scratch.len() >= gibbs_scratch_len(d), "scratch shorter than gibbs_scratch_len");
    assert_eq!(v.len(), d.visible, "v must have V spins");
    assert_eq!(colsum.len(), d.hidden, "colsum must have H entries");
    let h = &mut scratch[..d.hidden];
    for _ in 0..steps {
        sample_hidden_packed(model, colsum, v, h, rng);
        sample_visible_packed(model, h, v, rng);
    }
}

/// Adds `scale·[v ⊗ T | v | T]` for one sample, with `T = tanh φ` already in `t`.
#[inline]
fn accumulate_sample_terms(d: DenseDims, v: &[f32], t: &[f32], scale: f32, grad: &mut [f32]) {
    let (gw, gbias) = grad.split_at_mut(d.weights_len());
    for (row, &vi) in gw.chunks_exact_mut(d.hidden).zip(v) {
        axpy(scale * vi, t, row);
    }
    if d.biases {
        let (ga, gb) = gbias.split_at_mut(d.visible);
        axpy(scale, v, ga);
        axpy(scale, t, gb);
    }
}

/// Adds the phase term `weight · (1/|S|) Σ_s [v_s ⊗ tanh φ(v_s) | v_s | tanh φ(v_s)]` of a
/// sample set `S` (rows of `samples`, `V` each; ±1, or 0 for a neutral spin) to `grad`. The
/// bias parts exist only with biases. This is `−weight·∂⟨F⟩_S/∂θ`: `weight = 1` for the
/// positive phase, `−1` for the negative phase. An empty set adds nothing.
///
/// With [`block_scratch_len`] scratch the rows go in blocks as GEMMs (`T = tanh(S W + b)`,
/// `∂W += c·Sᵀ T`); with less (down to [`phase_scratch_len`]) one row at a time
/// ([`dense_accumulate_phase_per_sample`]). The two agree within f32 rounding.
///
/// # Panics
/// If `samples.len()` is not a multiple of `V`, `grad.len() != param_len` or `scratch` is
/// shorter than [`phase_scratch_len`].
pub fn dense_accumulate_phase<S: AsRef<[f32]>>(
    model: &DenseRbm<S>,
    samples: &[f32],
    weight: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    assert_eq!(samples.len() % d.visible, 0, "sample rows must have V entries");
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    let n = samples.len() / d.visible;
    if n == 0 {
        return;
    }
    let Some(b) = block_rows(d, scratch.len(), n) else {
        return dense_accumulate_phase_per_sample(model, samples, weight, grad, scratch);
    };
    let scale = weight / n as f32;
    let (pack, rows) = scratch.split_at_mut(GEMM_PACK_LEN);
    let t = &mut rows[..b * d.hidden];
    for s in samples.chunks(b * d.visible) {
        phase_block(model, s, scale, grad, t, pack);
    }
}

/// [`dense_accumulate_phase`] one sample at a time with plain loops (the oracle of the GEMM
/// path). `scratch` needs [`phase_scratch_len`] entries.
///
/// # Panics
/// As [`dense_accumulate_phase`].
pub fn dense_accumulate_phase_per_sample<S: AsRef<[f32]>>(
    model: &DenseRbm<S>,
    samples: &[f32],
    weight: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    assert_eq!(samples.len() % d.visible, 0, "sample rows must have V entries");
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    assert!(scratch.len() >= phase_scratch_len(d), "scratch shorter than phase_scratch_len");
    let n = samples.len() / d.visible;
    if n == 0 {
        return;
    }
    let scale = weight / n as f32;
    let t = &mut scratch[..d.hidden];
    for v in samples.chunks_exact(d.visible) {
        model.hidden_field(v, t);
        for x in t.iter_mut() {
            *x = tanh(*x);
        }
        accumulate_sample_terms(d, v, t, scale, grad);
    }
}

/// Hidden fields of a block of rows: `F = S W + b` (`S` rows × V, `F` rows × H).
fn hidden_fields_rows<S: AsRef<[f32]>>(
    model: &DenseRbm<S>,
    s: &[f32],
    f: &mut [f32],
    pack: &mut [f32],
) {
    let d = model.dims();
    let r = s.len() / d.visible;
    let f = &mut f[..r * d.hidden];
    f.fill(0.0);
    let (sm, w) = (MatRef::row_major(s, d.visible), MatRef::row_major(model.w(), d.hidden));
    gemm(r, d.hidden, d.visible, 1.0, sm, w, f, d.hidden, pack);
    if let Some(b) = model.b() {
        for row in f.chunks_exact_mut(d.hidden) {
            for (x, &bj) in row.iter_mut().zip(b) {
                *x += bj;
            }
        }
    }
}

/// Visible fields of a block of hidden rows: `G = H Wᵀ + a` (`H` rows × H, `G` rows × V).
fn visible_fields_rows<S: AsRef<[f32]>>(
    model: &DenseRbm<S>,
    h: &[f32],
    g: &mut [f32],
    pack: &mut [f32],
) {
    let d = model.dims();
    let r = h.len() / d.hidden;
    let g = &mut g[..r * d.visible];
    g.fill(0.0);
    let w_t = MatRef { data: model.w(), rs: 1, cs: d.hidden };
    gemm(r, d.visible, d.hidden, 1.0, MatRef::row_major(h, d.hidden), w_t, g, d.visible, pack);
    if let Some(a) = model.a() {
        for row in g.chunks_exact_mut(d.visible) {
            for (x, &ai) in row.iter_mut().zip(a) {
                *x += ai;
            }
        }
    }
}

/// Adds `scale·Σ_rows [s ⊗ tanh φ(s) | s | tanh φ(s)]` for a block `s` of rows; `t` holds at
/// least rows × H.
fn phase_block<S: AsRef<[f32]>>(
    model: &DenseRbm<S>,
    s: &[f32],
    scale: f32,
    grad: &mut [f32],
    t: &mut [f32],
    pack: &mut [f32],
) {
    let d = model.dims();
    let r = s.len() / d.visible;
    let t = &mut t[..r * d.hidden];
    hidden_fields_rows(model, s, t, pack);
    tanh_in_place(t);
    let (gw, gbias) = grad.split_at_mut(d.weights_len());
    let s_t = MatRef { data: s, rs: 1, cs: d.visible };
    gemm(d.visible, d.hidden, r, scale, s_t, MatRef::row_major(t, d.hidden), gw, d.hidden, pack);
    if d.biases {
        let (ga, gb) = gbias.split_at_mut(d.visible);
        for v in s.chunks_exact(d.visible) {
            axpy(scale, v, ga);
        }
        for row in t.chunks_exact(d.hidden) {
            axpy(scale, row, gb);
        }
    }
}

/// Runs `steps` block Gibbs steps `v → h → v` on every row of `v` (rows of `V` spins as ±1
/// `f32`), in place, in blocks of rows (as many as `scratch` holds, see
/// [`block_scratch_len`]): each block makes all its steps, then the next block starts. Fields
/// are GEMMs; the draws are [`sample_pm1_in_place`] over each block's hidden units, then over
/// its visible units, per step. Reproducible from the RNG's seed for a given scratch length.
///
/// # Panics
/// If `v.len()` is not a multiple of `V` or `scratch` holds less than one row.
pub fn gibbs_rows<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    v: &mut [f32],
    steps: u32,
    scratch: &mut [f32],
    rng: &mut R,
) {
    let d = model.dims();
    assert_eq!(v.len() % d.visible, 0, "chain rows must have V entries");
    let n = v.len() / d.visible;
    if n == 0 || steps == 0 {
        return;
    }
    let b = block_rows(d, scratch.len(), n).expect("scratch shorter than block_scratch_len");
    let (pack, rows) = scratch.split_at_mut(GEMM_PACK_LEN);
    let h = &mut rows[..b * d.hidden];
    for block in v.chunks_mut(b * d.visible) {
        gibbs_block(model, block, steps, h, pack, rng);
    }
}

/// `steps` Gibbs steps on one block of rows; `h` holds at least rows × H.
fn gibbs_block<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    v: &mut [f32],
    steps: u32,
    h: &mut [f32],
    pack: &mut [f32],
    rng: &mut R,
) {
    let d = model.dims();
    let h = &mut h[..v.len() / d.visible * d.hidden];
    for _ in 0..steps {
        hidden_fields_rows(model, v, h, pack);
        sample_pm1_in_place(h, rng);
        visible_fields_rows(model, h, v, pack);
        sample_pm1_in_place(v, rng);
    }
}

/// [`dense_accumulate_phase`] for samples stored as packed spins: `n_chains` vectors of
/// `words_for(V)` words each in `chains_words`. Fields come from
/// [`DenseRbm::hidden_field_packed`] (`colsum` of the current parameters); the `W` part adds
/// or subtracts `weight/n · tanh φ` into row `i` by the sign of `v_i`, with no multiplies.
///
/// # Panics
/// If `chains_words.len() != n_chains · words_for(V)`, `colsum.len() != H`,
/// `grad.len() != param_len` or `scratch` is shorter than [`phase_scratch_len`].
pub fn dense_accumulate_phase_packed<S: AsRef<[f32]>>(
    model: &DenseRbm<S>,
    colsum: &[f32],
    chains_words: &[u64],
    n_chains: usize,
    weight: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    let nw = words_for(d.visible);
    assert_eq!(chains_words.len(), n_chains * nw, "chains_words must hold n_chains·words_for(V)");
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    assert!(scratch.len() >= phase_scratch_len(d), "scratch shorter than phase_scratch_len");
    if n_chains == 0 {
        return;
    }
    let scale = weight / n_chains as f32;
    let t = &mut scratch[..d.hidden];
    let (gw, gbias) = grad.split_at_mut(d.weights_len());
    for words in chains_words.chunks_exact(nw) {
        let v = PackedSpins::new_unchecked(words, d.visible);
        model.hidden_field_packed(&v, colsum, t);
        // t ← scale·tanh φ; the W rows then take ±t.
        for x in t.iter_mut() {
            *x = scale * tanh(*x);
        }
        for (c, &word) in words.iter().enumerate() {
            let start = c * WORD_BITS;
            let end = (start + WORD_BITS).min(d.visible);
            for (b, row) in
                gw[start * d.hidden..end * d.hidden].chunks_exact_mut(d.hidden).enumerate()
            {
                if (word >> b) & 1 == 1 {
                    for (g, &x) in row.iter_mut().zip(t.iter()) {
                        *g += x;
                    }
                } else {
                    for (g, &x) in row.iter_mut().zip(t.iter()) {
                        *g -= x;
                    }
                }
            }
        }
        if d.biases {
            let (ga, gb) = gbias.split_at_mut(d.visible);
            for (c, chunk) in ga.chunks_mut(WORD_BITS).enumerate() {
                let word = words[c];
                for (b, g) in chunk.iter_mut().enumerate() {
                    if (word >> b) & 1 == 1 {
                        *g += scale;
                    } else {
                        *g -= scale;
                    }
                }
            }
            for (g, &x) in gb.iter_mut().zip(t.iter()) {
                *g += x;
            }
        }
    }
}

/// Row count of `batch` and the positive-phase weight for `divisor` (0 means the row count).
fn positive_weight(d: DenseDims, batch: &[f32], divisor: usize) -> (usize, f32) {
    assert_eq!(batch.len() % d.visible, 0, "batch rows must have V entries");
    let rows = batch.len() / d.visible;
    let weight = if divisor == 0 { 1.0 } else { rows as f32 / divisor as f32 };
    (rows, weight)
}

/// The CD-k step direction `∇ = g(batch) − g(S⁻)` (replaces `grad`).
///
/// `batch` holds `B` rows of `V` spins (±1; 0 counts as a neutral spin in the positive phase).
/// The positive phase sums over the rows and divides by `divisor` (0 means `B`), as in
/// [`crate::train::pid_gradient`]: pass the configured batch size so a short final batch takes
/// a proportionally smaller positive step. One chain starts at each batch row (a 0 entry
/// starts at `+1`, [`crate::spins::sign_f32`]) and runs `k` Gibbs steps ([`gibbs_rows`], in
/// blocks of rows); `S⁻` is the `B` final visible states, averaged with weight 1. `k = 0` is
/// allowed: the chains stay at the batch and, for ±1 rows, the two phases cancel.
///
/// # Panics
/// If `batch.len()` is not a multiple of `V`, `grad.len() != param_len` or `scratch` is
/// shorter than [`block_scratch_len`]`(dims, 1)`.
pub fn cd_gradient<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    batch: &[f32],
    divisor: usize,
    k: u32,
    grad: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) {
    let d = model.dims();
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    let (_, weight) = positive_weight(d, batch, divisor);
    grad.fill(0.0);
    dense_accumulate_phase(model, batch, weight, grad, scratch);
    cd_negative_phase(model, batch, k, -1.0, grad, scratch, rng);
}

/// The CD-k negative phase alone: one chain starts at each row of `batch` (0 entries start at
/// `+1`), runs `k` Gibbs steps, and `weight/B · Σ [v ⊗ tanh φ | v | tanh φ]` of the final
/// states is added to `grad`. [`cd_gradient`] is the positive phase plus this with weight
/// −1; a caller spreading rows over threads passes `−rows_here/rows_total`.
///
/// # Panics
/// If `batch.len()` is not a multiple of `V`, `grad.len() != param_len` or `scratch` is
/// shorter than [`block_scratch_len`]`(dims, 1)`.
pub fn cd_negative_phase<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    batch: &[f32],
    k: u32,
    weight: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) {
    let d = model.dims();
    assert_eq!(batch.len() % d.visible, 0, "batch rows must have V entries");
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    let rows = batch.len() / d.visible;
    if rows == 0 {
        return;
    }
    let (b, pack, vbuf, h) = block_buffers(d, scratch, rows);
    for s in batch.chunks(b * d.visible) {
        let v = &mut vbuf[..s.len()];
        for (x, &y) in v.iter_mut().zip(s) {
            *x = crate::spins::sign_f32(y);
        }
        gibbs_block(model, v, k, h, pack, rng);
        phase_block(model, v, weight / rows as f32, grad, h, pack);
    }
}

/// Fills `n_chains` persistent chains with uniform random ±1 spins (padding bits 0): one
/// `next_u64` per word, chain after chain.
///
/// # Panics
/// If `chains.len() != n_chains · words_for(visible)`.
pub fn pcd_init_chains<R: RngCore + ?Sized>(
    chains: &mut [u64],
    n_chains: usize,
    visible: usize,
    rng: &mut R,
) {
    let nw = words_for(visible);
    assert_eq!(chains.len(), n_chains * nw, "chains must hold n_chains·words_for(V) words");
    for words in chains.chunks_exact_mut(nw) {
        for (c, w) in words.iter_mut().enumerate() {
            *w = rng.next_u64() & word_mask(c, visible);
        }
    }
}

/// The PCD-k step direction `∇ = g(batch) − g(S⁻)` (replaces `grad`).
///
/// The positive phase is that of [`cd_gradient`] (`divisor` likewise; 0 means the row count).
/// `chains` holds `n_chains` packed visible states of `words_for(V)` words each, owned by the
/// caller and persistent: every chain advances `k` Gibbs steps from where it stands
/// ([`gibbs_rows`]: in blocks of chains, each block unpacked, stepped and packed back), and
/// `S⁻` is all `n_chains` states after those steps. The state after call `n` is the start of call `n + 1`; initialise the chains once
/// with [`pcd_init_chains`] (or any valid packed spins). With `n_chains = 0` the negative phase
/// is empty.
///
/// # Panics
/// If `batch.len()` is not a multiple of `V`, `grad.len() != param_len`,
/// `chains.len() != n_chains · words_for(V)` or `scratch` is shorter than
/// [`block_scratch_len`]`(dims, 1)`.
///
/// # Examples
/// ```
/// use rapid_core::dense::*;
/// use rapid_core::optim::{adam_update, Adam};
/// use rand_core::SeedableRng;
///
/// const D: DenseDims = DenseDims::new(4, 3, true);
/// const N: usize = D.param_len();
/// let (mut m, mut v, mut grad) = ([0.0f32; N], [0.0f32; N], [0.0f32; N]);
/// let mut params = [0.01f32; N];
/// let mut chains = [0u64; pcd_chain_words_len(D, 8)];
/// let mut scratch = vec![0.0f32; pcd_scratch_len(D, 8, 2)];
/// let mut rng = rand_pcg::Pcg32::seed_from_u64(1);
/// pcd_init_chains(&mut chains, 8, D.visible, &mut rng);
/// let batch = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0]; // two images, V = 4
/// for t in 1..=3 {
///     let model = DenseRbm::new(&params[..], D);
///     pcd_gradient(&model, &batch, 0, 1, &mut chains, 8, &mut grad, &mut scratch, &mut rng);
///     adam_update(&mut params, &mut m, &mut v, &grad, &Adam::default(), t);
/// }
/// assert!(params.iter().all(|p| p.is_finite()));
/// ```
#[allow(clippy::too_many_arguments)]
pub fn pcd_gradient<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    batch: &[f32],
    divisor: usize,
    k: u32,
    chains: &mut [u64],
    n_chains: usize,
    grad: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) {
    let d = model.dims();
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    let (_, weight) = positive_weight(d, batch, divisor);
    grad.fill(0.0);
    dense_accumulate_phase(model, batch, weight, grad, scratch);
    pcd_negative_phase(model, k, chains, n_chains, -1.0, grad, scratch, rng);
}

/// The PCD-k negative phase alone: the `n_chains` packed chains advance `k` Gibbs steps in
/// place (blocks of chains, each unpacked, stepped and packed back) and
/// `weight/n_chains · Σ [v ⊗ tanh φ | v | tanh φ]` of their new states is added to `grad`.
/// [`pcd_gradient`] is the positive phase plus this with weight −1.
///
/// # Panics
/// If `chains.len() != n_chains · words_for(V)`, `grad.len() != param_len` or `scratch` is
/// shorter than [`block_scratch_len`]`(dims, 1)`.
#[allow(clippy::too_many_arguments)]
pub fn pcd_negative_phase<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    k: u32,
    chains: &mut [u64],
    n_chains: usize,
    weight: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) {
    let d = model.dims();
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    let nw = words_for(d.visible);
    assert_eq!(chains.len(), n_chains * nw, "chains must hold n_chains·words_for(V) words");
    if n_chains == 0 {
        return;
    }
    let (b, pack, vbuf, h) = block_buffers(d, scratch, n_chains);
    for words in chains.chunks_mut(b * nw) {
        let r = words.len() / nw;
        let v = &mut vbuf[..r * d.visible];
        for (w, row) in words.chunks_exact(nw).zip(v.chunks_exact_mut(d.visible)) {
            PackedSpins::new_unchecked(w, d.visible).to_f32(row);
        }
        gibbs_block(model, v, k, h, pack, rng);
        for (w, row) in words.chunks_exact_mut(nw).zip(v.chunks_exact(d.visible)) {
            PackedSpins::new_unchecked(w, d.visible).copy_from_f32(row);
        }
        phase_block(model, v, weight / n_chains as f32, grad, h, pack);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use crate::num::{log_2cosh_f64, sigmoid};
    use crate::test_util::{
        assert_ascent_matches_finite_difference, free_energy_by_enumeration, pm1, uniform,
    };
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;
    use std::vec;
    use std::vec::Vec;

    fn random_params(rng: &mut Pcg64, d: DenseDims, scale: f32) -> Vec<f32> {
        (0..d.param_len()).map(|_| uniform(rng) * scale).collect()
    }

    fn pack(v: &[f32], words: &mut [u64]) {
        PackedSpins::new_unchecked(words, v.len()).copy_from_f32(v);
    }

    #[test]
    fn dims_lengths_and_validation() {
        assert_eq!(DenseDims::new(3, 4, false).param_len(), 12);
        assert_eq!(DenseDims::new(3, 4, true).param_len(), 19);
        assert!(DenseDims::new(3, 4, true).validate().is_ok());
        assert_eq!(DenseDims::new(0, 4, true).validate(), Err(ConfigError::NoVisible));
        assert_eq!(DenseDims::new(3, 0, false).validate(), Err(ConfigError::NoHidden));
        assert_eq!(DenseDims::new(usize::MAX, 2, false).validate(), Err(ConfigError::TooLarge));
        assert_eq!(DenseDims::new(1 << 40, 1 << 30, false).validate(), Err(ConfigError::TooLarge));
        let p: Vec<f32> = (0..19).map(|x| x as f32).collect();
        let m = DenseRbm::new(&p[..], DenseDims::new(3, 4, true));
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0, 7.0]);
        assert_eq!(m.a().unwrap(), &[12.0, 13.0, 14.0]);
        assert_eq!(m.b().unwrap(), &[15.0, 16.0, 17.0, 18.0]);
        let q = [0.0f32; 12];
        let m = DenseRbm::new(&q[..], DenseDims::new(3, 4, false));
        assert!(m.a().is_none() && m.b().is_none());
    }

    /// Fields and energy from the definition, in f64.
    #[test]
    fn fields_and_energy_match_the_definition() {
        let mut rng = Pcg64::seed_from_u64(30);
        for &biases in &[false, true] {
            let d = DenseDims::new(7, 5, biases);
            let p = random_params(&mut rng, d, 1.0);
            let m = DenseRbm::new(&p[..], d);
            let (v, h) = (pm1(&mut rng, 7), pm1(&mut rng, 5));
            let (mut phi, mut psi) = ([0.0f32; 5], [0.0f32; 7]);
            m.hidden_field(&v, &mut phi);
            m.visible_field(&h, &mut psi);
            let a = |i: usize| m.a().map_or(0.0, |a| a[i] as f64);
            let b = |j: usize| m.b().map_or(0.0, |b| b[j] as f64);
            let w = |i: usize, j: usize| p[i * 5 + j] as f64;
            let mut e = 0.0f64;
            for j in 0..5 {
                let want = (0..7).map(|i| w(i, j) * v[i] as f64).sum::<f64>() + b(j);
                assert!((phi[j] as f64 - want).abs() < 1e-5);
                e -= b(j) * h[j] as f64;
            }
            for i in 0..7 {
                let wh = (0..5).map(|j| w(i, j) * h[j] as f64).sum::<f64>();
                assert!((psi[i] as f64 - wh - a(i)).abs() < 1e-5);
                e -= v[i] as f64 * (wh + a(i));
            }
            assert!((m.energy(&v, &h) as f64 - e).abs() < 1e-4);
        }
    }

    #[test]
    fn packed_hidden_field_equals_dense_field() {
        let mut rng = Pcg64::seed_from_u64(31);
        for &biases in &[false, true] {
            for &nv in &[1usize, 63, 64, 65, 130] {
                let d = DenseDims::new(nv, 7, biases);
                let p = random_params(&mut rng, d, 1.0);
                let m = DenseRbm::new(&p[..], d);
                let mut colsum = vec![0.0; 7];
                m.column_sums(&mut colsum);
                let mut words = vec![0u64; words_for(nv)];
                for _ in 0..10 {
                    let v = pm1(&mut rng, nv);
                    pack(&v, &mut words);
                    let packed = PackedSpins::new_checked(&words[..], nv).unwrap();
                    let (mut want, mut got) = ([0.0f32; 7], [0.0f32; 7]);
                    m.hidden_field(&v, &mut want);
                    m.hidden_field_packed(&packed, &colsum, &mut got);
                    for j in 0..7 {
                        assert!(
                            (want[j] - got[j]).abs() < 1e-5 * nv as f32,
                            "V = {nv}, biases {biases}: {} vs {}",
                            want[j],
                            got[j]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn free_energy_sums_out_hidden_units() {
        // F(v) = −log Σ_h e^{−E(v,h)}, by enumerating h on a small model with biases.
        let mut rng = Pcg64::seed_from_u64(32);
        let d = DenseDims::new(5, 6, true);
        let p = random_params(&mut rng, d, 1.0);
        let m = DenseRbm::new(&p[..], d);
        let mut scratch = vec![0.0; free_energy_scratch_len(d)];
        for _ in 0..5 {
            let v = pm1(&mut rng, 5);
            let want = free_energy_by_enumeration(6, |h| m.energy(&v, h));
            let f = m.free_energy(&v, &mut scratch) as f64;
            assert!((f - want).abs() < 1e-4, "F = {f}, −log Z_v = {want}");
        }
    }

    /// Mean free energy of the batch in f64, from the definition.
    fn mean_free_energy(p: &[f64], d: DenseDims, batch: &[f32]) -> f64 {
        let (nv, nh) = (d.visible, d.hidden);
        let n = batch.len() / nv;
        let mut total = 0.0;
        for v in batch.chunks_exact(nv) {
            for j in 0..nh {
                let mut phi: f64 = (0..nv).map(|i| p[i * nh + j] * v[i] as f64).sum();
                if d.biases {
                    phi += p[nv * nh + nv + j];
                }
                total -= log_2cosh_f64(phi);
            }
            if d.biases {
                total -= (0..nv).map(|i| p[nv * nh + i] * v[i] as f64).sum::<f64>();
            }
        }
        total / n as f64
    }

    /// The positive phase is `−∂⟨F⟩_batch/∂θ` for every parameter, by central differences.
    #[test]
    fn positive_phase_equals_finite_difference_of_free_energy() {
        let mut rng = Pcg64::seed_from_u64(33);
        for &(nv, nh, b, biases) in &[(4, 5, 3, true), (6, 3, 2, false), (5, 7, 1, true)] {
            let d = DenseDims::new(nv, nh, biases);
            let p = random_params(&mut rng, d, 1.0);
            let mut batch = pm1(&mut rng, b * nv);
            batch[1] = 0.0; // a neutral spin counts too
            let m = DenseRbm::new(&p[..], d);
            let mut grad = vec![0.0; d.param_len()];
            let mut scratch = vec![0.0; phase_scratch_len(d)];
            dense_accumulate_phase(&m, &batch, 1.0, &mut grad, &mut scratch);
            let what = std::format!("{nv}x{nh} (biases {biases})");
            assert_ascent_matches_finite_difference(
                &grad,
                &p,
                |x| mean_free_energy(x, d, &batch),
                &what,
            );
        }
    }

    #[test]
    fn packed_phase_equals_unpacked_phase() {
        let mut rng = Pcg64::seed_from_u64(34);
        for &(nv, biases) in &[(65usize, true), (64, false), (3, true)] {
            let d = DenseDims::new(nv, 9, biases);
            let p = random_params(&mut rng, d, 0.5);
            let m = DenseRbm::new(&p[..], d);
            let n = 4;
            let samples = pm1(&mut rng, n * nv);
            let nw = words_for(nv);
            let mut words = vec![0u64; n * nw];
            for (row, w) in samples.chunks_exact(nv).zip(words.chunks_exact_mut(nw)) {
                pack(row, w);
            }
            let mut colsum = vec![0.0; 9];
            m.column_sums(&mut colsum);
            let mut scratch = vec![0.0; phase_scratch_len(d)];
            let (mut a, mut b) = (vec![0.5; d.param_len()], vec![0.5; d.param_len()]);
            dense_accumulate_phase(&m, &samples, -0.7, &mut a, &mut scratch);
            dense_accumulate_phase_packed(&m, &colsum, &words, n, -0.7, &mut b, &mut scratch);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "120k draws: too slow under Miri")]
    fn gibbs_draws_follow_the_conditionals_and_keep_padding_zero() {
        let mut rng = Pcg64::seed_from_u64(35);
        let d = DenseDims::new(65, 3, true);
        let p = random_params(&mut rng, d, 0.1);
        let m = DenseRbm::new(&p[..], d);
        let mut colsum = [0.0f32; 3];
        m.column_sums(&mut colsum);
        let v0 = pm1(&mut rng, 65);
        let mut w0 = [0u64; 2];
        pack(&v0, &mut w0);
        let mut phi = [0.0f32; 3];
        m.hidden_field(&v0, &mut phi);
        let n = 100_000;
        let mut ups = [0usize; 3];
        let mut scratch = [0.0f32; 3];
        for _ in 0..n {
            let mut w = w0;
            let mut v = PackedSpins::new_checked(&mut w[..], 65).unwrap();
            gibbs_packed(&m, &colsum, &mut v, 1, &mut scratch, &mut rng);
            PackedSpins::new_checked(&w[..], 65).expect("padding bits stay zero");
            for a in 0..3 {
                assert!(scratch[a] == 1.0 || scratch[a] == -1.0);
                ups[a] += usize::from(scratch[a] > 0.0);
            }
        }
        for a in 0..3 {
            let p = sigmoid(2.0 * phi[a]) as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((ups[a] as f64 / n as f64 - p).abs() < 5.0 * se, "hidden unit {a}");
        }
        // Visible conditional for a fixed h; long runs keep the padding zero.
        let h = [1.0f32, -1.0, 1.0];
        let mut psi = [0.0f32; 65];
        m.visible_field(&h, &mut psi);
        let n = 20_000;
        let mut vups = [0usize; 65];
        let mut w = w0;
        for _ in 0..n {
            let mut v = PackedSpins::new_checked(&mut w[..], 65).unwrap();
            sample_visible_packed(&m, &h, &mut v, &mut rng);
            for (i, u) in vups.iter_mut().enumerate() {
                *u += usize::from(v.get(i) > 0);
            }
        }
        PackedSpins::new_checked(&w[..], 65).expect("padding bits stay zero");
        for i in [0usize, 63, 64] {
            let p = sigmoid(2.0 * psi[i]) as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((vups[i] as f64 / n as f64 - p).abs() < 5.0 * se, "visible unit {i}");
        }
        let mut w = w0;
        let mut v = PackedSpins::new_checked(&mut w[..], 65).unwrap();
        gibbs_packed(&m, &colsum, &mut v, 50, &mut scratch, &mut rng);
        PackedSpins::new_checked(&w[..], 65).expect("padding bits stay zero");
    }

    /// The packed Gibbs step draws exactly as the f32 half-steps do, in the documented order.
    #[test]
    fn packed_gibbs_matches_unpacked_half_steps() {
        let mut rng = Pcg64::seed_from_u64(36);
        let d = DenseDims::new(70, 6, true);
        // Dyadic weights: every field is exact in f32, so both paths see identical fields.
        let p: Vec<f32> =
            (0..d.param_len()).map(|_| (rng.next_u32() % 33) as f32 / 16.0 - 1.0).collect();
        let m = DenseRbm::new(&p[..], d);
        let mut colsum = [0.0f32; 6];
        m.column_sums(&mut colsum);
        let mut vf = pm1(&mut rng, 70);
        let mut words = [0u64; 2];
        pack(&vf, &mut words);
        let (mut r1, mut r2) = (Pcg64::seed_from_u64(9), Pcg64::seed_from_u64(9));
        let (mut hf, mut scratch) = ([0.0f32; 6], [0.0f32; 6]);
        for _ in 0..5 {
            sample_hidden(&m, &vf, &mut hf, &mut r1);
            sample_visible(&m, &hf, &mut vf, &mut r1);
        }
        let mut v = PackedSpins::new_checked(&mut words[..], 70).unwrap();
        gibbs_packed(&m, &colsum, &mut v, 5, &mut scratch, &mut r2);
        let mut back = [0.0f32; 70];
        v.to_f32(&mut back);
        assert_eq!(&back[..], &vf[..]);
        assert_eq!(scratch, hf);
    }

    /// With k = 0 the CD chains are the batch itself, so the two phases cancel exactly for a
    /// one-row batch. The weights are dyadic so the packed and unpacked fields agree bit for
    /// bit; chains started anywhere else would leave a non-zero gradient. (With more rows the
    /// sums over rows round in a different order, so the cancellation holds to rounding.)
    #[test]
    fn cd_chains_start_at_the_batch() {
        let mut rng = Pcg64::seed_from_u64(37);
        for &biases in &[false, true] {
            let d = DenseDims::new(67, 5, biases);
            let p: Vec<f32> =
                (0..d.param_len()).map(|_| (rng.next_u32() % 65) as f32 / 32.0 - 1.0).collect();
            let m = DenseRbm::new(&p[..], d);
            let batch = pm1(&mut rng, 67);
            let mut grad = vec![1.0; d.param_len()];
            let mut scratch = vec![0.0; cd_scratch_len(d, 1)];
            cd_gradient(&m, &batch, 0, 0, &mut grad, &mut scratch, &mut rng);
            assert!(grad.iter().all(|&g| g == 0.0), "k = 0 must cancel exactly");
            // One step moves the chain: the gradient is no longer zero.
            cd_gradient(&m, &batch, 0, 1, &mut grad, &mut scratch, &mut rng);
            assert!(grad.iter().any(|&g| g != 0.0));
        }
        // Several rows and random weights: the cancellation holds up to rounding.
        let d = DenseDims::new(40, 8, true);
        let p = random_params(&mut rng, d, 1.0);
        let m = DenseRbm::new(&p[..], d);
        let batch = pm1(&mut rng, 4 * 40);
        let mut grad = vec![0.0; d.param_len()];
        let mut scratch = vec![0.0; cd_scratch_len(d, 4)];
        cd_gradient(&m, &batch, 0, 0, &mut grad, &mut scratch, &mut rng);
        assert!(grad.iter().all(|g| g.abs() < 1e-5));
    }

    /// PCD chains persist: two calls with k = 1 leave the chains (and the second gradient)
    /// exactly where two direct [`gibbs_rows`] steps with the same RNG stream leave them.
    #[test]
    fn pcd_chains_persist_across_calls() {
        let mut rng = Pcg64::seed_from_u64(38);
        let d = DenseDims::new(66, 10, true);
        let p = random_params(&mut rng, d, 0.3);
        let m = DenseRbm::new(&p[..], d);
        let batch = pm1(&mut rng, 2 * 66);
        let c = 6;
        let mut chains = vec![0u64; pcd_chain_words_len(d, c)];
        pcd_init_chains(&mut chains, c, 66, &mut Pcg64::seed_from_u64(5));
        for w in chains.chunks_exact(2) {
            PackedSpins::new_checked(w, 66).expect("init keeps padding zero");
        }
        let start = chains.clone();
        let mut scratch = vec![0.0; pcd_scratch_len(d, c, 2)];
        let mut grad = vec![0.0; d.param_len()];
        let mut r = Pcg64::seed_from_u64(77);
        pcd_gradient(&m, &batch, 0, 1, &mut chains, c, &mut grad, &mut scratch, &mut r);
        assert_ne!(chains, start, "the chains must move");
        pcd_gradient(&m, &batch, 0, 1, &mut chains, c, &mut grad, &mut scratch, &mut r);
        for w in chains.chunks_exact(2) {
            PackedSpins::new_checked(w, 66).expect("padding stays zero");
        }

        // Direct run: one step of every chain, twice, with the same stream.
        let mut direct = vec![0.0f32; c * 66];
        for (w, row) in start.chunks_exact(2).zip(direct.chunks_exact_mut(66)) {
            PackedSpins::new_unchecked(w, 66).to_f32(row);
        }
        let mut r = Pcg64::seed_from_u64(77);
        gibbs_rows(&m, &mut direct, 1, &mut scratch, &mut r);
        gibbs_rows(&m, &mut direct, 1, &mut scratch, &mut r);
        let mut packed = vec![0u64; pcd_chain_words_len(d, c)];
        for (w, row) in packed.chunks_exact_mut(2).zip(direct.chunks_exact(66)) {
            PackedSpins::new_unchecked(w, 66).copy_from_f32(row);
        }
        assert_eq!(chains, packed);
        let mut want = vec![0.0; d.param_len()];
        dense_accumulate_phase(&m, &batch, 1.0, &mut want, &mut scratch);
        dense_accumulate_phase(&m, &direct, -1.0, &mut want, &mut scratch);
        assert_eq!(grad, want);
    }

    /// The GEMM phase equals the per-sample oracle, for row counts around the block size and
    /// one-row blocks.
    #[test]
    #[cfg_attr(miri, ignore = "GEMMs over hundreds of rows: too slow under Miri")]
    fn blocked_phase_matches_per_sample_oracle() {
        let mut rng = Pcg64::seed_from_u64(41);
        for &(v, h, n, biases) in &[(16, 100, 3, true), (67, 33, 130, false), (5, 70, 1, true)] {
            let d = DenseDims::new(v, h, biases);
            let p = random_params(&mut rng, d, 0.5);
            let m = DenseRbm::new(&p[..], d);
            let samples = pm1(&mut rng, n * v);
            let mut want = vec![0.0; d.param_len()];
            let mut small = vec![0.0; phase_scratch_len(d)];
            dense_accumulate_phase_per_sample(&m, &samples, -0.5, &mut want, &mut small);
            for len in [block_scratch_len(d, n), block_scratch_len(d, 1)] {
                let mut got = vec![0.0; d.param_len()];
                let mut scratch = vec![0.0; len];
                dense_accumulate_phase(&m, &samples, -0.5, &mut got, &mut scratch);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5, "{v}x{h} n{n} len{len}: {g} vs {w}");
                }
            }
        }
    }

    /// Batched Gibbs steps follow the exact one-step kernel: for V = 1,
    /// `P(v' = +1 | v) = Σ_h P(h | v) σ(2(W h + a))` in closed form, checked over 200k
    /// chains (one block of bulk draws per half-step).
    #[test]
    #[cfg_attr(miri, ignore = "statistical: too slow under Miri")]
    fn gibbs_rows_follow_the_two_step_kernel() {
        // V = 1, H = 2 with biases: P(v' = +1 | v) = Σ_h P(h|v) σ(2(W h + a)), exact.
        let d = DenseDims::new(1, 2, true);
        let p = [0.7f32, -0.4, 0.2, 0.1, -0.3]; // W (1×2), a (1), b (2)
        let m = DenseRbm::new(&p[..], d);
        let n = 200_000;
        let mut v = vec![1.0f32; n];
        let mut scratch = vec![0.0; block_scratch_len(d, n)];
        gibbs_rows(&m, &mut v, 1, &mut scratch, &mut Pcg64::seed_from_u64(42));
        let mut want = 0.0f64;
        for h0 in [-1.0f64, 1.0] {
            for h1 in [-1.0f64, 1.0] {
                let ph = |h: f64, phi: f64| 1.0 / (1.0 + (-2.0 * h * phi).exp());
                let p_h = ph(h0, 0.7 + 0.1) * ph(h1, -0.4 - 0.3);
                let psi = 0.7 * h0 - 0.4 * h1 + 0.2;
                want += p_h / (1.0 + (-2.0 * psi).exp());
            }
        }
        let got = v.iter().filter(|&&x| x == 1.0).count() as f64 / n as f64;
        let sd = (want * (1.0 - want) / n as f64).sqrt();
        assert!((got - want).abs() < 5.0 * sd, "P(v' = +1) = {got}, exact {want}");
    }

    #[test]
    fn same_seed_gives_the_same_gradient() {
        let mut rng = Pcg64::seed_from_u64(39);
        let d = DenseDims::new(20, 12, true);
        let p = random_params(&mut rng, d, 0.5);
        let m = DenseRbm::new(&p[..], d);
        let batch = pm1(&mut rng, 5 * 20);
        let cd = |seed: u64| {
            let mut g = vec![0.0; d.param_len()];
            let mut scratch = vec![0.0; cd_scratch_len(d, 5)];
            let mut r = Pcg64::seed_from_u64(seed);
            cd_gradient(&m, &batch, 0, 3, &mut g, &mut scratch, &mut r);
            g
        };
        let pcd = |seed: u64| {
            let mut g = vec![0.0; d.param_len()];
            let mut chains = vec![0u64; pcd_chain_words_len(d, 7)];
            let mut r = Pcg64::seed_from_u64(seed);
            pcd_init_chains(&mut chains, 7, 20, &mut r);
            let mut scratch = vec![0.0; pcd_scratch_len(d, 7, 5)];
            pcd_gradient(&m, &batch, 0, 3, &mut chains, 7, &mut g, &mut scratch, &mut r);
            (g, chains)
        };
        let a = cd(1);
        assert_eq!(a, cd(1));
        assert_ne!(a, cd(2));
        assert!(a.iter().all(|x| x.is_finite()));
        assert_eq!(pcd(1), pcd(1));
        assert_ne!(pcd(1).0, pcd(2).0);
    }

    /// A divisor larger than the row count scales the positive phase only.
    #[test]
    fn divisor_scales_only_the_positive_phase() {
        let mut rng = Pcg64::seed_from_u64(40);
        let d = DenseDims::new(6, 4, true);
        let p = random_params(&mut rng, d, 0.5);
        let m = DenseRbm::new(&p[..], d);
        let one = pm1(&mut rng, 6);
        let mut chains = vec![0u64; pcd_chain_words_len(d, 3)];
        pcd_init_chains(&mut chains, 3, 6, &mut rng);
        let mut scratch = vec![0.0; pcd_scratch_len(d, 3, 1)];
        let (mut a, mut b) = (vec![0.0; d.param_len()], vec![0.0; d.param_len()]);
        let (mut ca, mut cb) = (chains.clone(), chains.clone());
        let mut r = Pcg64::seed_from_u64(3);
        pcd_gradient(&m, &one, 4, 0, &mut ca, 3, &mut a, &mut scratch, &mut r);
        pcd_gradient(&m, &one, 0, 0, &mut cb, 3, &mut b, &mut scratch, &mut r);
        let (mut pos, mut neg) = (vec![0.0; d.param_len()], vec![0.0; d.param_len()]);
        dense_accumulate_phase(&m, &one, 1.0, &mut pos, &mut scratch);
        let mut colsum = vec![0.0; 4];
        m.column_sums(&mut colsum);
        dense_accumulate_phase_packed(&m, &colsum, &chains, 3, 1.0, &mut neg, &mut scratch);
        for j in 0..d.param_len() {
            assert!((a[j] - (0.25 * pos[j] - neg[j])).abs() < 1e-6);
            assert!((b[j] - (pos[j] - neg[j])).abs() < 1e-6);
        }
    }
}
