//! NumPy `.npy` files: writing little-endian `f32` arrays in C order ([`encode_f32`], format
//! version 1.0), and reading numeric arrays of any of the common dtypes into `f32` ([`decode`],
//! [`read`]).
//!
//! Layout: the magic `\x93NUMPY`, two version bytes (`1 0`, `2 0` or `3 0`), the header length
//! (a little-endian `u16` in version 1.0, `u32` in 2.0 and 3.0), then the header: an ASCII
//! Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (…), }` padded with
//! spaces and a final newline so that the data starts at a multiple of 64 bytes, then the data.
//!
//! The reader accepts the dtypes NumPy writes for plain numbers (`descr` as in the table, with
//! the byte order `<` little-endian, `>` big-endian, `=` native, or `|` for one-byte types):
//!
//! | `descr` | element | to `f32` |
//! | --- | --- | --- |
//! | `\|b1` | bool | 0 or 1 (any other byte is refused) |
//! | `\|i1`, `\|u1` | 8-bit integers | exact |
//! | `<i2`, `<u2` | 16-bit integers | exact |
//! | `<i4`, `<u4`, `<i8`, `<u8` | 32- and 64-bit integers | exact up to ±2²⁴, else rounded |
//! | `<f2` | IEEE half | exact (converted by hand) |
//! | `<f4` | `f32` | exact |
//! | `<f8` | `f64` | rounded, ±infinity beyond the `f32` range |
//!
//! Object arrays (`|O`, pickled Python objects), structured dtypes (a list of fields),
//! strings, complex numbers and dates are refused. `fortran_order: True` arrays are reordered
//! into C order, so [`NpyArray::data`] is always C order (last index fastest).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Encodes `data` with the given shape as an `.npy` file.
///
/// # Panics
/// If the product of `shape` is not `data.len()`.
pub fn encode_f32(data: &[f32], shape: &[usize]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), data.len(), "shape does not match the data");
    let mut out = header_f32(shape);
    out.reserve_exact(4 * data.len());
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The bytes of an `.npy` file of `f32` with the given shape that come before the data
/// (magic, version 1.0, header padded to 64 bytes): the data follow as little-endian `f32`
/// in C order, so a large array can be written in pieces after it.
pub fn header_f32(shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The most dimensions a shape may have (NumPy 2's limit; NumPy 1 allows 32).
pub const MAX_RANK: usize = 64;

/// A decoded `.npy` array: its shape and its elements as `f32`, in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape, outermost first; empty for a 0-d (scalar) array.
    pub shape: Vec<usize>,
    /// The elements in C order (last index fastest), whatever the order in the file;
    /// `data.len()` is the product of `shape` (1 for a 0-d array).
    pub data: Vec<f32>,
}

/// Why a `.npy` file could not be decoded.
#[derive(Debug)]
pub enum NpyError {
    /// The input ends inside the preamble (magic, version, header length) or the header.
    TooShort {
        /// Bytes available.
        len: usize,
        /// Bytes the preamble and header need.
        needed: usize,
    },
    /// The first six bytes are not `\x93NUMPY`.
    BadMagic {
        /// The first (up to six) bytes found.
        found: Vec<u8>,
    },
    /// A format version other than 1.0, 2.0 and 3.0.
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header is not a dict literal of the expected form.
    Header {
        /// What is wrong, and where (byte offset in the header).
        reason: String,
        /// The header text (lossily decoded).
        header: String,
    },
    /// The header dict lacks one of `descr`, `fortran_order` and `shape`.
    MissingKey(&'static str),
    /// `descr` is an object dtype (`|O`): pickled Python objects, not numbers.
    ObjectDtype(String),
    /// `descr` is a list of fields (a structured dtype).
    StructuredDtype,
    /// `descr` is a string this reader does not convert (complex, strings, dates, `|f4`…).
    UnsupportedDtype(String),
    /// The product of the shape, or its size in bytes, overflows `usize`.
    ShapeOverflow {
        /// The shape of the header.
        shape: Vec<usize>,
    },
    /// The data is not exactly as long as the shape and dtype require.
    BodySize {
        /// The `descr` of the header.
        descr: String,
        /// The shape of the header.
        shape: Vec<usize>,
        /// Data bytes required.
        expected: usize,
        /// Data bytes present.
        found: usize,
    },
    /// A `|b1` element is neither 0 nor 1.
    BadBool {
        /// Index of the element, in file order.
        index: usize,
        /// Its byte.
        byte: u8,
    },
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The error of the operating system.
        source: io::Error,
    },
    /// The file was read but its content is invalid.
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        error: Box<NpyError>,
    },
}

/// A shape as Python writes the tuple: `()`, `(5,)`, `(3, 4)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpyError::TooShort { len, needed } => write!(
                f,
                ".npy preamble or header cut short: the input has {len} bytes, it needs {needed}"
            ),
            NpyError::BadMagic { found } => {
                let hex: Vec<String> = found.iter().map(|b| format!("{b:02x}")).collect();
                write!(
                    f,
                    "not a .npy file: first bytes {}, expected 93 4e 55 4d 50 59 (\\x93NUMPY)",
                    hex.join(" ")
                )
            }
            NpyError::UnsupportedVersion { major, minor } => write!(
                f,
                ".npy format version {major}.{minor} is not supported (expected 1.0, 2.0 or 3.0)"
            ),
            NpyError::Header { reason, header } => {
                const SHOWN: usize = 120;
                let mut shown: String = header.chars().take(SHOWN).collect();
                if header.chars().count() > SHOWN {
                    shown.push('…');
                }
                write!(f, "bad .npy header: {reason}, in {shown:?}")
            }
            NpyError::MissingKey(key) => write!(f, ".npy header has no '{key}' key"),
            NpyError::ObjectDtype(descr) => write!(
                f,
                ".npy descr '{descr}' is an object array (pickled Python objects), not numbers"
            ),
            NpyError::StructuredDtype => f.write_str(
                ".npy descr is a list of fields (a structured dtype); only plain numbers are read",
            ),
            NpyError::UnsupportedDtype(descr) => write!(
                f,
                "unsupported .npy descr '{descr}' (expected a byte order <, > or = then b1, i1, \
                 u1, i2, u2, i4, u4, i8, u8, f2, f4 or f8; | only with one-byte types)"
            ),
            NpyError::ShapeOverflow { shape } => {
                write!(f, ".npy shape {} overflows the address space", shape_text(shape))
            }
            NpyError::BodySize { descr, shape, expected, found } => {
                write!(
                    f,
                    "shape {} of '{descr}' needs {expected} bytes of data but the file has {found}",
                    shape_text(shape)
                )?;
                if found < expected {
                    write!(f, " (truncated: {} bytes missing)", expected - found)
                } else {
                    write!(f, " (too long: {} extra bytes)", found - expected)
                }
            }
            NpyError::BadBool { index, byte } => {
                write!(f, ".npy bool element {index} is 0x{byte:02x}, not 0 or 1")
            }
            NpyError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            NpyError::InFile { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for NpyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NpyError::Io { source, .. } => Some(source),
            NpyError::InFile { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// What an element is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
}

/// A numeric dtype: kind, bytes per element, byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dtype {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

/// Parses a `descr` string such as `<f4`, `>i2` or `|b1`.
fn parse_descr(descr: &str) -> Result<Dtype, NpyError> {
    let unsupported = || NpyError::UnsupportedDtype(descr.to_owned());
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(unsupported)?;
    let rest = chars.as_str();
    if rest.starts_with('O') || (!"<>=|".contains(order) && descr.starts_with('O')) {
        return Err(NpyError::ObjectDtype(descr.to_owned()));
    }
    let (kind, size) = match rest {
        "b1" => (Kind::Bool, 1),
        "i1" => (Kind::Int, 1),
        "u1" => (Kind::Uint, 1),
        "i2" => (Kind::Int, 2),
        "u2" => (Kind::Uint, 2),
        "i4" => (Kind::Int, 4),
        "u4" => (Kind::Uint, 4),
        "i8" => (Kind::Int, 8),
        "u8" => (Kind::Uint, 8),
        "f2" => (Kind::Float, 2),
        "f4" => (Kind::Float, 4),
        "f8" => (Kind::Float, 8),
        _ => return Err(unsupported()),
    };
    let big_endian = match order {
        '<' => false,
        '>' => true,
        '=' => cfg!(target_endian = "big"),
        '|' if size == 1 => false,
        _ => return Err(unsupported()),
    };
    Ok(Dtype { kind, size, big_endian })
}

/// IEEE half-precision bits to `f32` (exact: every half is an `f32`).
fn f16_to_f32(h: u16) -> f32 {
    let negative = h & 0x8000 != 0;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let magnitude = match exponent {
        // Zero and subnormals: mantissa · 2⁻²⁴.
        0 => mantissa as f32 * f32::from_bits(0x3380_0000),
        // Infinities and NaNs (the payload, quiet bit included, moves up 13 bits).
        0x1f => f32::from_bits(0x7f80_0000 | mantissa << 13),
        // Normal numbers: rebias the exponent from 15 to 127.
        _ => f32::from_bits((exponent + 112) << 23 | mantissa << 13),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// Converts each `N`-byte element of `body` (already checked to be a multiple of `N` long),
/// handing `to_f32` its bytes in big-endian order.
fn convert<const N: usize>(
    body: &[u8],
    big_endian: bool,
    to_f32: impl Fn([u8; N]) -> f32,
) -> Vec<f32> {
    body.chunks_exact(N)
        .map(|chunk| {
            let mut bytes: [u8; N] = chunk.try_into().expect("N bytes");
            if !big_endian {
                bytes.reverse();
            }
            to_f32(bytes)
        })
        .collect()
}

/// Converts the data, in file order.
fn elements(body: &[u8], dtype: Dtype) -> Result<Vec<f32>, NpyError> {
    let big = dtype.big_endian;
    Ok(match (dtype.kind, dtype.size) {
        (Kind::Bool, _) => {
            if let Some(index) = body.iter().position(|&b| b > 1) {
                return Err(NpyError::BadBool { index, byte: body[index] });
            }
            body.iter().map(|&b| f32::from(b)).collect()
        }
        (Kind::Int, 1) => body.iter().map(|&b| f32::from(b as i8)).collect(),
        (Kind::Uint, 1) => body.iter().map(|&b| f32::from(b)).collect(),
        (Kind::Int, 2) => convert(body, big, |b| f32::from(i16::from_be_bytes(b))),
        (Kind::Uint, 2) => convert(body, big, |b| f32::from(u16::from_be_bytes(b))),
        (Kind::Int, 4) => convert(body, big, |b| i32::from_be_bytes(b) as f32),
        (Kind::Uint, 4) => convert(body, big, |b| u32::from_be_bytes(b) as f32),
        (Kind::Int, 8) => convert(body, big, |b| i64::from_be_bytes(b) as f32),
        (Kind::Uint, 8) => convert(body, big, |b| u64::from_be_bytes(b) as f32),
        (Kind::Float, 2) => convert(body, big, |b| f16_to_f32(u16::from_be_bytes(b))),
        (Kind::Float, 4) => convert(body, big, f32::from_be_bytes),
        (Kind::Float, 8) => convert(body, big, |b| f64::from_be_bytes(b) as f32),
        _ => unreachable!("parse_descr returns no other dtype"),
    })
}

/// Reorders `data`, stored in Fortran order (first index fastest), into C order. For 2-D this
/// is a transpose; every rank is handled by walking the C order with an odometer and tracking
/// the element's Fortran offset.
fn fortran_to_c(data: Vec<f32>, shape: &[usize]) -> Vec<f32> {
    if shape.len() < 2 || data.is_empty() {
        return data;
    }
    // Fortran strides; no overflow, their products are at most `data.len()`.
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0;
    let mut out = Vec::with_capacity(data.len());
    for _ in 0..data.len() {
        out.push(data[offset]);
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            offset += strides[k];
            if index[k] < shape[k] {
                break;
            }
            offset -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
    out
}

/// A value of the header dict.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// A parser for the header: a Python dict literal with string keys and string, bool or tuple
/// of integer values. It never recurses, so nested input cannot exhaust the stack.
struct HeaderParser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl HeaderParser<'_> {
    fn error(&self, reason: impl fmt::Display) -> NpyError {
        NpyError::Header {
            reason: format!("{reason} at byte {}", self.pos),
            header: String::from_utf8_lossy(self.text).into_owned(),
        }
    }

    fn skip_space(&mut self) {
        while matches!(self.text.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Skips spaces, then consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.text.get(self.pos) == Some(&byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.pos).copied()
    }

    /// A quoted string without escapes, either quote.
    fn string(&mut self, what: &str) -> Result<String, NpyError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.error(format_args!("expected {what} (a quoted string)"))),
        };
        let start = self.pos + 1;
        let len = self.text[start..]
            .iter()
            .position(|&b| b == quote || b == b'\\' || b == b'\n')
            .filter(|&n| self.text[start + n] == quote)
            .ok_or_else(|| self.error("unterminated string, or one with an escape or a newline"))?;
        self.pos = start + len + 1;
        Ok(String::from_utf8_lossy(&self.text[start..start + len]).into_owned())
    }

    fn boolean(&mut self) -> Result<bool, NpyError> {
        self.skip_space();
        let rest = &self.text[self.pos..];
        let word_len = rest.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
        let value = match &rest[..word_len] {
            b"True" => true,
            b"False" => false,
            _ => return Err(self.error("expected True or False")),
        };
        self.pos += word_len;
        Ok(value)
    }

    /// A non-negative integer (a trailing `L`, as Python 2 wrote long integers, is allowed).
    fn dimension(&mut self) -> Result<usize, NpyError> {
        self.skip_space();
        if self.text.get(self.pos) == Some(&b'-') {
            return Err(self.error("negative dimension"));
        }
        let digits = self.text[self.pos..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(self.error("expected a dimension (a non-negative integer)"));
        }
        let mut value = 0usize;
        for &d in &self.text[self.pos..self.pos + digits] {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(d - b'0')))
                .ok_or_else(|| self.error("dimension too large"))?;
        }
        self.pos += digits;
        if self.text.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        Ok(value)
    }

    /// A tuple of dimensions: `()`, `(5,)`, `(3, 4)`, `(3, 4,)`.
    fn shape(&mut self) -> Result<Vec<usize>, NpyError> {
        if !self.eat(b'(') {
            return Err(self.error("expected the shape as a tuple such as (3, 4)"));
        }
        let mut dims = Vec::new();
        if self.eat(b')') {
            return Ok(dims);
        }
        loop {
            if dims.len() == MAX_RANK {
                return Err(self.error(format_args!("more than {MAX_RANK} dimensions")));
            }
            dims.push(self.dimension()?);
            if self.eat(b',') {
                if self.eat(b')') {
                    return Ok(dims);
                }
            } else if self.eat(b')') {
                if dims.len() == 1 {
                    return Err(self.error("a one-element shape needs a trailing comma, as (5,)"));
                }
                return Ok(dims);
            } else {
                return Err(self.error("expected ',' or ')' in the shape"));
            }
        }
    }

    /// The whole header: the dict, then only spaces and newlines.
    fn dict(&mut self) -> Result<(String, bool, Vec<usize>), NpyError> {
        if !self.eat(b'{') {
            return Err(self.error("expected '{'"));
        }
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        while !self.eat(b'}') {
            let key_pos = self.pos;
            let key = self.string("a key")?;
            if !self.eat(b':') {
                return Err(self.error("expected ':'"));
            }
            let value = match key.as_str() {
                "descr" => match self.peek() {
                    Some(b'[' | b'{') => return Err(NpyError::StructuredDtype),
                    _ => Value::Str(self.string("the descr")?),
                },
                "fortran_order" => Value::Bool(self.boolean()?),
                "shape" => Value::Tuple(self.shape()?),
                _ => {
                    self.pos = key_pos;
                    return Err(self.error(format_args!(
                        "unexpected key '{key}' (the keys are 'descr', 'fortran_order' and \
                         'shape')"
                    )));
                }
            };
            let duplicate = match value {
                Value::Str(v) => descr.replace(v).is_some(),
                Value::Bool(v) => fortran.replace(v).is_some(),
                Value::Tuple(v) => shape.replace(v).is_some(),
            };
            if duplicate {
                self.pos = key_pos;
                return Err(self.error(format_args!("key '{key}' appears twice")));
            }
            if !self.eat(b',') && self.peek() != Some(b'}') {
                return Err(self.error("expected ',' or '}'"));
            }
        }
        self.skip_space();
        if self.pos != self.text.len() {
            return Err(self.error("unexpected text after the dict"));
        }
        Ok((
            descr.ok_or(NpyError::MissingKey("descr"))?,
            fortran.ok_or(NpyError::MissingKey("fortran_order"))?,
            shape.ok_or(NpyError::MissingKey("shape"))?,
        ))
    }
}

/// Decodes a `.npy` file held in memory: any numeric dtype of the module's table, converted to
/// `f32` and returned in C order.
pub fn decode(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < 10 {
        let n = bytes.len().min(MAGIC.len());
        if bytes[..n] != MAGIC[..n] {
            return Err(NpyError::BadMagic { found: bytes[..n].to_vec() });
        }
        return Err(NpyError::TooShort { len: bytes.len(), needed: 10 });
    }
    if bytes[..6] != MAGIC[..] {
        return Err(NpyError::BadMagic { found: bytes[..6].to_vec() });
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_start, header_len) = match (major, minor) {
        (1, 0) => (10, usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))),
        (2 | 3, 0) => {
            let Some(len) = bytes.get(8..12) else {
                return Err(NpyError::TooShort { len: bytes.len(), needed: 12 });
            };
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes"));
            (12, usize::try_from(len).unwrap_or(usize::MAX))
        }
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    if header_len > bytes.len() - header_start {
        let needed = header_start.saturating_add(header_len);
        return Err(NpyError::TooShort { len: bytes.len(), needed });
    }
    let data_start = header_start + header_len;
    let mut parser = HeaderParser { text: &bytes[header_start..data_start], pos: 0 };
    let (descr, fortran_order, shape) = parser.dict()?;
    let dtype = parse_descr(&descr)?;
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let Some(expected) = count.and_then(|n| n.checked_mul(dtype.size)) else {
        return Err(NpyError::ShapeOverflow { shape });
    };
    let body = &bytes[data_start..];
    if body.len() != expected {
        return Err(NpyError::BodySize { descr, shape, expected, found: body.len() });
    }
    let data = elements(body, dtype)?;
    let data = if fortran_order { fortran_to_c(data, &shape) } else { data };
    Ok(NpyArray { shape, data })
}

/// Reads and decodes the `.npy` file at `path`; errors name the file.
pub fn read(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes =
        std::fs::read(path).map_err(|source| NpyError::Io { path: path.to_owned(), source })?;
    decode(&bytes).map_err(|e| NpyError::InFile { path: path.to_owned(), error: Box::new(e) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file of this format version with this header dict, padded as NumPy pads it.
    fn npy(version: u8, dict: &str, body: &[u8]) -> Vec<u8> {
        let prefix = if version == 1 { 10 } else { 12 };
        let mut header = dict.to_owned();
        header.push_str(&" ".repeat((64 - (prefix + dict.len() + 1) % 64) % 64));
        header.push('\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header.as_bytes());
        out.extend(body);
        out
    }

    /// The dict NumPy writes.
    fn dict(descr: &str, fortran: bool, shape: &str) -> String {
        let fortran = if fortran { "True" } else { "False" };
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}")
    }

    /// `v` (representable in the type) as one element of `descr`.
    fn element(descr: &str, v: f64) -> Vec<u8> {
        let mut bytes = match &descr[1..] {
            "b1" | "u1" => vec![v as u8],
            "i1" => (v as i8).to_le_bytes().to_vec(),
            "i2" => (v as i16).to_le_bytes().to_vec(),
            "u2" => (v as u16).to_le_bytes().to_vec(),
            "i4" => (v as i32).to_le_bytes().to_vec(),
            "u4" => (v as u32).to_le_bytes().to_vec(),
            "i8" => (v as i64).to_le_bytes().to_vec(),
            "u8" => (v as u64).to_le_bytes().to_vec(),
            "f4" => (v as f32).to_le_bytes().to_vec(),
            "f8" => v.to_le_bytes().to_vec(),
            other => panic!("no test encoder for {other}"),
        };
        if descr.starts_with('>') || (descr.starts_with('=') && cfg!(target_endian = "big")) {
            bytes.reverse();
        }
        bytes
    }

    #[test]
    fn round_trip_with_encode_f32() {
        let values = [1.5, -0.0, f32::NAN, f32::INFINITY, -3.0e-41, 7.0];
        for shape in [&[6][..], &[2, 3], &[3, 1, 2], &[1, 1, 1, 6]] {
            let a = decode(&encode_f32(&values, shape)).unwrap();
            assert_eq!(a.shape, shape);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a.data), bits(&values));
        }
        let scalar = decode(&encode_f32(&[4.0], &[])).unwrap();
        assert_eq!((scalar.shape, scalar.data), (vec![], vec![4.0]));
        let empty = decode(&encode_f32(&[], &[0, 3])).unwrap();
        assert_eq!((empty.shape, empty.data), (vec![0, 3], vec![]));
    }

    #[test]
    fn every_dtype_in_every_byte_order() {
        let two_63 = 9223372036854775808.0;
        let cases: [(&str, [f64; 4]); 11] = [
            ("b1", [0.0, 1.0, 1.0, 0.0]),
            ("i1", [-128.0, -1.0, 0.0, 127.0]),
            ("u1", [0.0, 1.0, 200.0, 255.0]),
            ("i2", [-32768.0, -300.0, 7.0, 32767.0]),
            ("u2", [0.0, 300.0, 40000.0, 65535.0]),
            ("i4", [-2147483648.0, -70000.0, 16777217.0, 2147483647.0]),
            ("u4", [0.0, 70000.0, 3000000000.0, 4294967295.0]),
            ("i8", [-two_63, -1099511627776.0, 5.0, 4611686018427388928.0]),
            ("u8", [0.0, 1099511627777.0, two_63 + 2048.0, 18446744073709549568.0]),
            ("f4", [-1.5, 0.1f32 as f64, 1.0e-40, f32::MAX as f64]),
            ("f8", [0.1, -1.0e300, 1.0e-50, 3.25]),
        ];
        for (code, values) in cases {
            let orders: &[char] =
                if code.ends_with('1') { &['|', '<', '>', '='] } else { &['<', '>', '='] };
            for &order in orders {
                let descr = format!("{order}{code}");
                let body: Vec<u8> = values.iter().flat_map(|&v| element(&descr, v)).collect();
                let a = decode(&npy(1, &dict(&descr, false, "(2, 2)"), &body)).unwrap();
                assert_eq!(a.shape, [2, 2], "{descr}");
                let want: Vec<f32> = values.iter().map(|&v| v as f32).collect();
                assert_eq!(a.data, want, "{descr}");
            }
        }
        let a = decode(&npy(1, &dict("<i4", false, "(1,)"), &element("<i4", 16777217.0))).unwrap();
        assert_eq!(a.data, [16777216.0]);
        let a = decode(&npy(1, &dict("<f8", false, "(1,)"), &element("<f8", -1.0e300))).unwrap();
        assert_eq!(a.data, [f32::NEG_INFINITY]);
    }

    #[test]
    fn half_floats_convert_exactly() {
        // Dyadic values written as fractions, so each literal is exact.
        let cases: [(u16, f32); 12] = [
            (0x0000, 0.0),
            (0x8000, -0.0),
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 1365.0 / 4096.0),
            (0x7bff, 65504.0),
            (0x0400, 1.0 / 16384.0),       // smallest normal, 2⁻¹⁴
            (0x0001, 1.0 / 16777216.0),    // smallest subnormal, 2⁻²⁴
            (0x03ff, 1023.0 / 16777216.0), // largest subnormal
            (0x83ff, -1023.0 / 16777216.0),
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ];
        for big in [false, true] {
            let body: Vec<u8> = cases
                .iter()
                .flat_map(|&(h, _)| if big { h.to_be_bytes() } else { h.to_le_bytes() })
                .collect();
            let descr = if big { ">f2" } else { "<f2" };
            let a = decode(&npy(1, &dict(descr, false, "(12,)"), &body)).unwrap();
            for (&(h, want), got) in cases.iter().zip(&a.data) {
                assert_eq!(got.to_bits(), want.to_bits(), "{h:04x}");
            }
        }
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            let exponent = (h >> 10) & 0x1f;
            assert_eq!(x.is_nan(), exponent == 0x1f && h & 0x3ff != 0, "{h:04x}");
            assert_eq!(x.is_sign_negative(), h & 0x8000 != 0, "{h:04x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x7e00).to_bits(), 0x7fc0_0000); // quiet bit kept
    }

    #[test]
    fn fortran_order_is_reordered_to_c_order() {
        // [[0, 1, 2], [3, 4, 5]] stored column after column.
        let body: Vec<u8> =
            [0.0, 3.0, 1.0, 4.0, 2.0, 5.0].iter().flat_map(|&v| element("<f8", v)).collect();
        let a = decode(&npy(1, &dict("<f8", true, "(2, 3)"), &body)).unwrap();
        assert_eq!(a.shape, [2, 3]);
        assert_eq!(a.data, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);

        // Rank 4: element (i, j, k, l) is 1000i + 100j + 10k + l, at Fortran offset
        // i + 2j + 6k + 24l.
        let (n0, n1, n2, n3) = (2, 3, 4, 2);
        let mut stored = vec![0i16; n0 * n1 * n2 * n3];
        let mut want = Vec::new();
        for i in 0..n0 {
            for j in 0..n1 {
                for k in 0..n2 {
                    for l in 0..n3 {
                        let v = (1000 * i + 100 * j + 10 * k + l) as i16;
                        stored[i + n0 * (j + n1 * (k + n2 * l))] = v;
                        want.push(f32::from(v));
                    }
                }
            }
        }
        let body: Vec<u8> = stored.iter().flat_map(|v| v.to_be_bytes()).collect();
        let a = decode(&npy(1, &dict(">i2", true, "(2, 3, 4, 2)"), &body)).unwrap();
        assert_eq!(a.shape, [2, 3, 4, 2]);
        assert_eq!(a.data, want);

        // Rank 0 and 1, and empty arrays, are the same in both orders.
        let a = decode(&npy(1, &dict("|u1", true, "(3,)"), &[7, 8, 9])).unwrap();
        assert_eq!(a.data, [7.0, 8.0, 9.0]);
        let a = decode(&npy(1, &dict("|u1", true, "()"), &[7])).unwrap();
        assert_eq!((a.shape, a.data), (vec![], vec![7.0]));
        let a = decode(&npy(1, &dict("|u1", true, "(3, 0)"), &[])).unwrap();
        assert_eq!((a.shape, a.data), (vec![3, 0], vec![]));
    }

    #[test]
    fn rank_up_to_the_limit() {
        let shape = format!("({},)", ["1"; MAX_RANK].join(", "));
        let a = decode(&npy(1, &dict("<f4", false, &shape), &[0, 0, 0x80, 0x3f])).unwrap();
        assert_eq!((a.shape, a.data), (vec![1; MAX_RANK], vec![1.0]));
    }

    #[test]
    fn versions_2_and_3() {
        let body = element("<i2", -5.0);
        for version in [2, 3] {
            let file = npy(version, &dict("<i2", false, "(1,)"), &body);
            assert_eq!((12 + u32::from_le_bytes(file[8..12].try_into().unwrap())) % 64, 0);
            let a = decode(&file).unwrap();
            assert_eq!((a.shape, a.data), (vec![1], vec![-5.0]));
        }
    }

    /// A file exactly as `numpy.save` writes `numpy.array([1, 2, -3], dtype='<i2')`.
    #[test]
    fn file_as_numpy_writes_it() {
        let file = [
            &b"\x93NUMPY\x01\x00\x76\x00{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }"
                [..],
            &[b' '; 60],
            b"\n\x01\x00\x02\x00\xfd\xff",
        ]
        .concat();
        let a = decode(&file).unwrap();
        assert_eq!((a.shape, a.data), (vec![3], vec![1.0, 2.0, -3.0]));
    }

    #[test]
    fn header_syntax_variants() {
        let ok = |dict: &str| {
            decode(&npy(1, dict, &[1, 0, 2, 0, 3, 0, 4, 0])).map(|a| (a.shape, a.data))
        };
        let want = Ok((vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
        for dict in [
            "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 2), }",
            "{'shape': (2, 2), 'fortran_order': False, 'descr': '<u2'}",
            "{\"descr\": \"<u2\", \"fortran_order\": False, \"shape\": (2,2,)}",
            " { 'fortran_order' :False ,'shape':( 2 , 2 ) ,\n'descr':'<u2' , } ",
            "{'descr': '<u2', 'fortran_order': False, 'shape': (2L, 2L)}",
        ] {
            assert_eq!(ok(dict).map_err(|e| e.to_string()), want, "{dict}");
        }
        let a = decode(&npy(1, &dict("<u2", false, "(4,)"), &[1, 0, 2, 0, 3, 0, 4, 0])).unwrap();
        assert_eq!(a.shape, [4]);
        let a = decode(&npy(1, &dict("<u2", false, "()"), &[9, 1])).unwrap();
        assert_eq!((a.shape, a.data), (vec![], vec![265.0]));
    }

    #[test]
    fn header_errors() {
        let err = |dict: &str| decode(&npy(1, dict, &[0; 8])).unwrap_err();
        let header_reason = |dict: &str| match err(dict) {
            NpyError::Header { reason, .. } => reason,
            e => panic!("{dict}: {e:?}"),
        };
        let cases = [
            ("'descr': '<f4'", "expected '{' at byte 0"),
            ("{'descr': '<f4' 'shape': (2,)}", "expected ',' or '}' at byte 16"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
                "unexpected key 'x'",
            ),
            ("{'descr': '<f4', 'descr': '<f4'}", "key 'descr' appears twice at byte 17"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "expected True or False"),
            ("{'descr': '<f4', 'fortran_order': Tru, 'shape': (2,)}", "expected True or False"),
            (
                "{'descr': <f4, 'fortran_order': False, 'shape': (2,)}",
                "expected the descr (a quoted",
            ),
            ("{'descr' '<f4', 'fortran_order': False}", "expected ':' at byte 9"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}",
                "needs a trailing comma, as (5,)",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",
                "expected the shape as a tuple",
            ),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}", "expected a dimension"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "negative dimension"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", "expected ',' or ')'"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
                "dimension too large",
            ),
            ("{'descr': '<\\f4', 'fortran_order': False, 'shape': (2,)}", "unterminated string"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x",
                "unexpected text after the dict",
            ),
            ("{,}", "expected a key (a quoted string) at byte 1"),
        ];
        for (dict, reason) in cases {
            let got = header_reason(dict);
            assert!(got.contains(reason), "{dict}: {got}");
        }
        let too_many = dict("<f4", false, &format!("({})", ["1"; MAX_RANK + 1].join(", ")));
        let r = header_reason(&too_many);
        assert!(r.contains("more than 64 dimensions at byte 243"), "{r}");
        let e = err("{'descr': '<f4' 'shape': (2,)}");
        assert!(e.to_string().starts_with(
            "bad .npy header: expected ',' or '}' at byte 16, in \"{'descr': '<f4' 'shape': (2,)}"
        ), "{e}");

        for (dict, key) in [
            ("{'fortran_order': False, 'shape': (2,)}", "descr"),
            ("{'descr': '<f4', 'shape': (2,), }", "fortran_order"),
            ("{'descr': '<f4', 'fortran_order': False}", "shape"),
            ("{}", "descr"),
        ] {
            let e = err(dict);
            assert!(matches!(e, NpyError::MissingKey(k) if k == key), "{dict}: {e:?}");
            assert_eq!(e.to_string(), format!(".npy header has no '{key}' key"));
        }
    }

    #[test]
    fn dtype_errors() {
        let err = |descr: &str| decode(&npy(1, &dict(descr, false, "(2,)"), &[0; 16])).unwrap_err();
        let e = err("|O");
        assert!(matches!(&e, NpyError::ObjectDtype(d) if d == "|O"));
        assert_eq!(
            e.to_string(),
            ".npy descr '|O' is an object array (pickled Python objects), not numbers"
        );
        assert!(matches!(err("O"), NpyError::ObjectDtype(_)));
        for descr in ["<c8", "<U3", "|S4", "<M8[s]", "|f4", "f4", "<f16", "<i3", "", "<", "|V8"] {
            let e = err(descr);
            assert!(matches!(&e, NpyError::UnsupportedDtype(d) if d == descr), "{descr}: {e:?}");
            assert!(e
                .to_string()
                .starts_with(&format!("unsupported .npy descr '{descr}' (expected")));
        }
        let structured =
            "{'descr': [('x', '<f4'), ('y', '<i4')], 'fortran_order': False, 'shape': (2,), }";
        let e = decode(&npy(1, structured, &[0; 16])).unwrap_err();
        assert!(matches!(e, NpyError::StructuredDtype));
        assert!(e.to_string().contains("structured dtype"));

        let e = decode(&npy(1, &dict("|b1", false, "(4,)"), &[0, 1, 2, 1])).unwrap_err();
        assert!(matches!(e, NpyError::BadBool { index: 2, byte: 2 }));
        assert_eq!(e.to_string(), ".npy bool element 2 is 0x02, not 0 or 1");
    }

    #[test]
    fn size_errors() {
        let e = decode(&npy(1, &dict("<f4", false, "(3, 4)"), &[0; 40])).unwrap_err();
        assert!(matches!(e, NpyError::BodySize { expected: 48, found: 40, .. }));
        assert_eq!(
            e.to_string(),
            "shape (3, 4) of '<f4' needs 48 bytes of data but the file has 40 \
             (truncated: 8 bytes missing)"
        );
        let e = decode(&npy(1, &dict(">i8", false, "(1,)"), &[0; 9])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape (1,) of '>i8' needs 8 bytes of data but the file has 9 (too long: 1 extra bytes)"
        );
        let huge = format!("({}, {}, 3)", u32::MAX, u32::MAX);
        let e = decode(&npy(1, &dict("<f8", false, &huge), &[])).unwrap_err();
        assert!(matches!(&e, NpyError::ShapeOverflow { shape } if shape.len() == 3));
        assert_eq!(e.to_string(), format!(".npy shape {huge} overflows the address space"));
        // The element count fits but not its size in bytes.
        let e = decode(&npy(1, &dict("<f8", false, &format!("({},)", usize::MAX / 4)), &[]))
            .unwrap_err();
        assert!(matches!(e, NpyError::ShapeOverflow { .. }));
    }

    #[test]
    fn preamble_errors() {
        let e = decode(b"\x89PNG\r\n\x1a\n\0\0\0\0").unwrap_err();
        assert!(matches!(&e, NpyError::BadMagic { found } if found == b"\x89PNG\r\n"));
        assert_eq!(
            e.to_string(),
            "not a .npy file: first bytes 89 50 4e 47 0d 0a, \
             expected 93 4e 55 4d 50 59 (\\x93NUMPY)"
        );
        assert!(matches!(decode(b"PK"), Err(NpyError::BadMagic { .. })));
        assert!(matches!(decode(b""), Err(NpyError::TooShort { len: 0, needed: 10 })));
        let e = decode(b"\x93NUMPY\x01\x00").unwrap_err();
        assert!(matches!(e, NpyError::TooShort { len: 8, needed: 10 }));
        assert_eq!(
            e.to_string(),
            ".npy preamble or header cut short: the input has 8 bytes, it needs 10"
        );
        assert!(matches!(
            decode(b"\x93NUMPY\x02\x00\x00\x00"),
            Err(NpyError::TooShort { len: 10, needed: 12 })
        ));

        let file = npy(1, &dict("<f4", false, "(1,)"), &[0; 4]);
        let e = decode(&file[..50]).unwrap_err();
        assert!(matches!(e, NpyError::TooShort { len: 50, needed: 128 }), "{e:?}");
        let mut v3 = npy(3, &dict("<f4", false, "(1,)"), &[0; 4]);
        v3[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&v3), Err(NpyError::TooShort { .. })));

        for (major, minor) in [(0, 0), (1, 1), (4, 0)] {
            let mut f = file.clone();
            f[6..8].copy_from_slice(&[major, minor]);
            let e = decode(&f).unwrap_err();
            assert!(matches!(e, NpyError::UnsupportedVersion { .. }), "{e:?}");
            let want = format!(
                ".npy format version {major}.{minor} is not supported (expected 1.0, 2.0 or 3.0)"
            );
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("w.npy");
        std::fs::write(&good, encode_f32(&[1.0, 2.0], &[2])).unwrap();
        assert_eq!(read(&good).unwrap(), NpyArray { shape: vec![2], data: vec![1.0, 2.0] });

        let bad = dir.path().join("short.npy");
        let file = encode_f32(&[1.0, 2.0], &[2]);
        std::fs::write(&bad, &file[..file.len() - 2]).unwrap();
        let e = read(&bad).unwrap_err();
        let NpyError::InFile { error, .. } = &e else { panic!("{e:?}") };
        assert!(matches!(**error, NpyError::BodySize { .. }), "{error:?}");
        assert!(e.to_string().contains("short.npy: shape (2,) of '<f4' needs 8 bytes"), "{e}");
        assert!(std::error::Error::source(&e).is_some());

        let e = read(&dir.path().join("missing.npy")).unwrap_err();
        assert!(
            matches!(&e, NpyError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(e.to_string().starts_with("cannot read ") && e.to_string().contains("missing.npy"));
    }

    #[test]
    fn header_is_aligned_and_data_follows() {
        let b = encode_f32(&[1.0, -2.0, 0.5, 4.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        let h = std::str::from_utf8(&b[10..10 + hl]).unwrap();
        assert!(h.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(h.ends_with('\n'));
        assert_eq!(b.len(), 10 + hl + 24);
        assert_eq!(f32::from_le_bytes(b[10 + hl + 4..10 + hl + 8].try_into().unwrap()), -2.0);
        let one = encode_f32(&[1.0], &[1]);
        assert!(
            std::str::from_utf8(&one[10..]).unwrap_or("").contains("(1,)")
                || one.windows(4).any(|w| w == b"(1,)")
        );
    }
}
