//! Checkpoint files: everything needed to continue a training run bit-identically.
//!
//! A run resumed from a checkpoint ends with exactly the model an uninterrupted run with the
//! same settings would have produced: training randomness is re-derived from
//! `(seed, epoch)` (see [`crate::run`]), so the checkpoint needs no RNG state, only the
//! model, the optimiser state (SGD momentum or Adam moments and step count), the PCD chains,
//! the epoch, the update count and the learning rate. Nothing time- or host-dependent is
//! stored, so equal runs give equal bytes.
//!
//! # Layout (version 1, integers little-endian)
//!
//! | size | field |
//! | --- | --- |
//! | 8 | magic `RAPIDCKP` |
//! | 2 | version (`u16`), currently 1 |
//! | 2 | reserved, 0 |
//! | 4 + n | settings: `u32` length, then UTF-8 `key=value` lines (exact round trip) |
//! | 8 + m | the model: `u64` length, then a model file ([`rapid_core::format`], own CRC) |
//! | 1 | optimiser: 0 = SGD, 1 = Adam |
//! | 8 + 4p | optimiser state: `u64` count `p`, then `f32`s (SGD: `Δ`; Adam: `m` then `v`) |
//! | 8 | Adam step count (`u64`; 0 for SGD) |
//! | 8 + 8c | chains: `u64` count `c`, then `u64` words |
//! | 4 | epochs done (`u32`) |
//! | 8 | updates done (`u64`) |
//! | 4 | learning rate for the next epoch (`f32`) |
//! | 4 | CRC-32 (IEEE) of every preceding byte |

use std::fmt;

use rapid_core::format::crc32;
use rapid_core::optim::LrSchedule;

use crate::data::{parse_shape, DatasetSpec, FileSource, DEFAULT_THRESHOLD};
use crate::metrics::HdProtocol;
use crate::model::Model;
use crate::run::{
    parse_projection, projection_name, Arith, OptSnapshot, TrainConfig, TrainerState,
};

/// Magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"RAPIDCKP";
/// The version this build writes and the newest it reads.
pub const VERSION: u16 = 1;

/// A saved training run.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The dataset.
    pub dataset: DatasetSpec,
    /// The BAS split seed.
    pub split_seed: u64,
    /// The settings.
    pub config: TrainConfig,
    /// The trainer state.
    pub state: TrainerState,
}

/// Why a checkpoint could not be read.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckpointError {
    /// The first eight bytes are not `RAPIDCKP`.
    BadMagic,
    /// Written by a newer (or unknown) version.
    UnsupportedVersion(u16),
    /// The file ends before a field it announces (cut short).
    Truncated,
    /// Bytes after the checksum.
    TrailingBytes,
    /// The CRC-32 does not match: the file is corrupted.
    Checksum {
        /// Stored checksum.
        stored: u32,
        /// Computed checksum.
        computed: u32,
    },
    /// The embedded model file is invalid.
    Model(rapid_core::FormatError),
    /// The settings are unreadable or inconsistent with the state.
    Settings(String),
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::BadMagic => f.write_str("not a rapid checkpoint (bad magic bytes)"),
            CheckpointError::UnsupportedVersion(v) => {
                write!(f, "checkpoint format version {v} is not supported by this build")
            }
            CheckpointError::Truncated => f.write_str("checkpoint is truncated"),
            CheckpointError::TrailingBytes => f.write_str("checkpoint has bytes after its checksum"),
            CheckpointError::Checksum { stored, computed } => write!(
                f,
                "checkpoint checksum mismatch (stored {stored:08x}, computed {computed:08x}): corrupted"
            ),
            CheckpointError::Model(e) => write!(f, "checkpoint model: {e}"),
            CheckpointError::Settings(e) => write!(f, "checkpoint settings: {e}"),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// The settings as `key=value` lines; floats print in their shortest exact form.
pub fn settings_text(dataset: &DatasetSpec, split_seed: u64, c: &TrainConfig) -> String {
    let lines = [
        ("dataset", dataset.to_string()),
        ("split_seed", split_seed.to_string()),
        ("method", c.method.to_string()),
        ("hidden", c.hidden.to_string()),
        ("patterns", c.patterns.to_string()),
        ("biases", c.biases.to_string()),
        ("epochs", c.epochs.to_string()),
        ("batch", c.batch.to_string()),
        ("partial_batch", c.partial_batch.to_string()),
        ("optimizer", c.optimizer.to_string()),
        ("lr", format!("{:?}", c.lr)),
        ("momentum", format!("{:?}", c.momentum)),
        ("weight_decay", format!("{:?}", c.weight_decay)),
        ("projection", projection_name(c.projection)),
        ("lr_decay", format!("{:?}", c.schedule.decay)),
        ("lr_min", format!("{:?}", c.schedule.min)),
        ("lr_decay_start", c.schedule.start_epoch.to_string()),
        ("seed", c.seed.to_string()),
        ("eval_every", c.eval_every.to_string()),
        ("eval_repeats", c.eval.repeats.to_string()),
        ("eval_steps", c.eval.steps.to_string()),
        ("eval_clamp", c.eval.clamp.to_string()),
        ("track", c.track.to_string()),
    ];
    let mut text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    // Written only for integer runs, so f32 checkpoints keep their earlier bytes; a file
    // without the key is an f32 run.
    if c.arith != Arith::F32 {
        text.push_str(&format!("arith={}\n", c.arith));
    }
    // The options of file data and MNIST's threshold, also only where they are set.
    match dataset {
        DatasetSpec::Mnist { threshold } if *threshold != DEFAULT_THRESHOLD => {
            text.push_str(&format!("binarize={threshold:?}\n"));
        }
        DatasetSpec::Files { test, threshold, shape, .. } => {
            if let Some(t) = test {
                text.push_str(&format!("test={t}\n"));
            }
            if let Some(t) = threshold {
                text.push_str(&format!("binarize={t:?}\n"));
            }
            if let Some((r, c)) = shape {
                text.push_str(&format!("shape={r}x{c}\n"));
            }
        }
        _ => {}
    }
    text
}

/// Every key [`settings_text`] may write: the ones it always writes, then the optional ones.
pub const SETTINGS_KEYS: [&str; 27] = [
    "dataset",
    "split_seed",
    "method",
    "hidden",
    "patterns",
    "biases",
    "epochs",
    "batch",
    "partial_batch",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "projection",
    "lr_decay",
    "lr_min",
    "lr_decay_start",
    "seed",
    "eval_every",
    "eval_repeats",
    "eval_steps",
    "eval_clamp",
    "track",
    "arith",
    "binarize",
    "test",
    "shape",
];

/// Parses [`settings_text`] (a checkpoint's settings, or a model file's settings section).
///
/// # Errors
/// A missing, unknown, repeated or malformed key, named.
pub fn parse_settings(text: &str) -> Result<(DatasetSpec, u64, TrainConfig), String> {
    let mut map = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once('=').ok_or_else(|| format!("malformed line '{line}'"))?;
        // A key this build does not know could be a setting it would silently ignore, and a
        // repeated one leaves two values to choose from: both are refused.
        if !SETTINGS_KEYS.contains(&k) {
            return Err(format!("unknown key '{k}' (in line '{line}')"));
        }
        if let Some(first) = map.insert(k, v) {
            return Err(format!("key '{k}' appears twice ('{k}={first}' and '{k}={v}')"));
        }
    }
    fn get<T: std::str::FromStr>(
        map: &std::collections::BTreeMap<&str, &str>,
        key: &str,
    ) -> Result<T, String>
    where
        T::Err: fmt::Display,
    {
        let v = map.get(key).ok_or_else(|| format!("missing '{key}'"))?;
        v.parse::<T>().map_err(|e| format!("'{key}={v}': {e}"))
    }
    let cfg = TrainConfig {
        method: get(&map, "method")?,
        hidden: get(&map, "hidden")?,
        patterns: get(&map, "patterns")?,
        biases: get(&map, "biases")?,
        epochs: get(&map, "epochs")?,
        batch: get(&map, "batch")?,
        partial_batch: get(&map, "partial_batch")?,
        optimizer: get(&map, "optimizer")?,
        lr: get(&map, "lr")?,
        momentum: get(&map, "momentum")?,
        weight_decay: get(&map, "weight_decay")?,
        projection: parse_projection(map.get("projection").ok_or("missing 'projection'")?)?,
        schedule: LrSchedule {
            decay: get(&map, "lr_decay")?,
            min: get(&map, "lr_min")?,
            start_epoch: get(&map, "lr_decay_start")?,
        },
        seed: get(&map, "seed")?,
        eval_every: get(&map, "eval_every")?,
        eval: HdProtocol {
            repeats: get(&map, "eval_repeats")?,
            steps: get(&map, "eval_steps")?,
            clamp: get(&map, "eval_clamp")?,
        },
        track: get(&map, "track")?,
        arith: if map.contains_key("arith") { get(&map, "arith")? } else { Arith::F32 },
    };
    let base: DatasetSpec = get(&map, "dataset")?;
    let test: Option<FileSource> = map.get("test").map(|t| t.parse()).transpose()?;
    let threshold: Option<f32> =
        map.contains_key("binarize").then(|| get(&map, "binarize")).transpose()?;
    let shape = map.get("shape").map(|s| parse_shape(s)).transpose()?;
    let dataset = base.with_options(test, threshold, shape)?;
    Ok((dataset, get(&map, "split_seed")?, cfg))
}

/// How a model was made, as a model file's settings section or a checkpoint records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    /// The training data.
    pub dataset: DatasetSpec,
    /// The seed of its split.
    pub split_seed: u64,
    /// The training settings.
    pub config: TrainConfig,
    /// Whether it came from a checkpoint (a run that may not be finished).
    pub checkpoint: bool,
}

/// Reads a model file (with or without a settings section) or a checkpoint: the model, and
/// how it was made where the bytes say.
///
/// # Errors
/// The reader's error, or a settings section that cannot be parsed.
pub fn read_model_or_checkpoint(bytes: &[u8]) -> Result<(Model, Option<Provenance>), String> {
    if bytes.starts_with(&MAGIC) {
        let ck = Checkpoint::decode(bytes).map_err(|e| e.to_string())?;
        let made = Provenance {
            dataset: ck.dataset,
            split_seed: ck.split_seed,
            config: ck.config,
            checkpoint: true,
        };
        return Ok((ck.state.model, Some(made)));
    }
    let (model, text) = Model::decode_with_settings(bytes).map_err(|e| e.to_string())?;
    let made = match text {
        None => None,
        Some(t) => {
            let (dataset, split_seed, config) =
                parse_settings(&t).map_err(|e| format!("model file settings: {e}"))?;
            Some(Provenance { dataset, split_seed, config, checkpoint: false })
        }
    };
    Ok((model, made))
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CheckpointError> {
        let end = self.at.checked_add(n).ok_or(CheckpointError::Truncated)?;
        let s = self.b.get(self.at..end).ok_or(CheckpointError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, CheckpointError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, CheckpointError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, CheckpointError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, CheckpointError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn len(&mut self, elem: usize) -> Result<usize, CheckpointError> {
        let n = usize::try_from(self.u64()?).map_err(|_| CheckpointError::Truncated)?;
        // A count that cannot fit in the rest of the file is a truncation, not an allocation.
        if n.checked_mul(elem).is_none_or(|bytes| bytes > self.b.len() - self.at) {
            return Err(CheckpointError::Truncated);
        }
        Ok(n)
    }
    fn f32s(&mut self) -> Result<Vec<f32>, CheckpointError> {
        let n = self.len(4)?;
        Ok(self
            .take(4 * n)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect())
    }
}

impl Checkpoint {
    /// Encodes the checkpoint (see the module docs for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        let text = settings_text(&self.dataset, self.split_seed, &self.config);
        b.extend_from_slice(&(text.len() as u32).to_le_bytes());
        b.extend_from_slice(text.as_bytes());
        let model = self.state.model.encode();
        b.extend_from_slice(&(model.len() as u64).to_le_bytes());
        b.extend_from_slice(&model);
        let (kind, vals, t): (u8, Vec<f32>, u64) = match &self.state.opt {
            OptSnapshot::Sgd { velocity } => (0, velocity.clone(), 0),
            OptSnapshot::Adam { m, v, t } => (1, m.iter().chain(v).copied().collect(), *t),
        };
        b.push(kind);
        b.extend_from_slice(&(vals.len() as u64).to_le_bytes());
        for x in vals {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b.extend_from_slice(&t.to_le_bytes());
        b.extend_from_slice(&(self.state.chains.len() as u64).to_le_bytes());
        for w in &self.state.chains {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&self.state.epoch.to_le_bytes());
        b.extend_from_slice(&self.state.updates.to_le_bytes());
        b.extend_from_slice(&self.state.lr.to_le_bytes());
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates a checkpoint.
    ///
    /// # Errors
    /// The first problem found, as a [`CheckpointError`].
    pub fn decode(bytes: &[u8]) -> Result<Self, CheckpointError> {
        if bytes.len() < 8 {
            return Err(if MAGIC.starts_with(bytes) {
                CheckpointError::Truncated
            } else {
                CheckpointError::BadMagic
            });
        }
        if bytes[..8] != MAGIC {
            return Err(CheckpointError::BadMagic);
        }
        let mut r = Reader { b: bytes, at: 8 };
        let version = r.u16()?;
        if version == 0 || version > VERSION {
            return Err(CheckpointError::UnsupportedVersion(version));
        }
        r.u16()?;
        let n = r.u32()? as usize;
        let text = r.take(n)?;
        let model_len = r.len(1)?;
        let model_bytes = r.take(model_len)?;
        let kind = r.u8()?;
        let vals = r.f32s()?;
        let t = r.u64()?;
        let n_chains = r.len(8)?;
        let chains: Vec<u64> = r
            .take(8 * n_chains)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
            .collect();
        let epoch = r.u32()?;
        let updates = r.u64()?;
        let lr = f32::from_le_bytes(r.take(4)?.try_into().expect("4"));
        let body_end = r.at;
        let stored = r.u32()?;
        if r.at != bytes.len() {
            return Err(CheckpointError::TrailingBytes);
        }
        let computed = crc32(&bytes[..body_end]);
        if stored != computed {
            return Err(CheckpointError::Checksum { stored, computed });
        }
        let text =
            std::str::from_utf8(text).map_err(|_| CheckpointError::Settings("not UTF-8".into()))?;
        let (dataset, split_seed, config) =
            parse_settings(text).map_err(CheckpointError::Settings)?;
        let model = Model::decode(model_bytes).map_err(CheckpointError::Model)?;
        let p = model.params().len();
        let opt = match kind {
            0 if vals.len() == p => OptSnapshot::Sgd { velocity: vals },
            1 if vals.len() == 2 * p => {
                let v = vals[p..].to_vec();
                let mut m = vals;
                m.truncate(p);
                OptSnapshot::Adam { m, v, t }
            }
            _ => {
                return Err(CheckpointError::Settings(format!(
                    "optimiser code {kind} with {} values does not fit a model of {p} parameters",
                    vals.len()
                )))
            }
        };
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(CheckpointError::Settings(format!(
                "the saved learning rate is {lr}, it must be finite and non-negative"
            )));
        }
        if epoch > config.epochs {
            return Err(CheckpointError::Settings(format!(
                "the saved epoch {epoch} is after the last epoch of the settings, epochs={}",
                config.epochs
            )));
        }
        let state = TrainerState { model, opt, chains, epoch, updates, lr };
        Ok(Checkpoint { dataset, split_seed, config, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::run::{Method, Track, Trainer};
    use rapid_core::NegativePhase;

    fn sample(method: Method) -> Checkpoint {
        let data = Dataset::new(DatasetSpec::Bars4, 0);
        let cfg = TrainConfig {
            hidden: 6,
            epochs: 4,
            track: Track { svd: true, ..Track::default() },
            ..TrainConfig::paper(method)
        };
        let mut t = Trainer::new(&cfg, &data).unwrap();
        t.next_epoch(&data).unwrap();
        Checkpoint { dataset: DatasetSpec::Bars4, split_seed: 3, config: cfg, state: t.state() }
    }

    #[test]
    fn round_trips_for_every_method() {
        for m in [
            Method::Pid(NegativePhase::Gibbs { steps: 2 }),
            Method::Cd { k: 1 },
            Method::Pcd { k: 1, chains: 5 },
            Method::Exact,
        ] {
            let c = sample(m);
            assert_eq!(Checkpoint::decode(&c.encode()).unwrap(), c, "{m}");
        }
        let mut c = sample(Method::Pid(NegativePhase::Patterns));
        c.config.projection = rapid_core::optim::Projection::Clamp { bound: 0.3 };
        c.config.lr = 0.017_3;
        assert_eq!(Checkpoint::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn every_corruption_is_named() {
        let good = sample(Method::Pcd { k: 1, chains: 3 }).encode();
        for cut in 0..good.len() {
            let e = Checkpoint::decode(&good[..cut]).unwrap_err();
            assert!(
                matches!(e, CheckpointError::Truncated | CheckpointError::Checksum { .. }),
                "cut at {cut}: {e}"
            );
        }
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(Checkpoint::decode(&b).unwrap_err(), CheckpointError::BadMagic);
        let mut b = good.clone();
        b[8] = 9;
        assert_eq!(Checkpoint::decode(&b).unwrap_err(), CheckpointError::UnsupportedVersion(9));
        for i in [20, good.len() / 2, good.len() - 7] {
            let mut b = good.clone();
            b[i] ^= 0x04;
            assert!(
                matches!(Checkpoint::decode(&b), Err(CheckpointError::Checksum { .. })),
                "byte {i}"
            );
        }
        let mut b = good.clone();
        b.push(0);
        assert_eq!(Checkpoint::decode(&b).unwrap_err(), CheckpointError::TrailingBytes);
        // A huge announced count is a truncation, not an allocation.
        let mut b = good.clone();
        let at = 16 + u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
        b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Checkpoint::decode(&b).unwrap_err(), CheckpointError::Truncated);
    }

    #[test]
    fn settings_round_trip_exactly() {
        let c = TrainConfig {
            lr: 0.1 + 0.2,
            momentum: 0.9,
            ..TrainConfig::paper(Method::Pcd { k: 3, chains: 7 })
        };
        let text = settings_text(&DatasetSpec::Bas(5), 9, &c);
        assert_eq!(parse_settings(&text).unwrap(), (DatasetSpec::Bas(5), 9, c));
        for spec in [
            DatasetSpec::MNIST,
            DatasetSpec::Mnist { threshold: 0.5 },
            "npy:a b.npy".parse::<DatasetSpec>().unwrap(),
            "idx:x.gz,y.gz"
                .parse::<DatasetSpec>()
                .unwrap()
                .with_options(Some("npy:t.npy".parse().unwrap()), Some(0.25), Some((2, 8)))
                .unwrap(),
        ] {
            let text = settings_text(&spec, 1, &c);
            assert_eq!(parse_settings(&text).unwrap(), (spec, 1, c));
        }
        assert!(!settings_text(&DatasetSpec::MNIST, 1, &c).contains("binarize"));
        assert!(parse_settings("method=pid\n").unwrap_err().contains("missing"));
        let bad = text.replace("lr=", "lr=x");
        assert!(parse_settings(&bad).unwrap_err().contains("'lr=x"));
    }

    /// Every key the writer may write is one the reader knows.
    #[test]
    fn the_reader_knows_every_key_the_writer_writes() {
        let c = TrainConfig { arith: Arith::Int, ..TrainConfig::default() };
        let spec = "idx:x.gz"
            .parse::<DatasetSpec>()
            .unwrap()
            .with_options(Some("npy:t.npy".parse().unwrap()), Some(0.25), Some((2, 8)))
            .unwrap();
        let text = settings_text(&spec, 1, &c);
        let keys: Vec<&str> = text.lines().map(|l| l.split_once('=').unwrap().0).collect();
        assert_eq!(keys.len(), SETTINGS_KEYS.len());
        assert!(keys.iter().all(|k| SETTINGS_KEYS.contains(k)), "{keys:?}");
        assert_eq!(parse_settings(&text).unwrap(), (spec, 1, c));
    }

    /// An unknown or repeated key is an error naming it, in a checkpoint and in a model
    /// file's settings section alike.
    #[test]
    fn unknown_and_repeated_keys_are_refused() {
        let text = settings_text(&DatasetSpec::Bars4, 0, &TrainConfig::default());
        let unknown = format!("{text}hiden=24\n");
        assert!(parse_settings(&unknown).unwrap_err().contains("unknown key 'hiden'"));
        let twice = format!("{text}hidden=24\n");
        let e = parse_settings(&twice).unwrap_err();
        assert!(e.contains("'hidden' appears twice") && e.contains("hidden=24"), "{e}");
        let twice_same = format!("{text}seed=0\n");
        assert!(parse_settings(&twice_same).unwrap_err().contains("'seed' appears twice"));

        let model = sample(Method::Cd { k: 1 }).state.model;
        let e = read_model_or_checkpoint(&model.encode_with_settings(&unknown)).unwrap_err();
        assert!(e.contains("model file settings") && e.contains("'hiden'"), "{e}");
        let e = read_model_or_checkpoint(&model.encode_with_settings(&twice)).unwrap_err();
        assert!(e.contains("'hidden' appears twice"), "{e}");
        assert!(read_model_or_checkpoint(&model.encode_with_settings(&text)).is_ok());

        let good = sample(Method::Cd { k: 1 }).encode();
        // The same checkpoint with a repeated key in its settings (and a fixed checksum).
        let n = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
        let new = format!("{}seed=1\n", std::str::from_utf8(&good[16..16 + n]).unwrap());
        let mut b = good[..12].to_vec();
        b.extend_from_slice(&(new.len() as u32).to_le_bytes());
        b.extend_from_slice(new.as_bytes());
        b.extend_from_slice(&good[16 + n..good.len() - 4]);
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let e = Checkpoint::decode(&b).unwrap_err().to_string();
        assert!(e.contains("'seed' appears twice") && e.contains("seed=1"), "{e}");
    }
}
