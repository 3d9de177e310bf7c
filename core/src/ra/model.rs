//! The regularized-axons (RA) model over caller-owned patterns.
//!
//! # Equations
//! K patterns `ξᵏ = (ξᵏ_v ∈ ℝ^V, ξᵏ_h ∈ ℝ^H)` define the weights
//!
//! ```text
//! W = Ξ_vᵀ Ξ_h / √K                      (V×H, rank ≤ K)
//! ```
//!
//! which the hot paths never form. With the overlaps `m = Ξ_v v` (K) and projections
//! `u = Ξ_h h` (K):
//!
//! ```text
//! φ = Wᵀ v = Ξ_hᵀ m / √K     (hidden field, H)
//! ψ = W h  = Ξ_vᵀ u / √K     (visible field, V)
//! E(v, h) = −vᵀ W h = −(1/√K) Σ_k m_k u_k
//! F(v)    = −Σ_α log(2 cosh φ_α)
//! ```
//!
//! RA models carry no biases. `F` carries the minus sign that the paper's eq. A2 drops.
//!
//! # Layout
//! `Ξ` is one row-major `K × (V+H)` slice of `f32`: row `k` is `ξᵏ_v` followed by `ξᵏ_h`.

use crate::blocks::BlockModel;
use crate::error::ConfigError;
use crate::kernels::{
    gemm_epilogue_with, gemm_packs_b, gemm_with, prepack_b_with, prepacked_b_len, Epilogue,
    GemmDims, Isa, MatMut, MatRef,
};
use crate::num::{axpy, dot, log_2cosh};

/// Layer sizes of an RA model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    /// Visible units `V`.
    pub visible: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Patterns `K`.
    pub patterns: usize,
}

impl Dims {
    /// Sizes `V`, `H`, `K`.
    pub const fn new(visible: usize, hidden: usize, patterns: usize) -> Self {
        Dims { visible, hidden, patterns }
    }

    /// Length of one pattern row, `V + H`.
    #[inline]
    pub const fn width(&self) -> usize {
        self.visible + self.hidden
    }

    /// Length of the pattern slice, `K·(V+H)`.
    #[inline]
    pub const fn xi_len(&self) -> usize {
        self.patterns * self.width()
    }

    /// Length of the formed weight matrix, `V·H`.
    #[inline]
    pub const fn weights_len(&self) -> usize {
        self.visible * self.hidden
    }

    /// Checks that every size is non-zero and that the buffer lengths fit in `usize`.
    ///
    /// # Errors
    /// The first size problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.visible == 0 {
            return Err(ConfigError::NoVisible);
        }
        if self.hidden == 0 {
            return Err(ConfigError::NoHidden);
        }
        if self.patterns == 0 {
            return Err(ConfigError::NoPatterns);
        }
        let width = self.visible.checked_add(self.hidden).ok_or(ConfigError::TooLarge)?;
        width.checked_mul(self.patterns).ok_or(ConfigError::TooLarge)?;
        self.visible.checked_mul(self.hidden).ok_or(ConfigError::TooLarge)?;
        // Keeps index arithmetic in i32-sized kernels and byte sizes (×4) in range.
        if width.saturating_mul(self.patterns) > (isize::MAX as usize) / 8 {
            return Err(ConfigError::TooLarge);
        }
        Ok(())
    }
}

/// An RA model: a view over the patterns `Ξ` (see the module docs for the layout).
#[derive(Clone, Copy, Debug)]
pub struct RaModel<S> {
    xi: S,
    dims: Dims,
    inv_sqrt_k: f32,
}

/// Scratch length for [`RaModel::free_energy`]: `K + H`.
pub const fn free_energy_scratch_len(dims: Dims) -> usize {
    dims.patterns + dims.hidden
}

impl<S: AsRef<[f32]>> RaModel<S> {
    /// Wraps the patterns after checking the sizes ([`Dims::validate`]).
    ///
    /// # Errors
    /// The first size problem ([`ConfigError::NoPatterns`] for `K = 0`, …).
    ///
    /// # Panics
    /// If `xi.len() != K·(V+H)` (a caller bug: the buffer was sized from other dims).
    pub fn new(xi: S, dims: Dims) -> Result<Self, ConfigError> {
        dims.validate()?;
        Ok(Self::new_unchecked(xi, dims))
    }

    /// Wraps the patterns of sizes the caller has validated ([`Dims::validate`]).
    ///
    /// # Panics
    /// If `xi.len() != K·(V+H)` or `K = 0`.
    pub fn new_unchecked(xi: S, dims: Dims) -> Self {
        assert!(dims.patterns > 0, "an RA model needs at least one pattern");
        assert_eq!(xi.as_ref().len(), dims.xi_len(), "pattern slice length must be K·(V+H)");
        let inv_sqrt_k = 1.0 / libm::sqrtf(dims.patterns as f32);
        RaModel { xi, dims, inv_sqrt_k }
    }

    /// The sizes.
    #[inline]
    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// `1/√K`.
    #[inline]
    pub fn inv_sqrt_k(&self) -> f32 {
        self.inv_sqrt_k
    }

    /// All patterns, row-major `K × (V+H)`.
    #[inline]
    pub fn xi(&self) -> &[f32] {
        self.xi.as_ref()
    }

    /// Gives the storage back.
    pub fn into_inner(self) -> S {
        self.xi
    }

    /// Visible part `ξᵏ_v` of pattern `k`.
    #[inline]
    pub fn xi_v(&self, k: usize) -> &[f32] {
        let w = self.dims.width();
        &self.xi.as_ref()[k * w..k * w + self.dims.visible]
    }

    /// Hidden part `ξᵏ_h` of pattern `k`.
    #[inline]
    pub fn xi_h(&self, k: usize) -> &[f32] {
        let w = self.dims.width();
        &self.xi.as_ref()[k * w + self.dims.visible..(k + 1) * w]
    }

    /// Overlaps `m_k = ξᵏ_v · v` (replaces `m`).
    ///
    /// # Panics
    /// If `v.len() != V` or `m.len() != K`.
    pub fn overlaps(&self, v: &[f32], m: &mut [f32]) {
        assert_eq!(v.len(), self.dims.visible, "v must have V entries");
        assert_eq!(m.len(), self.dims.patterns, "m must have K entries");
        for (k, mk) in m.iter_mut().enumerate() {
            *mk = dot(self.xi_v(k), v);
        }
    }

    /// Projections `u_k = ξᵏ_h · h` (replaces `u`).
    ///
    /// # Panics
    /// If `h.len() != H` or `u.len() != K`.
    pub fn projections(&self, h: &[f32], u: &mut [f32]) {
        assert_eq!(h.len(), self.dims.hidden, "h must have H entries");
        assert_eq!(u.len(), self.dims.patterns, "u must have K entries");
        for (k, uk) in u.iter_mut().enumerate() {
            *uk = dot(self.xi_h(k), h);
        }
    }

    /// Hidden field from overlaps, `φ = Ξ_hᵀ m / √K` (replaces `phi`).
    ///
    /// # Panics
    /// If `m.len() != K` or `phi.len() != H`.
    pub fn hidden_field_from_overlaps(&self, m: &[f32], phi: &mut [f32]) {
        assert_eq!(m.len(), self.dims.patterns, "m must have K entries");
        assert_eq!(phi.len(), self.dims.hidden, "phi must have H entries");
        phi.fill(0.0);
        for (k, &mk) in m.iter().enumerate() {
            axpy(mk * self.inv_sqrt_k, self.xi_h(k), phi);
        }
    }

    /// Visible field from projections, `ψ = Ξ_vᵀ u / √K` (replaces `psi`).
    ///
    /// # Panics
    /// If `u.len() != K` or `psi.len() != V`.
    pub fn visible_field_from_projections(&self, u: &[f32], psi: &mut [f32]) {
        assert_eq!(u.len(), self.dims.patterns, "u must have K entries");
        assert_eq!(psi.len(), self.dims.visible, "psi must have V entries");
        psi.fill(0.0);
        for (k, &uk) in u.iter().enumerate() {
            axpy(uk * self.inv_sqrt_k, self.xi_v(k), psi);
        }
    }

    /// Hidden field `φ = Wᵀ v` in O(K(V+H)); `m` (K) is scratch and holds the overlaps after.
    ///
    /// # Panics
    /// On a length mismatch.
    pub fn hidden_field(&self, v: &[f32], m: &mut [f32], phi: &mut [f32]) {
        self.overlaps(v, m);
        self.hidden_field_from_overlaps(m, phi);
    }

    /// Visible field `ψ = W h` in O(K(V+H)); `u` (K) is scratch and holds the projections after.
    ///
    /// # Panics
    /// On a length mismatch.
    pub fn visible_field(&self, h: &[f32], u: &mut [f32], psi: &mut [f32]) {
        self.projections(h, u);
        self.visible_field_from_projections(u, psi);
    }

    /// Forms `W = Ξ_vᵀ Ξ_h / √K`, row-major V×H (replaces `w`). O(K·V·H): for checks and
    /// exports only.
    ///
    /// # Panics
    /// If `w.len() != V·H`.
    pub fn weights(&self, w: &mut [f32]) {
        assert_eq!(w.len(), self.dims.weights_len(), "w must have V·H entries");
        w.fill(0.0);
        let h = self.dims.hidden;
        for k in 0..self.dims.patterns {
            let xh = self.xi_h(k);
            for (i, &xv) in self.xi_v(k).iter().enumerate() {
                axpy(xv * self.inv_sqrt_k, xh, &mut w[i * h..(i + 1) * h]);
            }
        }
    }

    /// Energy `E(v, h) = −(1/√K) Σ_k (ξᵏ_v·v)(ξᵏ_h·h)`, O(K(V+H)), no scratch.
    ///
    /// # Panics
    /// If `v.len() != V` or `h.len() != H`.
    pub fn energy(&self, v: &[f32], h: &[f32]) -> f32 {
        assert_eq!(v.len(), self.dims.visible, "v must have V entries");
        assert_eq!(h.len(), self.dims.hidden, "h must have H entries");
        let s: f32 =
            (0..self.dims.patterns).map(|k| dot(self.xi_v(k), v) * dot(self.xi_h(k), h)).sum();
        -s * self.inv_sqrt_k
    }

    /// Free energy `F(v) = −Σ_α log(2 cosh φ_α)` (overflow-safe). `scratch` needs
    /// [`free_energy_scratch_len`] entries.
    ///
    /// # Panics
    /// If `v.len() != V` or `scratch` is too short.
    pub fn free_energy(&self, v: &[f32], scratch: &mut [f32]) -> f32 {
        let (m, rest) = scratch.split_at_mut(self.dims.patterns);
        let phi = &mut rest[..self.dims.hidden];
        self.hidden_field(v, m, phi);
        -phi.iter().map(|&x| log_2cosh(x)).sum::<f32>()
    }
}

impl<S: AsRef<[f32]>> RaModel<S> {
    /// `Ξ_v` as a `K × V` view.
    fn xv_view(&self) -> MatRef<'_> {
        MatRef { data: self.xi(), rs: self.dims.width(), cs: 1 }
    }

    /// `Ξ_h` as a `K × H` view.
    fn xh_view(&self) -> MatRef<'_> {
        MatRef { data: &self.xi()[self.dims.visible..], rs: self.dims.width(), cs: 1 }
    }

    /// Projections `U = T Ξ_hᵀ` (b×K) of the rows of `t` (b×H); replaces `u`.
    fn projections_rows(&self, isa: Isa, t: &[f32], u: &mut [f32], pack: (&mut [f32], &[f32])) {
        let (k, h) = (self.dims.patterns, self.dims.hidden);
        let b = t.len() / h;
        let dims = GemmDims { m: b, n: k, k: h };
        let (a, bm) = (MatRef::row_major(t, h), self.xh_view().t());
        gemm_pre(isa, dims, 1.0, (a, bm), MatMut { data: u, rs: k }, pack, Epilogue::Set);
    }

    /// The hidden fields `Φ` of the rows of `s` into `phi` with the overlaps `M` in `work`
    /// ([`BlockModel::hidden_fields_pre`]).
    fn hidden_rows(
        &self,
        isa: Isa,
        (s, phi): (&[f32], &mut [f32]),
        work: &mut [f32],
        (pack, pre): (&mut [f32], &[f32]),
    ) {
        let (k, v, h) = (self.dims.patterns, self.dims.visible, self.dims.hidden);
        let [pm, pphi, _, _] = self.regions(isa, pre);
        let b = s.len() / v;
        let m = &mut work[..b * k];
        let dims = GemmDims { m: b, n: k, k: v };
        let ops = (MatRef::row_major(s, v), self.xv_view().t());
        let set = Epilogue::Set;
        gemm_pre(isa, dims, 1.0, ops, MatMut { data: m, rs: k }, (&mut *pack, pm), set);
        let dims = GemmDims { m: b, n: h, k };
        let ops = (MatRef::row_major(m, k), self.xh_view());
        let (c, scale) = (MatMut { data: &mut phi[..b * h], rs: h }, self.inv_sqrt_k);
        gemm_pre(isa, dims, scale, ops, c, (pack, pphi), set);
    }

    /// The four `B` operands of the block products with their sizes `(k, n)`, in the order
    /// of the prepacked buffer: `Ξ_vᵀ` (for `M`), `Ξ_h` (`Φ`), `Ξ_hᵀ` (`U`), `Ξ_v` (`Ψ`).
    fn operands(&self) -> [(MatRef<'_>, usize, usize); 4] {
        let (k, v, h) = (self.dims.patterns, self.dims.visible, self.dims.hidden);
        [
            (self.xv_view().t(), v, k),
            (self.xh_view(), k, h),
            (self.xh_view().t(), h, k),
            (self.xv_view(), k, v),
        ]
    }

    /// `pre` cut into the four regions of [`RaModel::operands`] (all empty if `pre` is).
    fn regions<'p>(&self, isa: Isa, pre: &'p [f32]) -> [&'p [f32]; 4] {
        let mut out: [&[f32]; 4] = [&[]; 4];
        if pre.is_empty() {
            return out;
        }
        let mut rest = pre;
        for (o, (_, k, n)) in out.iter_mut().zip(self.operands()) {
            let (head, tail) = rest.split_at(prepacked_b_len(isa, k, n));
            (*o, rest) = (head, tail);
        }
        out
    }
}

/// Entries an RA model of `dims` prepacks at level `isa` ([`BlockModel::prepack_len`]): its
/// four pattern operands `Ξ_vᵀ`, `Ξ_h`, `Ξ_hᵀ`, `Ξ_v` in the level's panels, about
/// `2K(V + H)` entries on x86-64 (6.4 MB at MNIST sizes), 0 at the scalar level.
pub const fn prepack_len(isa: Isa, dims: Dims) -> usize {
    let (k, v, h) = (dims.patterns, dims.visible, dims.hidden);
    prepacked_b_len(isa, v, k)
        + prepacked_b_len(isa, k, h)
        + prepacked_b_len(isa, h, k)
        + prepacked_b_len(isa, k, v)
}

/// `C = α·A·B` (or as `epilogue` says, [`gemm_epilogue_with`]) reading `B` from `pre` when it
/// was prepacked for this product's path (see [`gemm_packs_b`]), else packing it as
/// [`gemm_with`] does: the same bits either way.
pub(crate) fn gemm_pre(
    isa: Isa,
    dims: GemmDims,
    alpha: f32,
    (a, b): (MatRef<'_>, MatRef<'_>),
    c: MatMut<'_>,
    (pack, pre): (&mut [f32], &[f32]),
    epilogue: Epilogue,
) {
    let pre = if !pre.is_empty() && gemm_packs_b(isa, dims, a, b) { pre } else { &[] };
    gemm_epilogue_with(isa, dims, alpha, (a, b), c, (pack, pre), epilogue);
}

/// Prepacks `b` (`k × n`) into `out` if a product of `rows` rows with `A` row-contiguous
/// reads it ([`gemm_packs_b`]), which by monotonicity covers every block of fewer rows that
/// [`gemm_pre`] sends to the prepacked path.
pub(crate) fn prepack_for(
    isa: Isa,
    rows: usize,
    (b, k, n): (MatRef<'_>, usize, usize),
    out: &mut [f32],
) {
    let a = MatRef { data: &[], rs: k, cs: 1 };
    if gemm_packs_b(isa, GemmDims { m: rows, n, k }, a, b) {
        prepack_b_with(isa, k, n, b, out);
    }
}

/// The block versions of the fields, as GEMMs that never form `W`. A row's work is `2K`
/// entries: the overlaps `M = S Ξ_vᵀ` (kept from the hidden fields for the phase) and the
/// projections `U`. The four pattern operands can be packed once ahead
/// ([`BlockModel::prepack`], [`prepack_len`] entries) instead of in every block.
///
/// ```text
/// M = S Ξ_vᵀ (b×K)   Φ = M Ξ_h/√K (b×H)        U = H Ξ_hᵀ (b×K)   Ψ = U Ξ_v/√K (b×V)
/// phase, T = tanh Φ:  U = T Ξ_hᵀ,  g_v += c·Uᵀ S,  g_h += c·Mᵀ T,  c = w/(|S|√K)
/// ```
impl<S: AsRef<[f32]>> BlockModel for RaModel<S> {
    fn visible(&self) -> usize {
        self.dims.visible
    }

    fn hidden(&self) -> usize {
        self.dims.hidden
    }

    fn param_len(&self) -> usize {
        self.dims.xi_len()
    }

    fn row_work(&self) -> usize {
        2 * self.dims.patterns
    }

    fn phase_scale(&self, weight: f32, n: usize) -> f32 {
        weight * self.inv_sqrt_k / n as f32
    }

    fn prepack_len(&self, isa: Isa) -> usize {
        prepack_len(isa, self.dims)
    }

    fn prepack(&self, isa: Isa, rows: usize, gibbs: bool, out: &mut [f32]) {
        let mut rest = &mut out[..prepack_len(isa, self.dims)];
        for (i, op) in self.operands().into_iter().enumerate() {
            let (head, tail) = rest.split_at_mut(prepacked_b_len(isa, op.1, op.2));
            if i < 3 || gibbs {
                prepack_for(isa, rows, op, head);
            }
            rest = tail;
        }
    }

    fn hidden_fields_pre(
        &self,
        isa: Isa,
        s: &[f32],
        phi: &mut [f32],
        work: &mut [f32],
        pack_pre: (&mut [f32], &[f32]),
    ) {
        self.hidden_rows(isa, (s, phi), work, pack_pre);
    }

    fn visible_fields_pre(
        &self,
        isa: Isa,
        hs: &[f32],
        psi: &mut [f32],
        work: &mut [f32],
        (pack, pre): (&mut [f32], &[f32]),
    ) {
        let (k, v) = (self.dims.patterns, self.dims.visible);
        let [_, _, pu, ppsi] = self.regions(isa, pre);
        let b = hs.len() / self.dims.hidden;
        let u = &mut work[b * k..2 * b * k];
        self.projections_rows(isa, hs, u, (&mut *pack, pu));
        let dims = GemmDims { m: b, n: v, k };
        let ops = (MatRef::row_major(u, k), self.xv_view());
        let c = MatMut { data: &mut psi[..b * v], rs: v };
        gemm_pre(isa, dims, self.inv_sqrt_k, ops, c, (pack, ppsi), Epilogue::Set);
    }

    fn accumulate_block_pre(
        &self,
        isa: Isa,
        s: &[f32],
        t: &[f32],
        work: &mut [f32],
        scale: f32,
        grad: &mut [f32],
        (pack, pre): (&mut [f32], &[f32]),
    ) {
        let (kk, v, h, w) =
            (self.dims.patterns, self.dims.visible, self.dims.hidden, self.dims.width());
        let [_, _, pu, _] = self.regions(isa, pre);
        let b = s.len() / v;
        let (m, rest) = work.split_at_mut(b * kk);
        let u = &mut rest[..b * kk];
        self.projections_rows(isa, t, u, (&mut *pack, pu));
        let (sm, mm, um, tm) = (
            MatRef::row_major(s, v),
            MatRef::row_major(m, kk),
            MatRef::row_major(u, kk),
            MatRef::row_major(t, h),
        );
        gemm_with(
            isa,
            GemmDims { m: kk, n: v, k: b },
            scale,
            um.t(),
            sm,
            MatMut { data: grad, rs: w },
            pack,
        );
        gemm_with(
            isa,
            GemmDims { m: kk, n: h, k: b },
            scale,
            mm.t(),
            tm,
            MatMut { data: &mut grad[v..], rs: w },
            pack,
        );
    }
}

impl<S: AsRef<[f32]> + AsMut<[f32]>> RaModel<S> {
    /// All patterns, mutable.
    #[inline]
    pub fn xi_mut(&mut self) -> &mut [f32] {
        self.xi.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{free_energy_by_enumeration, pm1, uniform};
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;

    extern crate std;
    use std::vec;
    use std::vec::Vec;

    /// Low-rank fields equal the fields of the formed W, on sizes that straddle 64.
    #[test]
    #[cfg_attr(miri, ignore = "forms W up to 144×200×40: too slow under Miri")]
    fn low_rank_fields_equal_formed_weights() {
        let mut rng = Pcg64::seed_from_u64(11);
        for &(v, h, k) in &[
            (1, 1, 1),
            (3, 5, 2),
            (16, 100, 8),
            (63, 65, 7),
            (64, 64, 3),
            (65, 130, 11),
            (144, 200, 40),
        ] {
            let dims = Dims::new(v, h, k);
            let xi: Vec<f32> = (0..dims.xi_len()).map(|_| uniform(&mut rng)).collect();
            let model = RaModel::new_unchecked(&xi[..], dims);
            let mut w = vec![0.0; dims.weights_len()];
            model.weights(&mut w);
            // W entries straight from the definition.
            for i in 0..v {
                for a in 0..h {
                    let want: f64 = (0..k)
                        .map(|kk| model.xi_v(kk)[i] as f64 * model.xi_h(kk)[a] as f64)
                        .sum::<f64>()
                        / (k as f64).sqrt();
                    assert!((w[i * h + a] as f64 - want).abs() < 1e-5);
                }
            }
            let vs = pm1(&mut rng, v);
            let hs = pm1(&mut rng, h);
            let (mut m, mut phi, mut psi) = (vec![0.0; k], vec![0.0; h], vec![0.0; v]);
            model.hidden_field(&vs, &mut m, &mut phi);
            model.visible_field(&hs, &mut m, &mut psi);
            let mut e_dense = 0.0f64;
            for a in 0..h {
                let want: f64 = (0..v).map(|i| w[i * h + a] as f64 * vs[i] as f64).sum();
                assert!(
                    (phi[a] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "phi {v} {h} {k}"
                );
            }
            for i in 0..v {
                let want: f64 = (0..h).map(|a| w[i * h + a] as f64 * hs[a] as f64).sum();
                assert!(
                    (psi[i] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "psi {v} {h} {k}"
                );
                e_dense -= vs[i] as f64 * want;
            }
            // The energy from its definition in f64, `−(1/√K) Σ_k (ξᵏ_v·v)(ξᵏ_h·h)`: the f32
            // sums of V, H and K terms agree with it to about 1e−5 relative, and so does the
            // energy through the formed (f32) W.
            let e64 = -(0..k)
                .map(|kk| {
                    let m: f64 = (0..v).map(|i| f64::from(model.xi_v(kk)[i] * vs[i])).sum();
                    let u: f64 = (0..h).map(|a| f64::from(model.xi_h(kk)[a] * hs[a])).sum();
                    m * u
                })
                .sum::<f64>()
                / (k as f64).sqrt();
            let e = f64::from(model.energy(&vs, &hs));
            assert!((e - e64).abs() < 1e-5 * (1.0 + e64.abs()), "energy {e} vs {e64}");
            assert!((e_dense - e64).abs() < 1e-5 * (1.0 + e64.abs()), "{e_dense} vs {e64}");
        }
    }

    #[test]
    fn free_energy_sums_out_hidden_units() {
        // F(v) = −log Σ_h e^{−E(v,h)}, checked by enumerating h on a small model.
        let mut rng = Pcg64::seed_from_u64(12);
        let dims = Dims::new(5, 6, 3);
        let xi: Vec<f32> = (0..dims.xi_len()).map(|_| uniform(&mut rng)).collect();
        let model = RaModel::new_unchecked(&xi[..], dims);
        let mut scratch = vec![0.0; free_energy_scratch_len(dims)];
        for _ in 0..5 {
            let v = pm1(&mut rng, 5);
            let want = free_energy_by_enumeration(6, |h| model.energy(&v, h));
            let f = model.free_energy(&v, &mut scratch) as f64;
            assert!((f - want).abs() < 1e-4, "F = {f}, −log Z_v = {want}");
        }
    }
}
