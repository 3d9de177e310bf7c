//! The straightforward `f64` enumeration, the test oracle: `log Z`, the free energy, the
//! negative log-likelihood, the ground state and the model average, each walking the states of
//! the smaller layer in Gray order (chunked by `Plan`) with incrementally updated fields.

use rapid_core::num::log_2cosh_f64;
use rayon::prelude::*;

use super::fast::{Level, Net64};
use super::gray::{spin, Plan};
use super::{transpose, Bipartite, ExactError, Net};

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

/// `log Z = log Σ_{v,h} e^{−E(v,h)}`, in `f64`.
///
/// Computed by the vectorised `f64` walk of `fast.rs` (`log 2cosh` from a polynomial `e^{−2|f|}`
/// and one logarithm of a product per state, run at the active SIMD level of
/// [`rapid_core::kernels::at_level`], bit-identical at every level); relative error against
/// the `libm` oracle below 1e−13 (tested). Cost: see "Limit and cost" in [`crate::exact`].
///
/// # Errors
/// [`ExactError::TooLarge`] if `min(V, H) > MAX_ENUM_BITS`.
///
/// # Panics
/// If the lengths of `m`'s slices disagree with its sizes.
pub fn log_z(m: &Bipartite) -> Result<f64, ExactError> {
    let net = m.net();
    net.ensure_small()?;
    Ok(Net64::new(&net).log_z(Level::Active))
}

/// The `libm` oracle of [`log_z`]: `log 2cosh` term by term.
#[cfg(test)]
pub(super) fn log_z_oracle(m: &Bipartite) -> Result<f64, ExactError> {
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
/// A state's energy is `−cᵀs − Σ_j |f_j|` with its fields `f` computed directly in `f64`
/// and the terms summed in order; the ground state is the state of lowest such energy, the
/// first in enumeration order among equals (chunk by chunk, Gray order inside a chunk, the
/// state with all enumerated spins `−1` first). Without biases `s` and `−s` have the same
/// energy bit for bit and only the half with the last spin `+1` is walked; the reported one
/// is then the other (`last spin −1`, earlier in the order).
///
/// How it is fast and still exact: a vectorised walk (run at the active SIMD level of
/// [`rapid_core::kernels::at_level`]) updates `f32` fields in Gray order, set afresh from
/// `f64` ones every 64 states, and sums `|f_j|` in 16 `f32` lanes; this approximate energy
/// is within a bound `tol` of the direct one (the rounding of the `f32` fields and sums, about
/// `2·(1 + 3.1·63 + ⌈m/16⌉)·2⁻²⁴·S` with `S = Σ|c| + Σ|d| + Σ|R|`, plus that of the direct
/// `f64` sums, `4·(2(n + m) + 1032)·2⁻⁵²·S`; the bound is tested, and the measured error is
/// below 1 % of it), and every state whose approximate energy is within `tol` of the best
/// direct energy so far is re-evaluated directly. The result is therefore the same state and
/// the same energy bits as evaluating every state directly (tested against the incremental
/// oracle, which agrees except between states whose energies differ by rounding, also where
/// states differ by less than `f32` resolves). Where `S ≥ 10³⁰` (an `f32` field could
/// overflow) the walk runs in `f64` instead (anchored every 1024 states, `tol` the `f64` part).
///
/// # Errors
/// [`ExactError::TooLarge`] if `min(V, H) > MAX_ENUM_BITS`.
///
/// # Panics
/// If the lengths of `m`'s slices disagree with its sizes.
pub fn ground_state(m: &Bipartite) -> Result<GroundState, ExactError> {
    let net = m.net();
    net.ensure_small()?;
    let fast = Net64::new(&net);
    let (_, code) = fast.ground_state(Level::Active);
    Ok(Oriented::new(&net).state(code))
}

/// The oracle of [`ground_state`]: every state's energy from incremental `f64` fields.
#[cfg(test)]
pub(super) fn ground_state_oracle(m: &Bipartite) -> Result<GroundState, ExactError> {
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

// ---------------------------------------------------------------------------------------------
// Internals.

impl<T: Copy + Into<f64> + Sync> Net<'_, T> {
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
        let log_z = Net64::new(self).log_z(Level::Active);
        let fe: Vec<f64> = data.par_chunks(nv).map(|v| self.free_energy(v)).collect();
        Ok(fe.iter().sum::<f64>() / rows as f64 + log_z)
    }

    fn model_average(&self) -> Result<ModelAverage, ExactError> {
        self.ensure_small()?;
        Ok(Oriented::new(self).model_average())
    }
}

/// A running `log Σ e^{x}`: `max + ln(sum)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lse {
    max: f64,
    sum: f64,
}

impl Lse {
    pub(super) const EMPTY: Lse = Lse { max: f64::NEG_INFINITY, sum: 0.0 };

    pub(super) fn push(&mut self, x: f64) {
        if x > self.max {
            self.sum = self.sum * (self.max - x).exp() + 1.0;
            self.max = x;
        } else {
            self.sum += (x - self.max).exp();
        }
    }

    pub(super) fn merge(self, o: Lse) -> Lse {
        if o.max > self.max {
            Lse { max: o.max, sum: o.sum + self.sum * (self.max - o.max).exp() }
        } else if o.max == f64::NEG_INFINITY {
            self
        } else {
            Lse { max: self.max, sum: self.sum + o.sum * (o.max - self.max).exp() }
        }
    }

    pub(super) fn ln(self) -> f64 {
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

    #[cfg(test)]
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
        self.state(best.1)
    }

    /// The ground state reported for the minimiser `code`: the summed layer at the sign of its
    /// fields, the energy recomputed from them.
    fn state(&self, code: u64) -> GroundState {
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

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index-heavy math reads better with indices
mod tests {
    use super::*;
    use crate::exact::test_util::{all_spins, bip, energy, random_model, SMALL_SIZES};

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
}
