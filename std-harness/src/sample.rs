//! Drawing samples from a model by block Gibbs sampling, judging bars-and-stripes samples, and
//! writing image grids as PNG.
//!
//! # Chains
//! Chain `c` starts from `v = 0` ([`Start::Zero`]: the first hidden draw then sees only the
//! hidden biases, so for a bias-free model it is uniform), from uniform random ±1 pixels
//! ([`Start::Random`]) or from training image `c mod n` ([`Start::Data`]), and makes `steps`
//! block Gibbs steps `h ~ P(h | v)`, `v ~ P(v | h)` with `P(s = +1 | x) = σ(2x)`. The sample is
//! the last visible draw. Every chain draws from its own stream `(seed, Sample, c, 0)`, and
//! chains run in parallel, so the samples do not depend on the thread count.

use std::collections::HashSet;
use std::io;
use std::path::Path;

use rand_core::RngCore;
use rapid_core::ra::gibbs::sample_spins_in_place;
use rayon::prelude::*;

use crate::model::ModelRef;
use crate::modelio::AtomicFile;
use crate::seed::{stream, Stream};

/// Where the chains start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// `v = 0`: every pixel neutral.
    Zero,
    /// Uniform random ±1 pixels.
    Random,
    /// Training image `c mod n` for chain `c`.
    Data,
}

impl std::str::FromStr for Start {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zero" => Ok(Start::Zero),
            "random" => Ok(Start::Random),
            "data" => Ok(Start::Data),
            _ => Err(format!("unknown start '{s}' (expected zero, random or data)")),
        }
    }
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Start::Zero => "zero",
            Start::Random => "random",
            Start::Data => "data",
        })
    }
}

/// Draws `chains` samples, `V` values (±1) each, row-major. `data` (training images, `V`
/// values each) is needed for [`Start::Data`] only.
///
/// # Panics
/// If `start` is [`Start::Data`] and `data` is empty or not a whole number of images.
pub fn draw(
    model: &ModelRef<'_>,
    chains: usize,
    steps: usize,
    start: Start,
    data: &[f32],
    seed: u64,
) -> Vec<f32> {
    let (v_len, h_len) = (model.visible(), model.hidden());
    if start == Start::Data {
        assert!(!data.is_empty() && data.len().is_multiple_of(v_len), "Start::Data needs images");
    }
    let n_data = data.len().checked_div(v_len).unwrap_or(0);
    let mut out = vec![0.0f32; chains * v_len];
    out.par_chunks_mut(v_len.max(1)).enumerate().for_each(|(c, v)| {
        let mut rng = stream(seed, Stream::Sample, c as u64, 0);
        match start {
            Start::Zero => v.fill(0.0),
            Start::Random => {
                for x in v.iter_mut() {
                    *x = if rng.next_u32() & 1 == 1 { 1.0 } else { -1.0 };
                }
            }
            Start::Data => {
                let i = c % n_data;
                v.copy_from_slice(&data[i * v_len..(i + 1) * v_len]);
            }
        }
        let mut h = vec![0.0f32; h_len];
        let mut scratch = vec![0.0f32; model.scratch_len()];
        for _ in 0..steps {
            model.hidden_field(v, &mut h, &mut scratch);
            sample_spins_in_place(&mut h, &mut rng);
            model.visible_field(&h, v, &mut scratch);
            sample_spins_in_place(v, &mut rng);
        }
    });
    out
}

/// How many bars-and-stripes samples are valid and how many of those are new.
#[derive(Clone, Debug, PartialEq)]
pub struct BasStats {
    /// Samples judged.
    pub samples: usize,
    /// Per sample: a valid BAS image (a non-constant image whose rows are all equal, or
    /// whose columns are all equal — the images the dataset is made of).
    pub valid: Vec<bool>,
    /// Per sample: valid and not a training image.
    pub novel: Vec<bool>,
}

impl BasStats {
    /// Share of valid samples.
    pub fn valid_rate(&self) -> f64 {
        self.valid.iter().filter(|&&x| x).count() as f64 / self.samples.max(1) as f64
    }

    /// Share of the valid samples that are not training images (0 when none is valid).
    pub fn novel_rate(&self) -> f64 {
        let valid = self.valid.iter().filter(|&&x| x).count();
        if valid == 0 {
            return 0.0;
        }
        self.novel.iter().filter(|&&x| x).count() as f64 / valid as f64
    }
}

/// Whether an `n×n` ±1 image is a bars-and-stripes image: not constant, and constant along
/// every column (bars) or along every row (stripes).
pub fn is_bas(img: &[f32], n: usize) -> bool {
    if img.len() != n * n || img.iter().all(|&x| x == img[0]) {
        return false;
    }
    let bars = (0..n * n).all(|p| img[p] == img[p % n]);
    let stripes = (0..n * n).all(|p| img[p] == img[p - p % n]);
    bars || stripes
}

/// Judges `samples` (`n×n` images) against the training images `train`.
pub fn bas_stats(samples: &[f32], n: usize, train: &[f32]) -> BasStats {
    let v = n * n;
    let key = |img: &[f32]| -> Vec<bool> { img.iter().map(|&x| x > 0.0).collect() };
    let seen: HashSet<Vec<bool>> = train.chunks_exact(v).map(key).collect();
    let valid: Vec<bool> = samples.chunks_exact(v).map(|s| is_bas(s, n)).collect();
    let novel =
        samples.chunks_exact(v).zip(&valid).map(|(s, &ok)| ok && !seen.contains(&key(s))).collect();
    BasStats { samples: valid.len(), valid, novel }
}

/// How a grid of images is laid out and drawn.
#[derive(Clone, Copy, Debug)]
pub struct Grid {
    /// Image height in pixels of the data.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Images per row of the grid.
    pub cols: usize,
    /// Screen pixels per data pixel.
    pub scale: usize,
}

/// Encodes images (`height·width` values each) as an RGB PNG grid: `+1` black, `−1` white
/// (ink on paper, as digits are drawn), values in between grey (`0` mid-grey); one
/// scale-pixel gap of light grey between images. Images with `framed[i]` get a red frame in
/// the gap around them; `framed` may be empty.
///
/// # Panics
/// If the grid has no image, a zero size, or `framed` is non-empty and of another length.
pub fn grid_png(images: &[f32], grid: Grid, framed: &[bool]) -> Vec<u8> {
    let Grid { height, width, cols, scale } = grid;
    let v = height * width;
    assert!(v > 0 && cols > 0 && scale > 0 && !images.is_empty(), "empty grid");
    let n = images.len() / v;
    assert!(framed.is_empty() || framed.len() == n, "one frame flag per image");
    let rows = n.div_ceil(cols);
    let gap = scale;
    let (cell_w, cell_h) = (width * scale + gap, height * scale + gap);
    let (w_px, h_px) = (cols * cell_w + gap, rows * cell_h + gap);
    let mut px = vec![200u8; w_px * h_px * 3];
    let mut put = |x: usize, y: usize, rgb: [u8; 3]| {
        let at = 3 * (y * w_px + x);
        px[at..at + 3].copy_from_slice(&rgb);
    };
    for (i, img) in images.chunks_exact(v).enumerate() {
        let (x0, y0) = (gap + (i % cols) * cell_w, gap + (i / cols) * cell_h);
        if framed.get(i).copied().unwrap_or(false) {
            for y in y0 - gap..y0 + height * scale + gap {
                for x in x0 - gap..x0 + width * scale + gap {
                    put(x, y, FRAME);
                }
            }
        }
        for (p, &val) in img.iter().enumerate() {
            let grey = (127.5 * (1.0 - val.clamp(-1.0, 1.0))).round() as u8;
            let (py, pxl) = (p / width, p % width);
            for dy in 0..scale {
                for dx in 0..scale {
                    put(x0 + pxl * scale + dx, y0 + py * scale + dy, [grey; 3]);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w_px as u32, h_px as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("in-memory PNG header");
        writer.write_image_data(&px).expect("in-memory PNG data");
    }
    out
}

/// The frame colour of [`grid_png`] (matplotlib's tab10 red).
pub const FRAME: [u8; 3] = [214, 39, 40];

/// Writes [`grid_png`] to `path` atomically.
///
/// # Errors
/// Preparing or committing the file.
pub fn write_grid_png(path: &Path, images: &[f32], grid: Grid, framed: &[bool]) -> io::Result<()> {
    AtomicFile::prepare(path)?.commit(&grid_png(images, grid, framed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{bas, bas_images};
    use crate::model::Model;
    use rapid_core::Dims;

    #[test]
    fn bas_validity_and_novelty() {
        let n = 4;
        for img in bas_images(n) {
            assert!(is_bas(&img, n));
        }
        assert!(!is_bas(&[1.0; 16], n), "constant images are not in the dataset");
        let mut broken = bas_images(n)[3].clone();
        broken[5] = -broken[5];
        assert!(!is_bas(&broken, n));
        let d = bas(n, 0);
        let (tr, te) = (&d.train[..16], &d.test[..16]);
        let samples: Vec<f32> = [tr, te, &broken[..]].concat();
        let s = bas_stats(&samples, n, &d.train);
        assert_eq!(s.valid, [true, true, false]);
        assert_eq!(s.novel, [false, true, false]);
        assert_eq!((s.valid_rate(), s.novel_rate()), (2.0 / 3.0, 0.5));
    }

    /// A single strong pattern makes `±ξ_v` the only likely states; the chains must find them
    /// from every start, reproducibly and independently of the thread count.
    #[test]
    fn chains_reach_a_strong_pattern_reproducibly() {
        let (v, h) = (9usize, 40usize);
        let xi_v = [1.0f32, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0];
        let mut xi = xi_v.to_vec();
        xi.extend(std::iter::repeat_n(1.5f32, h));
        let m = Model::Ra { dims: Dims::new(v, h, 1), xi };
        let data = xi_v.to_vec();
        for start in [Start::Zero, Start::Random, Start::Data] {
            let s = draw(&m.view(), 20, 5, start, &data, 3);
            for c in s.chunks_exact(v) {
                let sign = c[0] * xi_v[0];
                assert!(c.iter().zip(&xi_v).all(|(a, b)| *a == sign * b), "{start}: {c:?}");
            }
            let again = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| draw(&m.view(), 20, 5, start, &data, 3));
            assert_eq!(s, again);
        }
        assert_ne!(
            draw(&m.view(), 20, 0, Start::Random, &data, 3),
            draw(&m.view(), 20, 0, Start::Random, &data, 4)
        );
    }

    #[test]
    fn grid_is_a_png_with_frames() {
        let imgs = [1.0f32, -1.0, 0.0, 1.0, -1.0, -1.0, -1.0, -1.0];
        let g = Grid { height: 2, width: 2, cols: 2, scale: 3 };
        let bytes = grid_png(&imgs, g, &[false, true]);
        let dec = png::Decoder::new(&bytes[..]);
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0u8; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        // Two cells of 2·3 + 3 pixels plus the outer gap.
        assert_eq!((info.width, info.height), (2 * 9 + 3, 9 + 3));
        let at = |x: usize, y: usize| {
            let i = 3 * (y * info.width as usize + x);
            [buf[i], buf[i + 1], buf[i + 2]]
        };
        assert_eq!(at(3, 3), [0; 3], "+1 is black");
        assert_eq!(at(6, 3), [255; 3], "-1 is white");
        assert_eq!(at(3, 6), [128; 3], "0 is grey");
        assert_eq!(at(0, 0), [200; 3], "gap");
        assert_eq!(at(9 + 1, 1), FRAME, "frame around the second image");
        assert_eq!(at(2, 1), [200; 3], "no frame around the first");
    }
}
