//! Reconstruction Hamming distance (DESIGN.md §3).
//!
//! Reference protocol (the authors' code): keep some pixels of the image (the dataset's
//! `kept` mask: the top row for Bars), set the others to 0 (a neutral spin), make one step
//! `v → h → v`, and score `HD = mean_i |v_i − target_i| / 2` over all `V` pixels; average over
//! `repeats` draws per image and over the images. Random guessing scores 0.5.
//!
//! Variant (the paper's text): the kept pixels are clamped to their values and `steps` full
//! Gibbs steps are made.
//!
//! Image `i` draws from its own stream `(seed, Eval, tag, i)`, and the per-image scores are
//! summed in image order, so the result does not depend on the thread count.

use rapid_core::num::{sigmoid, uniform01};
use rapid_core::sample::sample_spins_in_place;
use rapid_core::RaModel;
use rayon::prelude::*;

use crate::seed::{stream, Stream};

/// How reconstructions are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HdProtocol {
    /// Draws per image (reference: 100).
    pub repeats: usize,
    /// Gibbs steps `v → h → v` per draw (reference: 1).
    pub steps: usize,
    /// Clamp the kept pixels during the steps (reference: no).
    pub clamp: bool,
}

impl Default for HdProtocol {
    fn default() -> Self {
        HdProtocol { repeats: 100, steps: 1, clamp: false }
    }
}

/// Mean reconstruction Hamming distance of `images` (rows of `V` ±1 values) under `protocol`.
/// `tag` separates the random streams of different evaluations (e.g. the epoch).
///
/// # Panics
/// If `images.len()` is not a multiple of `V` or `kept.len() != V`.
pub fn reconstruction_hd(
    model: &RaModel<&[f32]>,
    images: &[f32],
    kept: &[bool],
    protocol: HdProtocol,
    seed: u64,
    tag: u64,
) -> f64 {
    let d = model.dims();
    let v_len = d.visible;
    assert_eq!(kept.len(), v_len, "mask must have V entries");
    assert_eq!(images.len() % v_len, 0, "images must have V entries each");
    let n = images.len() / v_len;
    if n == 0 || protocol.repeats == 0 {
        return f64::NAN;
    }
    let per_image: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let target = &images[i * v_len..(i + 1) * v_len];
            let mut rng = stream(seed, Stream::Eval, tag, i as u64);
            let start: Vec<f32> =
                target.iter().zip(kept).map(|(&t, &k)| if k { t } else { 0.0 }).collect();
            let mut k_buf = vec![0.0f32; d.patterns];
            // The first hidden field depends only on the start: compute σ(2φ) once per image.
            let mut p0 = vec![0.0f32; d.hidden];
            model.hidden_field(&start, &mut k_buf, &mut p0);
            for p in p0.iter_mut() {
                *p = sigmoid(2.0 * *p);
            }
            let (mut h, mut v) = (vec![0.0f32; d.hidden], vec![0.0f32; v_len]);
            let mut wrong = 0u64;
            for _ in 0..protocol.repeats {
                for step in 0..protocol.steps {
                    if step == 0 {
                        // The same draw as `sample_spin`, with the probability precomputed.
                        for (hj, &p) in h.iter_mut().zip(&p0) {
                            *hj = if uniform01(&mut rng) < p { 1.0 } else { -1.0 };
                        }
                    } else {
                        model.hidden_field(&v, &mut k_buf, &mut h);
                        sample_spins_in_place(&mut h, &mut rng);
                    }
                    model.visible_field(&h, &mut k_buf, &mut v);
                    sample_spins_in_place(&mut v, &mut rng);
                    if protocol.clamp {
                        for ((vi, &t), &k) in v.iter_mut().zip(target).zip(kept) {
                            if k {
                                *vi = t;
                            }
                        }
                    }
                }
                wrong += v.iter().zip(target).filter(|(a, b)| a != b).count() as u64;
            }
            wrong as f64 / (protocol.repeats * v_len) as f64
        })
        .collect();
    per_image.iter().sum::<f64>() / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapid_core::Dims;

    /// A Mattis-like model with one pattern equal to the image reconstructs it (or its
    /// negation, which the top row rules out) almost surely when the couplings are strong.
    #[test]
    fn strong_single_pattern_reconstructs_its_image() {
        let d = Dims::new(4, 200, 1);
        let img = [1.0f32, -1.0, -1.0, 1.0];
        let mut xi = img.to_vec();
        xi.extend(std::iter::repeat_n(1.0, 200));
        let model = RaModel::new(&xi[..], d);
        let kept = [true, true, false, false];
        let hd = reconstruction_hd(&model, &img, &kept, HdProtocol::default(), 1, 0);
        assert!(hd < 1e-3, "hd = {hd}");
    }

    /// A model with zero weights samples fair coins: HD is 0.5 on the pixels it redraws.
    #[test]
    fn zero_model_guesses_at_random() {
        let d = Dims::new(16, 10, 2);
        let xi = vec![0.0f32; d.xi_len()];
        let model = RaModel::new(&xi[..], d);
        let img: Vec<f32> = (0..32).map(|i| if i % 3 == 0 { 1.0 } else { -1.0 }).collect();
        let kept: Vec<bool> = (0..16).map(|p| p < 4).collect();
        let p = HdProtocol { repeats: 2000, ..HdProtocol::default() };
        let hd = reconstruction_hd(&model, &img, &kept, p, 3, 0);
        assert!((hd - 0.5).abs() < 0.01, "hd = {hd}");
        // Clamping the 4 kept pixels leaves 12 of 16 at random: 0.375.
        let hd = reconstruction_hd(&model, &img, &kept, HdProtocol { clamp: true, ..p }, 3, 0);
        assert!((hd - 0.375).abs() < 0.01, "hd = {hd}");
    }

    #[test]
    fn result_does_not_depend_on_the_thread_count() {
        let d = Dims::new(16, 30, 3);
        let xi: Vec<f32> = (0..d.xi_len()).map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0).collect();
        let model = RaModel::new(&xi[..], d);
        let data = crate::data::bars4();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                reconstruction_hd(&model, &data.train, &data.kept, HdProtocol::default(), 9, 4)
            })
        };
        assert_eq!(run(1).to_bits(), run(2).to_bits());
        assert_eq!(run(1).to_bits(), run(3).to_bits());
    }
}
