//! The dense RBM: sizes, the parameter view over a caller slice, and its fields.
//!
//! ```text
//! E(v, h) = −vᵀ W h − aᵀ v − bᵀ h      φ = Wᵀ v + b      ψ = W h + a
//! F(v) = −aᵀ v − Σ_α log(2 cosh φ_α)
//! ```
//!
//! Layout: `W` row-major `V × H`, then `a` (`V`) and `b` (`H`) when the model has biases.

use crate::blocks::BlockModel;
use crate::error::ConfigError;
use crate::kernels::{gemm_with, prepacked_b_len, Epilogue, GemmDims, Isa, MatMut, MatRef};
use crate::num::log_2cosh;
use crate::num::{axpy, dot};
use crate::ra::model::{gemm_pre, prepack_for};
use crate::spins::{word_mask, PackedSpins, WORD_BITS};

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

/// Entries a dense model of `dims` prepacks at level `isa` ([`BlockModel::prepack_len`]): `W`
/// and `Wᵀ` in the level's panels, about `2VH` entries on x86-64 (19 MB at MNIST sizes), 0 at
/// the scalar level.
pub const fn prepack_len(isa: Isa, dims: DenseDims) -> usize {
    prepacked_b_len(isa, dims.visible, dims.hidden)
        + prepacked_b_len(isa, dims.hidden, dims.visible)
}

impl<S: AsRef<[f32]>> DenseRbm<S> {
    /// `W` (`V × H`, for the hidden fields) and `Wᵀ` (for the visible fields) as GEMM operands
    /// with their sizes `(k, n)`, in the order of the prepacked buffer.
    fn operands(&self) -> [(MatRef<'_>, usize, usize); 2] {
        let (v, h) = (self.dims.visible, self.dims.hidden);
        [(MatRef::row_major(self.w(), h), v, h), (MatRef { data: self.w(), rs: 1, cs: h }, h, v)]
    }

    /// `pre` cut into the two regions of [`DenseRbm::operands`] (empty if `pre` is).
    fn regions<'p>(&self, isa: Isa, pre: &'p [f32]) -> [&'p [f32]; 2] {
        if pre.is_empty() {
            return [&[], &[]];
        }
        let (v, h) = (self.dims.visible, self.dims.hidden);
        let (w, rest) = pre.split_at(prepacked_b_len(isa, v, h));
        [w, &rest[..prepacked_b_len(isa, h, v)]]
    }
}

/// The block fields as GEMMs; no per-row work. `W` and `Wᵀ` can be packed once ahead
/// ([`BlockModel::prepack`], [`prepack_len`] entries) instead of in every block.
impl<S: AsRef<[f32]>> BlockModel for DenseRbm<S> {
    fn visible(&self) -> usize {
        self.dims.visible
    }

    fn hidden(&self) -> usize {
        self.dims.hidden
    }

    fn param_len(&self) -> usize {
        self.dims.param_len()
    }

    fn row_work(&self) -> usize {
        0
    }

    fn prepack_len(&self, isa: Isa) -> usize {
        prepack_len(isa, self.dims)
    }

    fn prepack(&self, isa: Isa, rows: usize, gibbs: bool, out: &mut [f32]) {
        let [w, w_t] = self.operands();
        let (pw, rest) = out.split_at_mut(prepacked_b_len(isa, w.1, w.2));
        prepack_for(isa, rows, w, pw);
        if gibbs {
            prepack_for(isa, rows, w_t, &mut rest[..prepacked_b_len(isa, w_t.1, w_t.2)]);
        }
    }

    /// `F = S W + b` (`S` rows × V, `F` rows × H).
    fn hidden_fields_pre(
        &self,
        isa: Isa,
        s: &[f32],
        f: &mut [f32],
        _work: &mut [f32],
        (pack, pre): (&mut [f32], &[f32]),
    ) {
        let d = self.dims;
        let r = s.len() / d.visible;
        let f = &mut f[..r * d.hidden];
        let [pw, _] = self.regions(isa, pre);
        let (sm, w) = (MatRef::row_major(s, d.visible), MatRef::row_major(self.w(), d.hidden));
        let dims = GemmDims { m: r, n: d.hidden, k: d.visible };
        let c = MatMut { data: f, rs: d.hidden };
        gemm_pre(isa, dims, 1.0, (sm, w), c, (pack, pw), Epilogue::Set);
        if let Some(b) = self.b() {
            for row in f.chunks_exact_mut(d.hidden) {
                for (x, &bj) in row.iter_mut().zip(b) {
                    *x += bj;
                }
            }
        }
    }

    /// `G = H Wᵀ + a` (`H` rows × H, `G` rows × V).
    fn visible_fields_pre(
        &self,
        isa: Isa,
        h: &[f32],
        g: &mut [f32],
        _work: &mut [f32],
        (pack, pre): (&mut [f32], &[f32]),
    ) {
        let d = self.dims;
        let r = h.len() / d.hidden;
        let g = &mut g[..r * d.visible];
        let [_, pwt] = self.regions(isa, pre);
        let w_t = MatRef { data: self.w(), rs: 1, cs: d.hidden };
        let hm = MatRef::row_major(h, d.hidden);
        let dims = GemmDims { m: r, n: d.visible, k: d.hidden };
        let c = MatMut { data: g, rs: d.visible };
        gemm_pre(isa, dims, 1.0, (hm, w_t), c, (pack, pwt), Epilogue::Set);
        if let Some(a) = self.a() {
            for row in g.chunks_exact_mut(d.visible) {
                for (x, &ai) in row.iter_mut().zip(a) {
                    *x += ai;
                }
            }
        }
    }

    fn phase_scale(&self, weight: f32, n: usize) -> f32 {
        weight / n as f32
    }

    /// `∂W += c·Sᵀ T`, `∂a += c·Σ s`, `∂b += c·Σ t` (no fixed operand: nothing prepacked).
    fn accumulate_block_pre(
        &self,
        isa: Isa,
        s: &[f32],
        t: &[f32],
        _work: &mut [f32],
        scale: f32,
        grad: &mut [f32],
        (pack, _): (&mut [f32], &[f32]),
    ) {
        let d = self.dims;
        let r = s.len() / d.visible;
        let (gw, gbias) = grad.split_at_mut(d.weights_len());
        let s_t = MatRef { data: s, rs: 1, cs: d.visible };
        let tm = MatRef::row_major(t, d.hidden);
        gemm_with(
            isa,
            GemmDims { m: d.visible, n: d.hidden, k: r },
            scale,
            s_t,
            tm,
            MatMut { data: gw, rs: d.hidden },
            pack,
        );
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
}
