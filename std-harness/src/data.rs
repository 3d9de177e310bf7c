//! The paper's datasets as ±1 images (row-major, `+1.0`/`−1.0`).
//!
//! * **Bars 4×4** (`bars4`): an image is a row `r ∈ {±1}⁴` repeated on all four rows; the 14
//!   non-constant rows. Train: `r ∈ {+−−−, ++−−, +++−, +−++, ++−+}` and negations (10); test:
//!   `{+−+−, +−−+}` and negations (4). Both sets are closed under negation, so nothing leaks
//!   through the `v ↔ −v` symmetry of a bias-free model.
//! * **Bars and stripes n×n** (`bas:N`): bars (a non-empty proper subset of columns at +1) and
//!   stripes (the same for rows), `2(2ⁿ−2)` images. Split 80/20 with a seed, by negation
//!   pairs (an image and its negation fall on the same side), so `bas:12` gives 6550/1638.
//!
//! * **Random ±1** (no command-line name; [`random`]): `n` images of `V` uniform random ±1
//!   pixels from a seed, all for training, no test set. It stands in for data of a given size
//!   when only the cost of training matters (`rapid bench paper` at MNIST sizes).
//!
//! Each dataset also says which pixels the reconstruction metric keeps: the top row for Bars
//! (it determines the image), the top row and the left column for BAS (the top row says
//! nothing about a stripe, the left column nothing about a bar).

use std::fmt;
use std::str::FromStr;

use rand_core::RngCore;

use crate::seed::{stream, Stream};

/// Which dataset to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetSpec {
    /// Bars 4×4 with the paper's 10/4 split.
    Bars4,
    /// Bars and stripes `n×n`, 80/20 split.
    Bas(usize),
    /// `images` random ±1 images of `visible` pixels, all for training ([`random`]). Built by
    /// benchmarks only: it has no command-line name, so `FromStr` never returns it.
    Random {
        /// Pixels per image, `V`.
        visible: usize,
        /// Number of images.
        images: usize,
    },
}

impl FromStr for DatasetSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bars4" => Ok(DatasetSpec::Bars4),
            _ => {
                if let Some(n) = s.strip_prefix("bas:") {
                    let n: usize =
                        n.parse().map_err(|_| format!("bas:N needs a whole number, got '{n}'"))?;
                    if !(3..=16).contains(&n) {
                        return Err(format!("bas:N needs 3 <= N <= 16, got {n}"));
                    }
                    Ok(DatasetSpec::Bas(n))
                } else {
                    Err(format!("unknown dataset '{s}' (expected bars4 or bas:N)"))
                }
            }
        }
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::Bars4 => f.write_str("bars4"),
            DatasetSpec::Bas(n) => write!(f, "bas:{n}"),
            DatasetSpec::Random { visible, images } => write!(f, "random:{visible}x{images}"),
        }
    }
}

/// A dataset of ±1 images with its split and its reconstruction mask.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The spec it was built from.
    pub spec: DatasetSpec,
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Training images, row-major, `V` values each.
    pub train: Vec<f32>,
    /// Test images.
    pub test: Vec<f32>,
    /// Pixels the reconstruction metric keeps (the rest start at 0).
    pub kept: Vec<bool>,
}

impl Dataset {
    /// Builds a dataset; `split_seed` chooses the BAS split (Bars has a fixed split) and the
    /// pixels of a random dataset.
    pub fn new(spec: DatasetSpec, split_seed: u64) -> Self {
        match spec {
            DatasetSpec::Bars4 => bars4(),
            DatasetSpec::Bas(n) => bas(n, split_seed),
            DatasetSpec::Random { visible, images } => random(visible, images, split_seed),
        }
    }

    /// Pixels per image, `V`.
    pub fn visible(&self) -> usize {
        self.width * self.height
    }

    /// Number of training images.
    pub fn n_train(&self) -> usize {
        self.train.len() / self.visible()
    }

    /// Number of test images.
    pub fn n_test(&self) -> usize {
        self.test.len() / self.visible()
    }

    /// What the metric keeps, in words.
    pub fn kept_description(&self) -> &'static str {
        match self.spec {
            DatasetSpec::Bars4 => "top row",
            DatasetSpec::Bas(_) => "top row and left column",
            DatasetSpec::Random { .. } => "nothing (random data)",
        }
    }
}

fn pm(b: bool) -> f32 {
    if b {
        1.0
    } else {
        -1.0
    }
}

/// Bars 4×4 with the paper's split.
pub fn bars4() -> Dataset {
    const TRAIN: [&str; 5] = ["+---", "++--", "+++-", "+-++", "++-+"];
    const TEST: [&str; 2] = ["+-+-", "+--+"];
    let image = |row: &str, negate: bool| -> Vec<f32> {
        let r: Vec<f32> = row.chars().map(|c| pm((c == '+') != negate)).collect();
        (0..4).flat_map(|_| r.iter().copied()).collect()
    };
    let set = |rows: &[&str]| -> Vec<f32> {
        rows.iter().flat_map(|r| [image(r, false), image(r, true)]).flatten().collect()
    };
    Dataset {
        spec: DatasetSpec::Bars4,
        width: 4,
        height: 4,
        train: set(&TRAIN),
        test: set(&TEST),
        kept: (0..16).map(|p| p < 4).collect(),
    }
}

/// All `2(2ⁿ−2)` bars-and-stripes images, bars first (subset bit masks in increasing order),
/// then stripes.
pub fn bas_images(n: usize) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(2 * ((1 << n) - 2));
    for stripes in [false, true] {
        for mask in 1u32..(1 << n) - 1 {
            let img = (0..n * n)
                .map(|p| {
                    let (y, x) = (p / n, p % n);
                    let line = if stripes { y } else { x };
                    pm(mask >> line & 1 == 1)
                })
                .collect();
            out.push(img);
        }
    }
    out
}

/// Bars and stripes `n×n`, split 80/20 by negation pairs with `split_seed`.
pub fn bas(n: usize, split_seed: u64) -> Dataset {
    let images = bas_images(n);
    let half = (1usize << n) - 2;
    // Pair each image with its negation: the complement mask within the same family.
    let full = (1usize << n) - 1;
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for fam in 0..2 {
        for mask in 1..=half {
            let comp = full ^ mask;
            if mask < comp {
                pairs.push((fam * half + mask - 1, fam * half + comp - 1));
            }
        }
    }
    let mut rng = stream(split_seed, Stream::Split, n as u64, 0);
    for i in (1..pairs.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        pairs.swap(i, j);
    }
    let n_train_pairs = (pairs.len() * 4) / 5;
    let collect = |ps: &[(usize, usize)]| -> Vec<f32> {
        ps.iter().flat_map(|&(a, b)| [&images[a], &images[b]]).flatten().copied().collect()
    };
    Dataset {
        spec: DatasetSpec::Bas(n),
        width: n,
        height: n,
        train: collect(&pairs[..n_train_pairs]),
        test: collect(&pairs[n_train_pairs..]),
        kept: (0..n * n).map(|p| p < n || p % n == 0).collect(),
    }
}

/// `images` images of `visible` uniform random ±1 pixels, one bit of the stream
/// `(seed, Data, visible, images)` each, all in the training set; no test set, no pixel kept
/// by the reconstruction metric.
pub fn random(visible: usize, images: usize, seed: u64) -> Dataset {
    let mut rng = stream(seed, Stream::Data, visible as u64, images as u64);
    let mut train = vec![0.0f32; visible * images];
    for chunk in train.chunks_mut(64) {
        let bits = rng.next_u64();
        for (b, x) in chunk.iter_mut().enumerate() {
            *x = pm(bits >> b & 1 == 1);
        }
    }
    Dataset {
        spec: DatasetSpec::Random { visible, images },
        width: visible,
        height: 1,
        train,
        test: Vec::new(),
        kept: vec![false; visible],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn rows(d: &[f32], v: usize) -> Vec<Vec<i8>> {
        d.chunks(v).map(|r| r.iter().map(|&x| x as i8).collect()).collect()
    }

    #[test]
    fn bars4_split_is_the_papers_and_closed_under_negation() {
        let d = bars4();
        assert_eq!((d.n_train(), d.n_test(), d.visible()), (10, 4, 16));
        let train: HashSet<_> = rows(&d.train, 16).into_iter().collect();
        let test: HashSet<_> = rows(&d.test, 16).into_iter().collect();
        assert_eq!(train.len() + test.len(), 14);
        assert!(train.is_disjoint(&test));
        for set in [&train, &test] {
            for img in set.iter() {
                // Columns are constant and the image is not constant.
                for p in 4..16 {
                    assert_eq!(img[p], img[p % 4]);
                }
                assert!(img.iter().any(|&x| x != img[0]));
                let neg: Vec<i8> = img.iter().map(|x| -x).collect();
                assert!(set.contains(&neg));
            }
        }
        assert!(test.contains(&[1i8, -1, 1, -1].repeat(4)));
        assert!(train.contains(&[1i8, 1, 1, -1].repeat(4)));
    }

    #[test]
    fn bas_has_every_image_once_and_splits_by_pairs() {
        for n in [3usize, 4, 12] {
            let d = bas(n, 7);
            let v = n * n;
            let total = 2 * ((1 << n) - 2);
            assert_eq!(d.n_train() + d.n_test(), total);
            let all: HashSet<_> = rows(&d.train, v).into_iter().chain(rows(&d.test, v)).collect();
            assert_eq!(all.len(), total, "no duplicates for n = {n}");
            let train: HashSet<_> = rows(&d.train, v).into_iter().collect();
            for img in &train {
                let neg: Vec<i8> = img.iter().map(|x| -x).collect();
                assert!(train.contains(&neg));
            }
            assert_eq!(d.kept.iter().filter(|&&k| k).count(), 2 * n - 1);
        }
        let d = bas(12, 0);
        assert_eq!((d.n_train(), d.n_test()), (6550, 1638));
        assert_eq!(bas(12, 0).train, d.train);
        assert_ne!(bas(12, 1).train, d.train);
    }

    #[test]
    fn random_data_is_seeded_and_balanced() {
        let d = random(784, 100, 3);
        assert_eq!((d.visible(), d.n_train(), d.n_test()), (784, 100, 0));
        assert!(d.train.iter().all(|&x| x == 1.0 || x == -1.0));
        let plus = d.train.iter().filter(|&&x| x == 1.0).count() as f64 / d.train.len() as f64;
        assert!((plus - 0.5).abs() < 0.01, "share of +1: {plus}");
        assert_eq!(d.train, Dataset::new(d.spec, 3).train);
        assert_ne!(d.train, random(784, 100, 4).train);
        assert_eq!(d.spec.to_string(), "random:784x100");
        assert!("random:784x100".parse::<DatasetSpec>().is_err(), "no command-line name");
    }

    #[test]
    fn specs_parse_and_reject() {
        assert_eq!("bars4".parse::<DatasetSpec>(), Ok(DatasetSpec::Bars4));
        assert_eq!("bas:12".parse::<DatasetSpec>(), Ok(DatasetSpec::Bas(12)));
        assert!("bas:x".parse::<DatasetSpec>().is_err());
        assert!("bas:40".parse::<DatasetSpec>().is_err());
        assert!("mnist2".parse::<DatasetSpec>().unwrap_err().contains("unknown dataset"));
    }
}
