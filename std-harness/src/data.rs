//! The datasets as ±1 images (row-major, `+1.0`/`−1.0`): the paper's two synthetic sets, a
//! vendored MNIST subset, and the user's own files.
//!
//! * **Bars 4×4** (`bars4`): an image is a row `r ∈ {±1}⁴` repeated on all four rows; the 14
//!   non-constant rows. Train: `r ∈ {+−−−, ++−−, +++−, +−++, ++−+}` and negations (10); test:
//!   `{+−+−, +−−+}` and negations (4). Both sets are closed under negation, so nothing leaks
//!   through the `v ↔ −v` symmetry of a bias-free model.
//! * **Bars and stripes n×n** (`bas:N`): bars (a non-empty proper subset of columns at +1) and
//!   stripes (the same for rows), `2(2ⁿ−2)` images. Split 80/20 with a seed, by negation
//!   pairs (an image and its negation fall on the same side), so `bas:12` gives 6550/1638.
//! * **MNIST subset** (`mnist`): 10 000 MNIST digits vendored in the crate (`data/mnist-10k/`,
//!   with their source and licence), 8000 for training and 2000 for testing, 28×28. Grey
//!   levels `x ∈ 0..=255` become `+1` when `x/255 > t` (`t = 0.3` by default, as in the
//!   authors' MNIST notebook), else `−1`.
//! * **IDX files** (`idx:IMAGES[,LABELS]`): any IDX image file (e.g. the full MNIST
//!   distribution), gzip or plain, with optional labels; binarised as MNIST (`u8` values are
//!   divided by 255 first; other element types hold ±1 or {0, 1}, or are compared with an
//!   explicit `t` as they are).
//!   The last two dimensions are the image shape. `--test idx:…` adds a test set.
//! * **NumPy files** (`npy:FILE`): an `N×V` array of any numeric dtype NumPy writes, holding
//!   ±1 or {0, 1} values (`0 → −1`), or any values with an explicit threshold `t`. Images are
//!   one row of `V` pixels unless a shape `R×C` (`R·C = V`) is given, or the array is
//!   `N×R×C`. `--test npy:…` adds a test set.
//!
//! * **Random ±1** (no command-line name; [`random`]): `n` images of `V` uniform random ±1
//!   pixels from a seed, all for training, no test set. It stands in for data of a given size
//!   when only the cost of training matters (`rapid bench paper` at MNIST sizes).
//!
//! Each dataset also says which pixels the reconstruction metric keeps: the top row for Bars
//! (it determines the image), the top row and the left column for BAS (the top row says
//! nothing about a stripe, the left column nothing about a bar), the top half of the rows for
//! other images (the bottom half is completed), the first half of the pixels for flat data.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use rand_core::RngCore;

use crate::seed::{stream, Stream};

/// The default binarisation threshold of grey levels: `x/255 > 0.3 → +1`.
pub const DEFAULT_THRESHOLD: f32 = 0.3;

/// A data file: IDX images (with optional labels) or a NumPy array.
#[derive(Clone, Debug, PartialEq)]
pub enum FileSource {
    /// IDX images and optional labels, gzip or plain.
    Idx {
        /// The images (rank ≥ 2: `N × …`).
        images: PathBuf,
        /// Their labels (rank 1, `N` entries).
        labels: Option<PathBuf>,
    },
    /// A `.npy` array, `N × V` or `N × R × C`.
    Npy(PathBuf),
}

impl FromStr for FileSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("idx:") {
            let (images, labels) = match rest.split_once(',') {
                Some((i, l)) => (i, Some(l)),
                None => (rest, None),
            };
            if images.is_empty() || labels == Some("") {
                return Err(format!("idx:IMAGES[,LABELS] needs file names, got '{s}'"));
            }
            Ok(FileSource::Idx { images: images.into(), labels: labels.map(PathBuf::from) })
        } else if let Some(rest) = s.strip_prefix("npy:") {
            if rest.is_empty() {
                return Err("npy:FILE needs a file name".into());
            }
            Ok(FileSource::Npy(rest.into()))
        } else {
            Err(format!("unknown data file '{s}' (expected idx:IMAGES[,LABELS] or npy:FILE)"))
        }
    }
}

impl fmt::Display for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileSource::Idx { images, labels: None } => write!(f, "idx:{}", images.display()),
            FileSource::Idx { images, labels: Some(l) } => {
                write!(f, "idx:{},{}", images.display(), l.display())
            }
            FileSource::Npy(p) => write!(f, "npy:{}", p.display()),
        }
    }
}

/// Which dataset to build.
#[derive(Clone, Debug, PartialEq)]
pub enum DatasetSpec {
    /// Bars 4×4 with the paper's 10/4 split.
    Bars4,
    /// Bars and stripes `n×n`, 80/20 split.
    Bas(usize),
    /// The vendored MNIST subset (8000 train / 2000 test), binarised at `threshold`.
    Mnist {
        /// `x/255 > threshold → +1`.
        threshold: f32,
    },
    /// The user's files.
    Files {
        /// Training images.
        train: FileSource,
        /// Test images, if any.
        test: Option<FileSource>,
        /// Binarisation threshold: grey levels `x > t → +1` (IDX `u8` divided by 255 first).
        /// `None`: [`DEFAULT_THRESHOLD`] for IDX, and `.npy` values must be ±1 or {0, 1}.
        threshold: Option<f32>,
        /// Image shape `(rows, columns)` for flat `.npy` rows.
        shape: Option<(usize, usize)>,
    },
    /// `images` random ±1 images of `visible` pixels, all for training ([`random`]). Built by
    /// benchmarks only: it has no command-line name, so `FromStr` never returns it.
    Random {
        /// Pixels per image, `V`.
        visible: usize,
        /// Number of images.
        images: usize,
    },
    /// `images` rows of `height × width` ±1 pixels handed over by a library caller (the
    /// Python package) through [`Dataset::from_rows`]. It has no command-line name and
    /// [`Dataset::load`] refuses it: the rows are not part of the spec.
    Arrays {
        /// Rows per image.
        height: usize,
        /// Columns per image.
        width: usize,
        /// Number of training images.
        images: usize,
    },
}

impl DatasetSpec {
    /// The vendored MNIST subset with the default threshold.
    pub const MNIST: DatasetSpec = DatasetSpec::Mnist { threshold: DEFAULT_THRESHOLD };

    /// Applies the options of file data: a test file, a binarisation threshold and an image
    /// shape. Each is refused where it has no meaning (built-in data have their own test set;
    /// Bars and BAS are ±1 already).
    ///
    /// # Errors
    /// An option that does not apply, with the reason.
    pub fn with_options(
        self,
        test: Option<FileSource>,
        threshold: Option<f32>,
        shape: Option<(usize, usize)>,
    ) -> Result<Self, String> {
        if let Some(t) = threshold {
            if !t.is_finite() {
                return Err(format!("--binarize needs a finite threshold, got {t}"));
            }
        }
        match self {
            DatasetSpec::Files { train, test: t0, threshold: th0, shape: s0 } => {
                Ok(DatasetSpec::Files {
                    train,
                    test: test.or(t0),
                    threshold: threshold.or(th0),
                    shape: shape.or(s0),
                })
            }
            DatasetSpec::Mnist { threshold: th0 } => {
                if test.is_some() {
                    return Err("--test: mnist has its own 2000 test images".into());
                }
                if shape.is_some() {
                    return Err("--shape: mnist images are 28x28".into());
                }
                Ok(DatasetSpec::Mnist { threshold: threshold.unwrap_or(th0) })
            }
            other => {
                let what = if test.is_some() {
                    "--test"
                } else if threshold.is_some() {
                    "--binarize"
                } else if shape.is_some() {
                    "--shape"
                } else {
                    return Ok(other);
                };
                Err(format!(
                    "{what} applies to mnist, idx: and npy: data, not to {other} (its images are \
                     ±1 and it has its own split)"
                ))
            }
        }
    }

    /// Whether the data come from files (and so can fail to load).
    pub fn is_files(&self) -> bool {
        matches!(self, DatasetSpec::Files { .. })
    }
}

impl FromStr for DatasetSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bars4" => Ok(DatasetSpec::Bars4),
            "mnist" => Ok(DatasetSpec::MNIST),
            _ => {
                if let Some(n) = s.strip_prefix("bas:") {
                    let n: usize =
                        n.parse().map_err(|_| format!("bas:N needs a whole number, got '{n}'"))?;
                    if !(3..=16).contains(&n) {
                        return Err(format!("bas:N needs 3 <= N <= 16, got {n}"));
                    }
                    Ok(DatasetSpec::Bas(n))
                } else if let Some(rest) = s.strip_prefix("arrays:") {
                    // The name of a library caller's rows in a model file's settings: parsed
                    // so those files read back; the rows themselves are not stored.
                    let n: Vec<usize> =
                        rest.split('x').map(str::parse).collect::<Result<_, _>>().map_err(
                            |_| format!("arrays:NxRxC needs three whole numbers, got '{s}'"),
                        )?;
                    match n[..] {
                        [images, height, width] => {
                            Ok(DatasetSpec::Arrays { height, width, images })
                        }
                        _ => Err(format!("arrays:NxRxC needs three whole numbers, got '{s}'")),
                    }
                } else if s.starts_with("idx:") || s.starts_with("npy:") {
                    Ok(DatasetSpec::Files {
                        train: s.parse()?,
                        test: None,
                        threshold: None,
                        shape: None,
                    })
                } else {
                    Err(format!(
                        "unknown dataset '{s}' (expected bars4, bas:N, mnist, idx:IMAGES[,LABELS] \
                         or npy:FILE)"
                    ))
                }
            }
        }
    }
}

/// The primary name: `bars4`, `bas:12`, `mnist`, `idx:PATH[,LABELS]`, `npy:PATH` (the options
/// of file data and a non-default MNIST threshold are not part of it).
impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::Bars4 => f.write_str("bars4"),
            DatasetSpec::Bas(n) => write!(f, "bas:{n}"),
            DatasetSpec::Mnist { .. } => f.write_str("mnist"),
            DatasetSpec::Files { train, .. } => train.fmt(f),
            DatasetSpec::Random { visible, images } => write!(f, "random:{visible}x{images}"),
            DatasetSpec::Arrays { height, width, images } => {
                write!(f, "arrays:{images}x{height}x{width}")
            }
        }
    }
}

/// Parses an image shape `RxC` (or `R×C`).
///
/// # Errors
/// Not two positive whole numbers.
pub fn parse_shape(s: &str) -> Result<(usize, usize), String> {
    let (r, c) = s
        .split_once('x')
        .or_else(|| s.split_once('×'))
        .ok_or_else(|| format!("a shape is RxC (e.g. 28x28), got '{s}'"))?;
    match (r.trim().parse::<usize>(), c.trim().parse::<usize>()) {
        (Ok(r), Ok(c)) if r > 0 && c > 0 => Ok((r, c)),
        _ => Err(format!("a shape is two positive whole numbers RxC, got '{s}'")),
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
    /// Labels of the training images (empty when the data have none).
    pub train_labels: Vec<u32>,
    /// Labels of the test images (empty when the data have none).
    pub test_labels: Vec<u32>,
    /// Pixels the reconstruction metric keeps (the rest start at 0).
    pub kept: Vec<bool>,
}

impl Dataset {
    /// Builds a built-in dataset; `split_seed` chooses the BAS split (Bars has a fixed split)
    /// and the pixels of a random dataset.
    ///
    /// # Panics
    /// For file data ([`DatasetSpec::Files`]), which can fail: use [`Dataset::load`].
    pub fn new(spec: DatasetSpec, split_seed: u64) -> Self {
        Dataset::load(&spec, split_seed).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds any dataset, reading files where the spec names them.
    ///
    /// # Errors
    /// A file that cannot be read or decoded, data that are not images of one size, values
    /// that are not ±1 or {0, 1} without a threshold, a shape that does not match.
    pub fn load(spec: &DatasetSpec, split_seed: u64) -> Result<Self, String> {
        Ok(match spec {
            DatasetSpec::Bars4 => bars4(),
            DatasetSpec::Bas(n) => bas(*n, split_seed),
            DatasetSpec::Mnist { threshold } => mnist(*threshold),
            DatasetSpec::Files { .. } => files(spec)?,
            DatasetSpec::Random { visible, images } => random(*visible, *images, split_seed),
            DatasetSpec::Arrays { .. } => {
                return Err(format!(
                    "{spec}: in-memory rows cannot be loaded from their spec (use \
                     Dataset::from_rows)"
                ))
            }
        })
    }

    /// A dataset of the caller's rows: `train` and `test` hold images of `height × width`
    /// pixels, each pixel exactly `+1.0` or `-1.0`, row-major. The reconstruction mask keeps
    /// the top half of the rows (the first half of the pixels when `height` is 1).
    ///
    /// # Errors
    /// An empty image size, no training image, lengths that are not whole images, or a
    /// pixel that is not ±1 (its position is named).
    pub fn from_rows(
        train: Vec<f32>,
        test: Vec<f32>,
        height: usize,
        width: usize,
    ) -> Result<Self, String> {
        let v = height.checked_mul(width).filter(|&v| v > 0).ok_or_else(|| {
            format!("images need at least one pixel, got a {height}x{width} shape")
        })?;
        for (name, rows) in [("training", &train), ("test", &test)] {
            if rows.len() % v != 0 {
                return Err(format!(
                    "the {name} rows hold {} values, not a whole number of {v}-pixel images",
                    rows.len()
                ));
            }
            if let Some(i) = rows.iter().position(|&x| x != 1.0 && x != -1.0) {
                return Err(format!(
                    "{name} image {}, pixel {}: {} is not +1 or -1",
                    i / v,
                    i % v,
                    rows[i]
                ));
            }
        }
        if train.is_empty() {
            return Err("no training images".into());
        }
        Ok(Dataset {
            spec: DatasetSpec::Arrays { height, width, images: train.len() / v },
            width,
            height,
            train,
            test,
            train_labels: Vec::new(),
            test_labels: Vec::new(),
            kept: top_half(height, width),
        })
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
            _ if self.height >= 2 => "top half of the rows",
            _ => "first half of the pixels",
        }
    }
}

/// The reconstruction mask of general images: the top `⌊R/2⌋` rows, or the first `⌊V/2⌋`
/// pixels of flat images.
fn top_half(height: usize, width: usize) -> Vec<bool> {
    let v = height * width;
    let keep = if height >= 2 { (height / 2) * width } else { v / 2 };
    (0..v).map(|p| p < keep).collect()
}

static MNIST_TRAIN_IMAGES: &[u8] = include_bytes!("../data/mnist-10k/train-images-idx3-ubyte.gz");
static MNIST_TRAIN_LABELS: &[u8] = include_bytes!("../data/mnist-10k/train-labels-idx1-ubyte.gz");
static MNIST_TEST_IMAGES: &[u8] = include_bytes!("../data/mnist-10k/t10k-images-idx3-ubyte.gz");
static MNIST_TEST_LABELS: &[u8] = include_bytes!("../data/mnist-10k/t10k-labels-idx1-ubyte.gz");

/// The vendored MNIST subset, binarised at `threshold` (`x/255 > threshold → +1`).
///
/// # Panics
/// Never for the vendored bytes (checked by the tests).
pub fn mnist(threshold: f32) -> Dataset {
    let read = |bytes: &[u8]| crate::idx::decode(bytes).expect("the vendored MNIST files decode");
    let (tr, trl, te, tel) = (
        read(MNIST_TRAIN_IMAGES),
        read(MNIST_TRAIN_LABELS),
        read(MNIST_TEST_IMAGES),
        read(MNIST_TEST_LABELS),
    );
    let bin = |a: &crate::idx::IdxArray| -> Vec<f32> {
        a.data.iter().map(|&x| pm(x / 255.0 > threshold)).collect()
    };
    let labels =
        |a: &crate::idx::IdxArray| -> Vec<u32> { a.data.iter().map(|&x| x as u32).collect() };
    Dataset {
        spec: DatasetSpec::Mnist { threshold },
        width: 28,
        height: 28,
        train: bin(&tr),
        test: bin(&te),
        train_labels: labels(&trl),
        test_labels: labels(&tel),
        kept: top_half(28, 28),
    }
}

/// Images read from a file: `(n, height, width, ±1 pixels, labels)`.
type Loaded = (usize, usize, usize, Vec<f32>, Vec<u32>);

fn load_source(
    src: &FileSource,
    threshold: Option<f32>,
    shape: Option<(usize, usize)>,
) -> Result<Loaded, String> {
    let (dims, values, grey_u8, labels) = match src {
        FileSource::Idx { images, labels } => {
            let a = crate::idx::read(images).map_err(|e| e.to_string())?;
            let grey = a.dtype == crate::idx::IdxType::U8;
            let labels = match labels {
                None => Vec::new(),
                Some(path) => {
                    let l = crate::idx::read(path).map_err(|e| e.to_string())?;
                    if l.dims.len() != 1 {
                        return Err(format!(
                            "{}: labels must be one number per image, the file has dims {:?}",
                            path.display(),
                            l.dims
                        ));
                    }
                    if l.dims[0] != a.dims[0] {
                        return Err(format!(
                            "{} has {} labels but {} has {} images",
                            path.display(),
                            l.dims[0],
                            images.display(),
                            a.dims[0]
                        ));
                    }
                    l.data.iter().map(|&x| x.max(0.0) as u32).collect()
                }
            };
            (a.dims, a.data, grey, labels)
        }
        FileSource::Npy(path) => {
            let a = crate::npy::read(path).map_err(|e| e.to_string())?;
            (a.shape, a.data, false, Vec::new())
        }
    };
    let name = src.to_string();
    let n = dims.first().copied().unwrap_or(0);
    if dims.len() < 2 || n == 0 || dims[1..].contains(&0) {
        return Err(format!(
            "{name}: expected at least one image (an N×V or N×R×C array), got dims {dims:?}"
        ));
    }
    let v: usize = dims[1..].iter().product();
    let (height, width) = match (dims.len(), shape) {
        (_, Some((r, c))) => {
            if r * c != v {
                return Err(format!(
                    "{name}: --shape {r}x{c} has {} pixels, images have {v}",
                    r * c
                ));
            }
            (r, c)
        }
        (2, None) => (1, v),
        (3, None) => (dims[1], dims[2]),
        (_, None) => (v / dims[dims.len() - 1], dims[dims.len() - 1]),
    };
    let pixels = match threshold {
        Some(t) => {
            values.iter().map(|&x| pm(if grey_u8 { x / 255.0 > t } else { x > t })).collect()
        }
        None if grey_u8 => values.iter().map(|&x| pm(x / 255.0 > DEFAULT_THRESHOLD)).collect(),
        None => {
            let pm1 = values.iter().all(|&x| x == 1.0 || x == -1.0);
            let bin01 = values.iter().all(|&x| x == 1.0 || x == 0.0);
            if !(pm1 || bin01) {
                let at = |i: usize| format!("image {}, pixel {}", i / v, i % v);
                let hint = "give --binarize T to map x > T to +1";
                if let Some(i) = values.iter().position(|&x| x != 1.0 && x != -1.0 && x != 0.0) {
                    return Err(format!(
                        "{name}: values must be ±1 or 0/1, found {} ({}); {hint}",
                        values[i],
                        at(i)
                    ));
                }
                let zero = values.iter().position(|&x| x == 0.0).unwrap_or(0);
                let minus = values.iter().position(|&x| x == -1.0).unwrap_or(0);
                return Err(format!(
                    "{name}: values must be ±1 or 0/1, found both 0 ({}) and −1 ({}); {hint}",
                    at(zero),
                    at(minus)
                ));
            }
            values.iter().map(|&x| pm(x == 1.0)).collect()
        }
    };
    Ok((n, height, width, pixels, labels))
}

fn files(spec: &DatasetSpec) -> Result<Dataset, String> {
    let DatasetSpec::Files { train, test, threshold, shape } = spec else {
        unreachable!("files() is called for file data");
    };
    let (_, height, width, train_px, train_labels) = load_source(train, *threshold, *shape)?;
    let (test_px, test_labels) = match test {
        None => (Vec::new(), Vec::new()),
        Some(t) => {
            let (_, h, w, px, l) = load_source(t, *threshold, shape.or(Some((height, width))))?;
            if h * w != height * width {
                return Err(format!(
                    "{t} has images of {} pixels, {train} of {}",
                    h * w,
                    height * width
                ));
            }
            (px, l)
        }
    };
    Ok(Dataset {
        spec: spec.clone(),
        width,
        height,
        train: train_px,
        test: test_px,
        train_labels,
        test_labels,
        kept: top_half(height, width),
    })
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
        train_labels: Vec::new(),
        test_labels: Vec::new(),
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
        train_labels: Vec::new(),
        test_labels: Vec::new(),
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
        train_labels: Vec::new(),
        test_labels: Vec::new(),
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
        assert_eq!(d.train, Dataset::new(d.spec.clone(), 3).train);
        assert_ne!(d.train, random(784, 100, 4).train);
        assert_eq!(d.spec.to_string(), "random:784x100");
        assert!("random:784x100".parse::<DatasetSpec>().is_err(), "no command-line name");
    }

    #[test]
    fn mnist_subset_loads_binarised() {
        let d = mnist(DEFAULT_THRESHOLD);
        assert_eq!((d.n_train(), d.n_test(), d.width, d.height), (8000, 2000, 28, 28));
        assert_eq!((d.train_labels.len(), d.test_labels.len()), (8000, 2000));
        assert!(d.train_labels.iter().chain(&d.test_labels).all(|&l| l <= 9));
        assert!(d.train.iter().chain(&d.test).all(|&x| x == 1.0 || x == -1.0));
        // Digits are ink on a blank page: a minority of pixels is on.
        let on = d.train.iter().filter(|&&x| x == 1.0).count() as f64 / d.train.len() as f64;
        assert!((0.08..0.25).contains(&on), "share of +1: {on}");
        let higher = mnist(0.6);
        let on_hi =
            higher.train.iter().filter(|&&x| x == 1.0).count() as f64 / d.train.len() as f64;
        assert!(on_hi < on, "a higher threshold keeps fewer pixels");
        assert_eq!(d.kept.iter().filter(|&&k| k).count(), 14 * 28);
        assert_eq!(d.kept_description(), "top half of the rows");
    }

    fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn npy_files_load_with_shape_threshold_and_test_set() {
        let dir = tempfile::tempdir().unwrap();
        let zero_one = [0.0f32, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        let tr = write(dir.path(), "tr.npy", &crate::npy::encode_f32(&zero_one, &[2, 4]));
        let spec: DatasetSpec = format!("npy:{}", tr.display()).parse().unwrap();
        let d = Dataset::load(&spec, 0).unwrap();
        assert_eq!((d.n_train(), d.n_test(), d.height, d.width), (2, 0, 1, 4));
        assert_eq!(d.train, [-1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, -1.0]);
        assert_eq!(d.kept, [true, true, false, false]);
        let grey = [0.1f32, 0.9, 0.5, 0.2];
        let te = write(dir.path(), "te.npy", &crate::npy::encode_f32(&grey, &[1, 4]));
        let with_test = spec
            .clone()
            .with_options(
                Some(format!("npy:{}", te.display()).parse().unwrap()),
                None,
                Some((2, 2)),
            )
            .unwrap();
        let err = Dataset::load(&with_test, 0).unwrap_err();
        assert!(err.contains("found 0.1") && err.contains("--binarize"), "{err}");
        let thresholded = with_test.with_options(None, Some(0.4), None).unwrap();
        let d = Dataset::load(&thresholded, 0).unwrap();
        assert_eq!((d.height, d.width, d.n_test()), (2, 2, 1));
        assert_eq!(d.test, [-1.0, 1.0, 1.0, -1.0]);
        assert_eq!(d.kept, [true, true, false, false]);
        let mixed =
            write(dir.path(), "m.npy", &crate::npy::encode_f32(&[0.0, -1.0, 1.0, 1.0], &[1, 4]));
        let err =
            Dataset::load(&format!("npy:{}", mixed.display()).parse().unwrap(), 0).unwrap_err();
        assert!(err.contains("both 0") && err.contains("−1"), "{err}");
        let bad_shape = spec.clone().with_options(None, None, Some((3, 3))).unwrap();
        assert!(Dataset::load(&bad_shape, 0).unwrap_err().contains("--shape 3x3"));
        let missing: DatasetSpec = "npy:/nonexistent/x.npy".parse().unwrap();
        assert!(Dataset::load(&missing, 0).unwrap_err().contains("/nonexistent/x.npy"));
    }

    #[test]
    fn idx_files_load_like_the_vendored_subset() {
        let dir = tempfile::tempdir().unwrap();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k/");
        let images = format!("{root}t10k-images-idx3-ubyte.gz");
        let labels = format!("{root}t10k-labels-idx1-ubyte.gz");
        let spec: DatasetSpec = format!("idx:{images},{labels}").parse().unwrap();
        let d = Dataset::load(&spec, 0).unwrap();
        let m = mnist(DEFAULT_THRESHOLD);
        assert_eq!((d.height, d.width, d.n_train()), (28, 28, 2000));
        assert_eq!((d.train, d.train_labels), (m.test, m.test_labels));
        // Labels that do not match the images are refused.
        let wrong = format!("idx:{images},{root}train-labels-idx1-ubyte.gz");
        let err = Dataset::load(&wrong.parse().unwrap(), 0).unwrap_err();
        assert!(err.contains("8000 labels") && err.contains("2000 images"), "{err}");
        let junk = write(dir.path(), "junk", b"not an idx file at all");
        let err = Dataset::load(&format!("idx:{}", junk.display()).parse().unwrap(), 0);
        assert!(err.unwrap_err().contains("IDX"));
    }

    #[test]
    fn options_apply_only_where_they_mean_something() {
        assert!(DatasetSpec::Bars4
            .with_options(None, Some(0.5), None)
            .unwrap_err()
            .contains("--binarize"));
        assert!(DatasetSpec::MNIST
            .with_options(Some("npy:x".parse().unwrap()), None, None)
            .unwrap_err()
            .contains("--test"));
        assert_eq!(
            DatasetSpec::MNIST.with_options(None, Some(0.5), None).unwrap(),
            DatasetSpec::Mnist { threshold: 0.5 }
        );
        assert!(DatasetSpec::MNIST.with_options(None, Some(f32::NAN), None).is_err());
        assert_eq!(
            DatasetSpec::Bas(5).with_options(None, None, None).unwrap(),
            DatasetSpec::Bas(5)
        );
        assert_eq!(parse_shape("28x28"), Ok((28, 28)));
        assert_eq!(parse_shape("2×3"), Ok((2, 3)));
        assert!(parse_shape("0x3").is_err() && parse_shape("28").is_err());
        assert_eq!("idx:a.gz".parse::<DatasetSpec>().unwrap().to_string(), "idx:a.gz");
        assert_eq!("idx:a.gz,b.gz".parse::<DatasetSpec>().unwrap().to_string(), "idx:a.gz,b.gz");
        assert!("idx:".parse::<DatasetSpec>().is_err() && "npy:".parse::<DatasetSpec>().is_err());
        assert!("idx:a,".parse::<DatasetSpec>().is_err());
    }

    #[test]
    fn specs_parse_and_reject() {
        assert_eq!("mnist".parse::<DatasetSpec>(), Ok(DatasetSpec::MNIST));
        assert_eq!("bars4".parse::<DatasetSpec>(), Ok(DatasetSpec::Bars4));
        assert_eq!("bas:12".parse::<DatasetSpec>(), Ok(DatasetSpec::Bas(12)));
        assert!("bas:x".parse::<DatasetSpec>().is_err());
        assert!("bas:40".parse::<DatasetSpec>().is_err());
        assert!("mnist2".parse::<DatasetSpec>().unwrap_err().contains("unknown dataset"));
    }

    #[test]
    fn rows_from_a_caller_are_checked_and_masked() {
        let bars = bars4();
        let d = Dataset::from_rows(bars.train.clone(), bars.test.clone(), 4, 4).unwrap();
        assert_eq!((d.n_train(), d.n_test(), d.visible()), (10, 4, 16));
        // The general mask (top half of the rows), not Bars' own (the top row).
        assert_eq!(d.kept, (0..16).map(|p| p < 8).collect::<Vec<_>>());
        assert_eq!(d.spec.to_string(), "arrays:10x4x4");
        assert!(Dataset::load(&d.spec, 0).unwrap_err().contains("from_rows"));
        let flat = Dataset::from_rows(vec![1.0; 6], Vec::new(), 1, 6).unwrap();
        assert_eq!(flat.kept, [true, true, true, false, false, false]);
        let err = |t: Vec<f32>, h, w| Dataset::from_rows(t, Vec::new(), h, w).unwrap_err();
        assert!(err(vec![1.0, 0.5], 1, 2).contains("image 0, pixel 1: 0.5"));
        assert!(err(vec![1.0; 3], 1, 2).contains("not a whole number"));
        assert!(err(Vec::new(), 1, 2).contains("no training images"));
        assert!(err(vec![1.0], 0, 1).contains("at least one pixel"));
    }
}
