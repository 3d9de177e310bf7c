//! Error types: small `Copy` enums with `Display` and [`core::error::Error`].
//!
//! Bad data or configuration gives one of these; caller bugs (buffers of the wrong length)
//! panic instead, as documented under `# Panics` on each function.

use core::fmt;

/// A bit-packed spin buffer that breaks the layout invariant (see [`crate::spins`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpinError {
    /// The buffer does not hold `ceil(len / 64)` words.
    WordCount {
        /// Words needed for the length.
        expected: usize,
        /// Words given.
        found: usize,
    },
    /// A padding bit past the last spin is set.
    Padding,
}

impl fmt::Display for SpinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpinError::WordCount { expected, found } => {
                write!(f, "spin buffer holds {found} words, the length needs {expected}")
            }
            SpinError::Padding => f.write_str("a padding bit past the last spin is set"),
        }
    }
}

impl core::error::Error for SpinError {}

/// A configuration or size that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The visible layer has no unit.
    NoVisible,
    /// The hidden layer has no unit.
    NoHidden,
    /// The model has no pattern (`K = 0`).
    NoPatterns,
    /// The sizes overflow the address space (`K·(V+H)` or `V·H`).
    TooLarge,
    /// The learning rate is not a finite positive number.
    LearningRate(f32),
    /// The momentum is not in `[0, 1)`.
    Momentum(f32),
    /// The weight decay is negative or not finite.
    WeightDecay(f32),
    /// The clamp bound is not a finite positive number.
    ClampBound(f32),
    /// `pid-gibbs` needs at least one Gibbs step.
    GibbsSteps,
    /// The learning-rate decay factor is not in `(0, 1]`.
    LrDecay(f32),
    /// The learning-rate floor is negative or not finite.
    LrMin(f32),
    /// A `pid` method on a dense model (PID trains the patterns of an RA model).
    PidNeedsRa,
    /// `exact` on an RA model (the exact model average is computed for dense models).
    ExactNeedsDense,
    /// A projection on a dense model (projections act on RA patterns).
    ProjectionOnDense,
    /// The batch size is 0.
    Batch,
    /// The block size is 0.
    BlockRows,
    /// PCD with no persistent chain.
    NoChains,
    /// Integer PID trains ±1 patterns: it needs the `sign` projection at each epoch end.
    IntegerNeedsSign,
    /// Integer PID runs plain SGD (no momentum, no weight decay, no Adam).
    IntegerSgdOnly,
    /// Integer PID runs `pid` and `pid-gibbs:k` (not `pid-hebb`, CD, PCD or exact).
    IntegerMethod,
    /// The sizes or the batch exceed the integer ranges of integer PID (see [`crate::int`]).
    IntegerRange,
    /// The learning rate, its floor or its decay has no fixed-point form in integer PID
    /// (a learning rate of `2³²` or more, or one that rounds to 0).
    IntegerLearningRate,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoVisible => f.write_str("the visible layer must have at least one unit"),
            ConfigError::NoHidden => f.write_str("the hidden layer must have at least one unit"),
            ConfigError::NoPatterns => f.write_str("the number of patterns K must be at least 1"),
            ConfigError::TooLarge => f.write_str("the model sizes overflow the address space"),
            ConfigError::LearningRate(x) => {
                write!(f, "the learning rate must be finite and positive, got {x}")
            }
            ConfigError::Momentum(x) => write!(f, "the momentum must be in [0, 1), got {x}"),
            ConfigError::WeightDecay(x) => {
                write!(f, "the weight decay must be finite and non-negative, got {x}")
            }
            ConfigError::ClampBound(x) => {
                write!(f, "the clamp bound must be finite and positive, got {x}")
            }
            ConfigError::GibbsSteps => f.write_str("pid-gibbs needs at least one Gibbs step"),
            ConfigError::LrDecay(x) => {
                write!(f, "the learning-rate decay must be in (0, 1], got {x}")
            }
            ConfigError::LrMin(x) => {
                write!(f, "the learning-rate floor must be finite and non-negative, got {x}")
            }
            ConfigError::PidNeedsRa => f.write_str("pid methods train RA models, not dense ones"),
            ConfigError::ExactNeedsDense => {
                f.write_str("exact training needs a dense model (the model average is of W)")
            }
            ConfigError::ProjectionOnDense => {
                f.write_str("projections act on RA patterns: a dense model takes none")
            }
            ConfigError::Batch => f.write_str("the batch size must be at least 1"),
            ConfigError::BlockRows => f.write_str("the block size must be at least 1 row"),
            ConfigError::NoChains => f.write_str("PCD needs at least one persistent chain"),
            ConfigError::IntegerNeedsSign => f.write_str(
                "integer arithmetic trains ±1 patterns: it needs the sign projection at each epoch end",
            ),
            ConfigError::IntegerSgdOnly => f.write_str(
                "integer arithmetic runs plain SGD (no momentum, no weight decay, no Adam)",
            ),
            ConfigError::IntegerMethod => {
                f.write_str("integer arithmetic runs pid and pid-gibbs:k only")
            }
            ConfigError::IntegerRange => f.write_str(
                "the sizes or the batch exceed the integer ranges (K·b·max(V, H) must be below 2^32)",
            ),
            ConfigError::IntegerLearningRate => f.write_str(
                "the learning rate, its floor or its decay has no fixed-point form (0 < lr < 2^32 after rounding)",
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

/// A model file that cannot be read (see [`crate::format`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes than the fixed header and checksum.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The first eight bytes are not the magic `RAPIDMDL`.
    BadMagic,
    /// The file was written by a newer (or unknown) format version.
    UnsupportedVersion(u16),
    /// The model kind code is not one this version knows.
    UnknownKind(u16),
    /// The dimensions are zero, or the payload size they imply overflows.
    BadDimensions,
    /// The payload length stored in the header disagrees with the dimensions.
    PayloadSize {
        /// Bytes the dimensions imply.
        expected: u64,
        /// Bytes the header states.
        stated: u64,
    },
    /// The file is shorter or longer than the header says (cut short, or trailing bytes).
    Length {
        /// Bytes the header implies.
        expected: u64,
        /// Bytes given.
        found: u64,
    },
    /// The CRC-32 over the file does not match: the file is corrupted.
    Checksum {
        /// Checksum stored in the file.
        stored: u32,
        /// Checksum computed over the bytes.
        computed: u32,
    },
    /// A parameter is NaN or infinite.
    NonFinite {
        /// Index of the first bad value in the payload.
        index: usize,
    },
    /// The settings section after the model is malformed (the reason says how).
    BadSettings(&'static str),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::TooShort { len } => {
                write!(f, "model file too short: {len} bytes is less than the header")
            }
            FormatError::BadMagic => f.write_str("not a rapid model file (bad magic bytes)"),
            FormatError::UnsupportedVersion(v) => {
                write!(f, "model file format version {v} is not supported by this build")
            }
            FormatError::UnknownKind(k) => write!(f, "unknown model kind code {k}"),
            FormatError::BadDimensions => {
                f.write_str("model file has zero or overflowing dimensions")
            }
            FormatError::PayloadSize { expected, stated } => write!(
                f,
                "model file header states a {stated}-byte payload, the dimensions need {expected}"
            ),
            FormatError::Length { expected, found } => {
                write!(f, "model file is {found} bytes, the header implies {expected} (truncated?)")
            }
            FormatError::Checksum { stored, computed } => write!(
                f,
                "model file checksum mismatch (stored {stored:08x}, computed {computed:08x}): corrupted"
            ),
            FormatError::NonFinite { index } => {
                write!(f, "model file parameter {index} is NaN or infinite")
            }
            FormatError::BadSettings(why) => write!(f, "model file settings section: {why}"),
        }
    }
}

impl core::error::Error for FormatError {}
