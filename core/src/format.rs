//! The model file format, read and written over caller buffers (no `std`, no allocator).
//!
//! # Layout (version 1, all integers little-endian)
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `RAPIDMDL` |
//! | 8 | 2 | format version (`u16`), currently 1 |
//! | 10 | 2 | model kind (`u16`): 1 = RA patterns, 2 = dense `W`, 3 = dense `W` with biases |
//! | 12 | 4 | visible units `V` (`u32`) |
//! | 16 | 4 | hidden units `H` (`u32`) |
//! | 20 | 4 | patterns `K` (`u32`; 0 for dense models) |
//! | 24 | 8 | payload length in bytes (`u64`) |
//! | 32 | n | payload: `f32` values (below) |
//! | 32 + n | 4 | CRC-32 (IEEE 802.3, as zlib) of bytes `[0, 32 + n)` |
//!
//! Payload by kind: RA: `Ξ` row-major `K × (V+H)` (row `k` = `ξᵏ_v` then `ξᵏ_h`); dense: `W`
//! row-major `V × H`; dense with biases: `W`, then `a` (`V`), then `b` (`H`).
//!
//! A reader checks, in order: length ≥ 36, magic, version, kind, non-zero dimensions, the stated
//! payload length against the dimensions, the total length, the checksum, and that every
//! parameter is finite. Each failure has its own [`FormatError`].
//!
//! # The optional settings section
//!
//! A model block may be followed by one settings section, which says how the model was made
//! (the program that trains writes its settings there as UTF-8 `key=value` lines; the
//! format does not interpret them):
//!
//! | offset (from the end of the model block) | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `RAPIDSET` |
//! | 8 | 2 | section version (`u16`), currently 1 |
//! | 10 | 2 | reserved, 0 |
//! | 12 | 4 | text length `L` (`u32`, at most [`MAX_SETTINGS_LEN`]) |
//! | 16 | L | the text |
//! | 16 + L | 4 | CRC-32 of the section's bytes `[0, 16 + L)` |
//!
//! [`ModelFile::parse`] reads a bare model block (files without the section, as every file
//! written before it existed); [`ModelFile::parse_with_settings`] reads either. Nothing
//! time- or host-dependent is stored, so equal models with equal settings give equal files.

use crate::error::FormatError;
use crate::ra::model::Dims;

/// The magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"RAPIDMDL";
/// The format version this build writes and the newest it reads.
pub const VERSION: u16 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 32;
/// Checksum size in bytes.
pub const CHECKSUM_LEN: usize = 4;

/// The magic bytes of the optional settings section.
pub const SETTINGS_MAGIC: [u8; 8] = *b"RAPIDSET";
/// The settings-section version this build writes and the newest it reads.
pub const SETTINGS_VERSION: u16 = 1;
/// Size of the settings section's fixed header in bytes.
pub const SETTINGS_HEADER_LEN: usize = 16;
/// The longest settings text in bytes.
pub const MAX_SETTINGS_LEN: usize = 1 << 16;

/// Size in bytes of a settings section holding `text_len` bytes of text.
pub fn settings_encoded_len(text_len: usize) -> usize {
    SETTINGS_HEADER_LEN + text_len + CHECKSUM_LEN
}

/// Encodes a settings section holding `text` into `out`, to be placed right after a model
/// block, and returns the number of bytes written ([`settings_encoded_len`]).
///
/// # Panics
/// If `text` is longer than [`MAX_SETTINGS_LEN`] or `out` is too short.
pub fn encode_settings(text: &[u8], out: &mut [u8]) -> usize {
    assert!(text.len() <= MAX_SETTINGS_LEN, "settings text longer than MAX_SETTINGS_LEN");
    let n = settings_encoded_len(text.len());
    assert!(out.len() >= n, "output buffer shorter than settings_encoded_len");
    out[0..8].copy_from_slice(&SETTINGS_MAGIC);
    out[8..10].copy_from_slice(&SETTINGS_VERSION.to_le_bytes());
    out[10..12].copy_from_slice(&0u16.to_le_bytes());
    out[12..16].copy_from_slice(&(text.len() as u32).to_le_bytes());
    out[SETTINGS_HEADER_LEN..n - CHECKSUM_LEN].copy_from_slice(text);
    let crc = crc32(&out[..n - CHECKSUM_LEN]);
    out[n - CHECKSUM_LEN..n].copy_from_slice(&crc.to_le_bytes());
    n
}

/// Reads a settings section that fills `bytes` exactly; returns its text.
fn parse_settings_section(bytes: &[u8]) -> Result<&[u8], FormatError> {
    if bytes.len() < settings_encoded_len(0) {
        return Err(FormatError::BadSettings("shorter than its header (truncated?)"));
    }
    let version = u16_at(bytes, 8);
    if version == 0 || version > SETTINGS_VERSION {
        return Err(FormatError::BadSettings("written by a newer or unknown version"));
    }
    if u16_at(bytes, 10) != 0 {
        return Err(FormatError::BadSettings("reserved field is not 0"));
    }
    let len = u32_at(bytes, 12) as usize;
    if len > MAX_SETTINGS_LEN {
        return Err(FormatError::BadSettings("text longer than the limit"));
    }
    let n = settings_encoded_len(len);
    if bytes.len() < n {
        return Err(FormatError::BadSettings("shorter than its stated length (truncated?)"));
    }
    if bytes.len() > n {
        return Err(FormatError::BadSettings("trailing bytes after its checksum"));
    }
    if u32_at(bytes, n - CHECKSUM_LEN) != crc32(&bytes[..n - CHECKSUM_LEN]) {
        return Err(FormatError::BadSettings("checksum mismatch: corrupted"));
    }
    Ok(&bytes[SETTINGS_HEADER_LEN..n - CHECKSUM_LEN])
}

/// What a model file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// An RA model: `K` patterns of `V + H` entries.
    Ra,
    /// A dense RBM: `W` (`V × H`), and the biases `a` (`V`), `b` (`H`) when `biases`.
    Dense {
        /// Whether the biases are stored.
        biases: bool,
    },
}

impl ModelKind {
    /// The kind's code in a model file header (offset 10).
    pub fn code(self) -> u16 {
        match self {
            ModelKind::Ra => 1,
            ModelKind::Dense { biases: false } => 2,
            ModelKind::Dense { biases: true } => 3,
        }
    }

    /// The kind a header's code names, if any.
    pub fn from_code(c: u16) -> Option<Self> {
        match c {
            1 => Some(ModelKind::Ra),
            2 => Some(ModelKind::Dense { biases: false }),
            3 => Some(ModelKind::Dense { biases: true }),
            _ => None,
        }
    }

    /// Whether `dims` are valid for this kind: all sizes non-zero for RA; `V, H > 0` and
    /// `K = 0` for dense; no overflow.
    pub fn dims_valid(self, dims: Dims) -> bool {
        match self {
            ModelKind::Ra => dims.validate().is_ok(),
            ModelKind::Dense { .. } => {
                dims.patterns == 0
                    && dims.visible > 0
                    && dims.hidden > 0
                    && dims
                        .visible
                        .checked_mul(dims.hidden)
                        .and_then(|x| x.checked_add(dims.visible + dims.hidden))
                        .is_some_and(|x| x <= (isize::MAX as usize) / 8)
            }
        }
    }
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut j = 0;
        while j < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            j += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE, reflected, as zlib's `crc32`) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Number of parameters a model of this kind and size stores.
///
/// # Panics
/// Never for dims that pass [`ModelKind::dims_valid`]; may overflow otherwise.
pub fn param_count(kind: ModelKind, dims: Dims) -> usize {
    match kind {
        ModelKind::Ra => dims.xi_len(),
        ModelKind::Dense { biases: false } => dims.visible * dims.hidden,
        ModelKind::Dense { biases: true } => {
            dims.visible * dims.hidden + dims.visible + dims.hidden
        }
    }
}

/// Size in bytes of the encoded file.
pub fn encoded_len(kind: ModelKind, dims: Dims) -> usize {
    HEADER_LEN + 4 * param_count(kind, dims) + CHECKSUM_LEN
}

/// Encodes a model into `out` and returns the number of bytes written
/// ([`encoded_len`]).
///
/// # Panics
/// If `dims` are not valid for `kind`, `params.len()` is not [`param_count`], a dimension
/// exceeds `u32`, or `out` is shorter than [`encoded_len`].
pub fn encode(kind: ModelKind, dims: Dims, params: &[f32], out: &mut [u8]) -> usize {
    assert!(kind.dims_valid(dims), "dimensions are not valid for the model kind");
    assert_eq!(params.len(), param_count(kind, dims), "parameter count does not match dims");
    let n = encoded_len(kind, dims);
    assert!(out.len() >= n, "output buffer shorter than encoded_len");
    let dim = |x: usize| u32::try_from(x).expect("dimension exceeds u32");
    out[0..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&VERSION.to_le_bytes());
    out[10..12].copy_from_slice(&kind.code().to_le_bytes());
    out[12..16].copy_from_slice(&dim(dims.visible).to_le_bytes());
    out[16..20].copy_from_slice(&dim(dims.hidden).to_le_bytes());
    out[20..24].copy_from_slice(&dim(dims.patterns).to_le_bytes());
    out[24..32].copy_from_slice(&((4 * params.len()) as u64).to_le_bytes());
    for (chunk, p) in out[HEADER_LEN..n - CHECKSUM_LEN].chunks_exact_mut(4).zip(params) {
        chunk.copy_from_slice(&p.to_le_bytes());
    }
    let crc = crc32(&out[..n - CHECKSUM_LEN]);
    out[n - CHECKSUM_LEN..n].copy_from_slice(&crc.to_le_bytes());
    n
}

/// A validated view over the bytes of a model file.
#[derive(Clone, Copy, Debug)]
pub struct ModelFile<'a> {
    kind: ModelKind,
    dims: Dims,
    payload: &'a [u8],
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

impl<'a> ModelFile<'a> {
    /// Parses and validates `bytes` (see the module docs for the checks).
    ///
    /// # Errors
    /// The first check that fails, as a [`FormatError`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
            return Err(FormatError::TooShort { len: bytes.len() });
        }
        if bytes[0..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = u16_at(bytes, 8);
        if version == 0 || version > VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        let code = u16_at(bytes, 10);
        let kind = ModelKind::from_code(code).ok_or(FormatError::UnknownKind(code))?;
        let dims = Dims::new(
            u32_at(bytes, 12) as usize,
            u32_at(bytes, 16) as usize,
            u32_at(bytes, 20) as usize,
        );
        if !kind.dims_valid(dims) {
            return Err(FormatError::BadDimensions);
        }
        let stated = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
        let expected_payload =
            (param_count(kind, dims) as u64).checked_mul(4).ok_or(FormatError::BadDimensions)?;
        if stated != expected_payload {
            return Err(FormatError::PayloadSize { expected: expected_payload, stated });
        }
        let expected_len = expected_payload + (HEADER_LEN + CHECKSUM_LEN) as u64;
        if bytes.len() as u64 != expected_len {
            return Err(FormatError::Length { expected: expected_len, found: bytes.len() as u64 });
        }
        let n = bytes.len();
        let stored = u32_at(bytes, n - CHECKSUM_LEN);
        let computed = crc32(&bytes[..n - CHECKSUM_LEN]);
        if stored != computed {
            return Err(FormatError::Checksum { stored, computed });
        }
        let payload = &bytes[HEADER_LEN..n - CHECKSUM_LEN];
        if let Some(index) = payload
            .chunks_exact(4)
            .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
        {
            return Err(FormatError::NonFinite { index });
        }
        Ok(ModelFile { kind, dims, payload })
    }

    /// Parses a model block optionally followed by a settings section (see the module docs)
    /// and returns the model and the section's text, if there is one. Bytes after the model
    /// block that do not start with [`SETTINGS_MAGIC`] are reported as a wrong length, as
    /// [`ModelFile::parse`] does.
    ///
    /// # Errors
    /// The model block's first failed check, or [`FormatError::BadSettings`].
    pub fn parse_with_settings(bytes: &'a [u8]) -> Result<(Self, Option<&'a [u8]>), FormatError> {
        if bytes.len() < HEADER_LEN {
            return ModelFile::parse(bytes).map(|m| (m, None));
        }
        let stated = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
        let block = stated.checked_add((HEADER_LEN + CHECKSUM_LEN) as u64);
        let split = match block {
            Some(b) if b < bytes.len() as u64 => b as usize,
            _ => return ModelFile::parse(bytes).map(|m| (m, None)),
        };
        let (head, rest) = bytes.split_at(split);
        if rest.len() < SETTINGS_MAGIC.len() || rest[..8] != SETTINGS_MAGIC {
            // Not a settings section: the model check reports the length.
            return ModelFile::parse(bytes).map(|m| (m, None));
        }
        let model = ModelFile::parse(head)?;
        Ok((model, Some(parse_settings_section(rest)?)))
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// The sizes.
    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.payload.len() / 4
    }

    /// Copies the parameters into `out`.
    ///
    /// # Panics
    /// If `out.len()` is not [`ModelFile::param_count`].
    pub fn read_params(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.param_count(), "output length must equal param_count");
        for (o, c) in out.iter_mut().zip(self.payload.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;

    #[test]
    fn dense_kinds_round_trip_and_check_their_dimensions() {
        for biases in [false, true] {
            let kind = ModelKind::Dense { biases };
            let dims = Dims::new(2, 3, 0);
            let n = param_count(kind, dims);
            assert_eq!(n, if biases { 11 } else { 6 });
            let params: std::vec::Vec<f32> = (0..n).map(|i| i as f32 - 2.5).collect();
            let mut buf = vec![0u8; encoded_len(kind, dims)];
            encode(kind, dims, &params, &mut buf);
            let f = ModelFile::parse(&buf).unwrap();
            assert_eq!((f.kind(), f.dims()), (kind, dims));
            let mut back = vec![0.0f32; n];
            f.read_params(&mut back);
            assert_eq!(back, params);
            // A dense file claiming patterns is refused.
            let mut bad = buf.clone();
            bad[20] = 1;
            assert_eq!(ModelFile::parse(&bad).unwrap_err(), FormatError::BadDimensions);
        }
        assert!(!ModelKind::Ra.dims_valid(Dims::new(2, 3, 0)));
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_and_every_corruption_is_named() {
        let dims = Dims::new(3, 2, 2);
        let params = [1.0f32, -1.0, 0.5, 0.25, -0.75, 1.0, 1.0, -1.0, 0.0, 2.0];
        let mut buf = vec![0u8; encoded_len(ModelKind::Ra, dims)];
        assert_eq!(encode(ModelKind::Ra, dims, &params, &mut buf), buf.len());
        let f = ModelFile::parse(&buf).unwrap();
        assert_eq!((f.kind(), f.dims()), (ModelKind::Ra, dims));
        let mut back = [0.0f32; 10];
        f.read_params(&mut back);
        assert_eq!(back, params);

        // Every cut length fails cleanly.
        for cut in 0..buf.len() {
            assert!(ModelFile::parse(&buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[0] = b'X';
        assert_eq!(ModelFile::parse(&bad).unwrap_err(), FormatError::BadMagic);
        let mut bad = buf.clone();
        bad[8] = 2;
        assert_eq!(ModelFile::parse(&bad).unwrap_err(), FormatError::UnsupportedVersion(2));
        let mut bad = buf.clone();
        bad[10] = 9;
        assert_eq!(ModelFile::parse(&bad).unwrap_err(), FormatError::UnknownKind(9));
        let mut bad = buf.clone();
        bad[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(ModelFile::parse(&bad).unwrap_err(), FormatError::BadDimensions);
        let mut bad = buf.clone();
        bad[16] = 3;
        assert!(matches!(ModelFile::parse(&bad), Err(FormatError::PayloadSize { .. })));
        let mut bad = buf.clone();
        bad[HEADER_LEN + 5] ^= 0x10;
        assert!(matches!(ModelFile::parse(&bad), Err(FormatError::Checksum { .. })));
        let mut long = buf.clone();
        long.push(0);
        assert!(matches!(ModelFile::parse(&long), Err(FormatError::Length { .. })));
        // A NaN with a valid checksum is still refused.
        let mut nan = params;
        nan[4] = f32::NAN;
        encode(ModelKind::Ra, dims, &nan, &mut buf);
        assert_eq!(ModelFile::parse(&buf).unwrap_err(), FormatError::NonFinite { index: 4 });
    }

    #[test]
    fn settings_section_round_trips_and_every_corruption_is_named() {
        let dims = Dims::new(3, 2, 2);
        let params = [1.0f32, -1.0, 0.5, 0.25, -0.75, 1.0, 1.0, -1.0, 0.0, 2.0];
        let text = b"method=pid\nhidden=2\n";
        let m = encoded_len(ModelKind::Ra, dims);
        let mut buf = vec![0u8; m + settings_encoded_len(text.len())];
        encode(ModelKind::Ra, dims, &params, &mut buf);
        assert_eq!(encode_settings(text, &mut buf[m..]), buf.len() - m);
        let (f, got) = ModelFile::parse_with_settings(&buf).unwrap();
        assert_eq!((f.dims(), got), (dims, Some(&text[..])));
        // A bare model block: no settings; the strict parser refuses the section.
        assert!(ModelFile::parse_with_settings(&buf[..m]).unwrap().1.is_none());
        assert!(matches!(ModelFile::parse(&buf), Err(FormatError::Length { .. })));
        // Every cut fails cleanly, inside the block or inside the section.
        for cut in 0..buf.len() {
            if cut != m {
                assert!(ModelFile::parse_with_settings(&buf[..cut]).is_err(), "cut at {cut}");
            }
        }
        let flip = |i: usize| {
            let mut b = buf.clone();
            b[i] ^= 0x01;
            ModelFile::parse_with_settings(&b).unwrap_err()
        };
        // The magic: just trailing bytes.
        assert!(matches!(flip(m), FormatError::Length { .. }));
        assert_eq!(flip(m + 8), FormatError::BadSettings("written by a newer or unknown version"));
        assert_eq!(flip(m + 10), FormatError::BadSettings("reserved field is not 0"));
        assert!(matches!(flip(m + 12), FormatError::BadSettings(_)));
        assert_eq!(flip(m + 17), FormatError::BadSettings("checksum mismatch: corrupted"));
        assert!(matches!(flip(HEADER_LEN + 1), FormatError::Checksum { .. }));
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(
            ModelFile::parse_with_settings(&long).unwrap_err(),
            FormatError::BadSettings("trailing bytes after its checksum")
        );
    }
}
