//! Regularized-axons (RA) models: `W = Ξ_vᵀΞ_h/√K`, never formed in the hot paths.
//!
//! * [`model`]: the sizes, the pattern view, low-rank fields (one row and blocks of rows),
//!   energy and free energy.
//! * [`gibbs`]: single-chain block Gibbs sampling on `f32` spins.
//! * [`pid`]: the PID phase term and the negative sets of `pid`, `pid-hebb`, `pid-gibbs:k`.
//!
//! The integer path for ±1 patterns (XOR + popcount overlaps, integer fields, threshold-table
//! draws) is [`crate::int::sample`].
//!
//! [`random_patterns`] draws the paper's initial patterns: every entry `+1` or `−1` with
//! probability ½.

use rand_core::RngCore;

pub mod gibbs;
pub mod model;
pub mod pid;

/// Fills `xi` with uniform random ±1 entries, the paper's initial patterns: one
/// [`RngCore::next_u32`] per entry, in order, `+1.0` when its lowest bit is 1 and `−1.0`
/// otherwise.
///
/// For an RA model `xi` is the whole pattern slice, [`model::Dims::xi_len`] entries. The
/// `rapid` program's `initial_params` in `rapid-harness` draws its initial patterns the same
/// way, so from the same generator state this gives the same patterns.
///
/// # Examples
/// ```
/// use rapid_core::rand_core::SeedableRng;
/// use rapid_core::{ra, Dims};
///
/// let dims = Dims::new(16, 1000, 8);
/// let mut xi = vec![0.0f32; dims.xi_len()];
/// ra::random_patterns(&mut xi, &mut rand_pcg::Pcg64::seed_from_u64(0));
/// assert!(xi.iter().all(|&x| x == 1.0 || x == -1.0));
/// ```
pub fn random_patterns<R: RngCore + ?Sized>(xi: &mut [f32], rng: &mut R) {
    for x in xi.iter_mut() {
        *x = if rng.next_u32() & 1 == 1 { 1.0 } else { -1.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::random_patterns;
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg64;

    #[test]
    fn random_patterns_are_balanced_signs_one_draw_per_entry() {
        let mut xi = [0.0f32; 4000];
        let mut rng = Pcg64::seed_from_u64(5);
        random_patterns(&mut xi, &mut rng);
        let plus = xi.iter().filter(|&&x| x == 1.0).count();
        assert_eq!(plus + xi.iter().filter(|&&x| x == -1.0).count(), xi.len());
        // 4000 fair coins: the count of +1 is 2000 ± 31.6 (one standard deviation).
        assert!((1800..=2200).contains(&plus), "{plus} of 4000 are +1");
        // One draw per entry, lowest bit: the next draw is the generator's 4001st.
        let mut again = Pcg64::seed_from_u64(5);
        for &x in &xi {
            assert_eq!(x == 1.0, again.next_u32() & 1 == 1);
        }
        assert_eq!(again.next_u64(), rng.next_u64());
    }
}
