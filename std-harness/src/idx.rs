//! Reading IDX files (the format of the MNIST distribution), plain or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte, a rank byte, then `rank` big-endian `u32` dimensions,
//! then the elements in C order (last index fastest), each big-endian:
//!
//! | type byte | element |
//! | --- | --- |
//! | `0x08` | `u8` |
//! | `0x09` | `i8` |
//! | `0x0B` | `i16` |
//! | `0x0C` | `i32` |
//! | `0x0D` | `f32` |
//! | `0x0E` | `f64` |
//!
//! [`decode`] gunzips input that starts with the gzip magic `1f 8b` (never more than
//! [`MAX_DECODED`] bytes), checks the header, checks that the body holds exactly the elements
//! the dimensions announce, and converts every element to `f32`.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The most bytes a gzip stream may decode to (1 GiB); more is refused with
/// [`IdxError::TooLarge`], so a small compressed file cannot exhaust memory.
pub const MAX_DECODED: usize = 1 << 30;

/// The highest rank accepted (MNIST files have rank 1 or 3).
pub const MAX_RANK: usize = 4;

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The element type of an IDX file, from its third byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdxType {
    /// `0x08`: unsigned byte.
    U8,
    /// `0x09`: signed byte.
    I8,
    /// `0x0B`: big-endian `i16`.
    I16,
    /// `0x0C`: big-endian `i32`.
    I32,
    /// `0x0D`: big-endian `f32`.
    F32,
    /// `0x0E`: big-endian `f64`.
    F64,
}

impl IdxType {
    /// Every type, in the order of their type bytes.
    pub const ALL: [IdxType; 6] =
        [IdxType::U8, IdxType::I8, IdxType::I16, IdxType::I32, IdxType::F32, IdxType::F64];

    /// The type with this type byte, if any.
    pub fn from_byte(byte: u8) -> Option<IdxType> {
        IdxType::ALL.into_iter().find(|t| t.byte() == byte)
    }

    /// The type byte that announces this type.
    pub fn byte(self) -> u8 {
        match self {
            IdxType::U8 => 0x08,
            IdxType::I8 => 0x09,
            IdxType::I16 => 0x0B,
            IdxType::I32 => 0x0C,
            IdxType::F32 => 0x0D,
            IdxType::F64 => 0x0E,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }

    /// The Rust name of the element type (`u8`, `i16`, `f64`…).
    pub fn name(self) -> &'static str {
        match self {
            IdxType::U8 => "u8",
            IdxType::I8 => "i8",
            IdxType::I16 => "i16",
            IdxType::I32 => "i32",
            IdxType::F32 => "f32",
            IdxType::F64 => "f64",
        }
    }

    /// Converts one big-endian element (`bytes.len() == self.size()`) to `f32`: exactly for
    /// `u8`, `i8`, `i16`, `f32` (NaN payloads included); `i32` beyond ±2²⁴ and `f64` round to
    /// the nearest `f32` (`f64` beyond the `f32` range becomes ±infinity).
    fn to_f32(self, bytes: &[u8]) -> f32 {
        match self {
            IdxType::U8 => f32::from(bytes[0]),
            IdxType::I8 => f32::from(bytes[0] as i8),
            IdxType::I16 => f32::from(i16::from_be_bytes([bytes[0], bytes[1]])),
            IdxType::I32 => i32::from_be_bytes(bytes.try_into().expect("4 bytes")) as f32,
            IdxType::F32 => f32::from_be_bytes(bytes.try_into().expect("4 bytes")),
            IdxType::F64 => f64::from_be_bytes(bytes.try_into().expect("8 bytes")) as f32,
        }
    }
}

impl fmt::Display for IdxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded IDX file: its dimensions and its elements as `f32`, in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    /// The element type the file stores (the values in `data` are converted from it).
    pub dtype: IdxType,
    /// The dimensions, outermost first (`[60000, 28, 28]` for the MNIST training images).
    pub dims: Vec<usize>,
    /// The elements in C order (last index fastest); `data.len()` is the product of `dims`.
    pub data: Vec<f32>,
}

/// Why an IDX file could not be decoded.
#[derive(Debug)]
pub enum IdxError {
    /// The input ends inside the header.
    TooShort {
        /// Bytes available (after gunzipping).
        len: usize,
        /// Bytes the header needs (4 before the rank is known, then `4 + 4·rank`).
        needed: usize,
    },
    /// The first two bytes are not zero.
    BadMagic {
        /// The first (up to four) bytes found.
        found: Vec<u8>,
    },
    /// The type byte is none of the six IDX types.
    UnknownType(u8),
    /// The rank byte is 0 or above [`MAX_RANK`].
    BadRank(u8),
    /// The product of the dimensions, or its size in bytes, overflows `usize`.
    DimsOverflow {
        /// The dimensions of the header.
        dims: Vec<usize>,
    },
    /// The body is not exactly as long as the dimensions require.
    BodySize {
        /// The element type.
        dtype: IdxType,
        /// The dimensions of the header.
        dims: Vec<usize>,
        /// Body bytes the dimensions require.
        expected: usize,
        /// Body bytes present.
        found: usize,
    },
    /// The gzip stream is corrupt or cut short.
    Gzip(io::Error),
    /// The gzip stream decodes to more than [`MAX_DECODED`] bytes.
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
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
        error: Box<IdxError>,
    },
}

/// Dimensions as `60000×28×28`.
fn dims_text(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×")
}

/// Bytes as `89 50 4e 47`.
fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxError::TooShort { len, needed } => write!(
                f,
                "IDX header cut short: the input has {len} bytes, the header needs {needed}"
            ),
            IdxError::BadMagic { found } => write!(
                f,
                "not an IDX file: first bytes {}, expected 00 00 <type> <rank>",
                hex_text(found)
            ),
            IdxError::UnknownType(t) => write!(
                f,
                "unknown IDX element type byte 0x{t:02x} (expected 08 u8, 09 i8, 0b i16, \
                 0c i32, 0d f32 or 0e f64)"
            ),
            IdxError::BadRank(r) => {
                write!(f, "IDX rank {r} is not supported (expected 1 to {MAX_RANK})")
            }
            IdxError::DimsOverflow { dims } => {
                write!(f, "IDX dims {} overflow the address space", dims_text(dims))
            }
            IdxError::BodySize { dtype, dims, expected, found } => {
                write!(
                    f,
                    "dims {} need {expected} bytes of body ({dtype}) but the file has {found}",
                    dims_text(dims)
                )?;
                if found < expected {
                    write!(f, " (truncated: {} bytes missing)", expected - found)
                } else {
                    write!(f, " (too long: {} extra bytes)", found - expected)
                }
            }
            IdxError::Gzip(e) => write!(f, "gzip stream is corrupt or truncated: {e}"),
            IdxError::TooLarge { limit } => {
                write!(f, "gzip stream decodes to more than {limit} bytes (the limit)")
            }
            IdxError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            IdxError::InFile { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for IdxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdxError::Gzip(e) | IdxError::Io { source: e, .. } => Some(e),
            IdxError::InFile { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// Gunzips `bytes`, refusing output longer than `limit` bytes.
fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, IdxError> {
    let mut out = Vec::new();
    // One byte past the limit tells an output of exactly `limit` bytes from a longer one.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(bytes).take(cap).read_to_end(&mut out).map_err(IdxError::Gzip)?;
    if out.len() > limit {
        return Err(IdxError::TooLarge { limit });
    }
    Ok(out)
}

/// Decodes an IDX file held in memory, gunzipping it first if it starts with `1f 8b`.
pub fn decode(bytes: &[u8]) -> Result<IdxArray, IdxError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        decode_plain(&gunzip(bytes, MAX_DECODED)?)
    } else {
        decode_plain(bytes)
    }
}

/// Decodes an uncompressed IDX file.
fn decode_plain(bytes: &[u8]) -> Result<IdxArray, IdxError> {
    if bytes.len() < 4 {
        if bytes.iter().take(2).any(|&b| b != 0) {
            return Err(IdxError::BadMagic { found: bytes.to_vec() });
        }
        return Err(IdxError::TooShort { len: bytes.len(), needed: 4 });
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(IdxError::BadMagic { found: bytes[..4].to_vec() });
    }
    let dtype = IdxType::from_byte(bytes[2]).ok_or(IdxError::UnknownType(bytes[2]))?;
    let rank = usize::from(bytes[3]);
    if rank == 0 || rank > MAX_RANK {
        return Err(IdxError::BadRank(bytes[3]));
    }
    let header_len = 4 + 4 * rank;
    if bytes.len() < header_len {
        return Err(IdxError::TooShort { len: bytes.len(), needed: header_len });
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let Some((count, expected)) = count.and_then(|n| Some((n, n.checked_mul(dtype.size())?)))
    else {
        return Err(IdxError::DimsOverflow { dims });
    };
    let body = &bytes[header_len..];
    if body.len() != expected {
        return Err(IdxError::BodySize { dtype, dims, expected, found: body.len() });
    }
    let mut data = Vec::with_capacity(count);
    data.extend(body.chunks_exact(dtype.size()).map(|c| dtype.to_f32(c)));
    Ok(IdxArray { dtype, dims, data })
}

/// Reads and decodes the IDX file at `path` (gzip or plain); errors name the file.
pub fn read(path: &Path) -> Result<IdxArray, IdxError> {
    let bytes =
        std::fs::read(path).map_err(|source| IdxError::Io { path: path.to_owned(), source })?;
    decode(&bytes).map_err(|e| IdxError::InFile { path: path.to_owned(), error: Box::new(e) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Encodes `values` (each representable in `dtype`) as a plain IDX file.
    fn encode(dtype: IdxType, dims: &[u32], values: &[f64]) -> Vec<u8> {
        let mut out = vec![0, 0, dtype.byte(), dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        for &v in values {
            match dtype {
                IdxType::U8 => out.push(v as u8),
                IdxType::I8 => out.extend_from_slice(&(v as i8).to_be_bytes()),
                IdxType::I16 => out.extend_from_slice(&(v as i16).to_be_bytes()),
                IdxType::I32 => out.extend_from_slice(&(v as i32).to_be_bytes()),
                IdxType::F32 => out.extend_from_slice(&(v as f32).to_be_bytes()),
                IdxType::F64 => out.extend_from_slice(&v.to_be_bytes()),
            }
        }
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Values at the edges of each type's range (all exact in `f32`).
    fn samples(dtype: IdxType) -> Vec<f64> {
        match dtype {
            IdxType::U8 => vec![0.0, 1.0, 127.0, 128.0, 254.0, 255.0],
            IdxType::I8 => vec![-128.0, -1.0, 0.0, 1.0, 126.0, 127.0],
            IdxType::I16 => vec![-32768.0, -256.0, 0.0, 255.0, 256.0, 32767.0],
            IdxType::I32 => vec![-2147483648.0, -16777216.0, -1.0, 0.0, 65536.0, 1073741824.0],
            IdxType::F32 => vec![-3.5, -0.0, 0.0, 1.0e-40, 0.1f32 as f64, f32::MAX as f64],
            IdxType::F64 => {
                vec![-2.25, -0.0, 0.0, 0.5, 1.0e30f32 as f64, -(f32::MIN_POSITIVE as f64)]
            }
        }
    }

    #[test]
    fn round_trip_every_type() {
        for dtype in IdxType::ALL {
            assert_eq!(IdxType::from_byte(dtype.byte()), Some(dtype));
            let values = samples(dtype);
            for dims in [&[6][..], &[2, 3], &[3, 1, 2], &[1, 2, 3, 1]] {
                let array = decode(&encode(dtype, dims, &values)).unwrap();
                assert_eq!(array.dtype, dtype);
                assert_eq!(array.dims, dims.iter().map(|&d| d as usize).collect::<Vec<_>>());
                let bits: Vec<u32> = array.data.iter().map(|x| x.to_bits()).collect();
                let want: Vec<u32> = values.iter().map(|&v| (v as f32).to_bits()).collect();
                assert_eq!(bits, want, "{dtype} {dims:?}");
            }
        }
    }

    #[test]
    fn conversions_round_and_keep_special_values() {
        let a = decode(&encode(IdxType::I32, &[2], &[16777217.0, i32::MAX as f64])).unwrap();
        assert_eq!(a.data, [16777216.0, 2147483648.0]);
        let a = decode(&encode(IdxType::F64, &[3], &[0.1, 1e300, f64::NAN])).unwrap();
        assert_eq!(a.data[..2], [0.1f32, f32::INFINITY]);
        assert!(a.data[2].is_nan());
        let a = decode(&encode(IdxType::F32, &[1], &[f64::NEG_INFINITY])).unwrap();
        assert_eq!(a.data, [f32::NEG_INFINITY]);
    }

    #[test]
    fn empty_dimension_gives_empty_data() {
        let a = decode(&encode(IdxType::F64, &[0, 28, 28], &[])).unwrap();
        assert_eq!(a.dims, [0, 28, 28]);
        assert!(a.data.is_empty());
    }

    #[test]
    fn gzip_and_plain_decode_alike() {
        let values: Vec<f64> = (0..6 * 7).map(|i| f64::from(i * 6 % 256)).collect();
        let plain = encode(IdxType::U8, &[6, 7], &values);
        let zipped = gzip(&plain);
        assert_eq!(zipped[..2], GZIP_MAGIC);
        assert_eq!(decode(&plain).unwrap(), decode(&zipped).unwrap());
        let values = samples(IdxType::F64);
        let plain = encode(IdxType::F64, &[3, 2], &values);
        assert_eq!(decode(&plain).unwrap(), decode(&gzip(&plain)).unwrap());
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("labels.idx1.gz");
        std::fs::write(&good, gzip(&encode(IdxType::U8, &[3], &[7.0, 0.0, 9.0]))).unwrap();
        let a = read(&good).unwrap();
        assert_eq!((a.dims, a.data), (vec![3], vec![7.0, 0.0, 9.0]));

        let bad = dir.path().join("image.png");
        std::fs::write(&bad, b"\x89PNG\r\n\x1a\n").unwrap();
        let e = read(&bad).unwrap_err();
        let IdxError::InFile { error, .. } = &e else { panic!("{e:?}") };
        assert!(matches!(**error, IdxError::BadMagic { .. }), "{error:?}");
        let msg = e.to_string();
        assert!(msg.contains("image.png: not an IDX file: first bytes 89 50 4e 47"), "{msg}");
        assert!(std::error::Error::source(&e).is_some());

        let missing = dir.path().join("missing.idx");
        let e = read(&missing).unwrap_err();
        assert!(
            matches!(&e, IdxError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(e.to_string().starts_with("cannot read "), "{e}");
        assert!(e.to_string().contains("missing.idx"), "{e}");
    }

    #[test]
    fn errors_and_their_messages() {
        let msg = |bytes: &[u8]| decode(bytes).unwrap_err().to_string();

        let e = decode(b"\x89PNG\r\n").unwrap_err();
        assert!(matches!(&e, IdxError::BadMagic { found } if found == b"\x89PNG"));
        assert_eq!(
            e.to_string(),
            "not an IDX file: first bytes 89 50 4e 47, expected 00 00 <type> <rank>"
        );
        assert!(matches!(decode(b"\x01"), Err(IdxError::BadMagic { .. })));

        let e = decode(&[0, 0, 8]).unwrap_err();
        assert!(matches!(e, IdxError::TooShort { len: 3, needed: 4 }));
        assert!(matches!(decode(&[]), Err(IdxError::TooShort { len: 0, needed: 4 })));
        let e = decode(&[0, 0, 8, 3, 0, 0, 0, 2, 0, 0]).unwrap_err();
        assert!(matches!(e, IdxError::TooShort { len: 10, needed: 16 }));
        assert_eq!(
            e.to_string(),
            "IDX header cut short: the input has 10 bytes, the header needs 16"
        );

        let e = decode(&[0, 0, 0x0a, 1, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(e, IdxError::UnknownType(0x0a)));
        assert_eq!(
            e.to_string(),
            "unknown IDX element type byte 0x0a \
             (expected 08 u8, 09 i8, 0b i16, 0c i32, 0d f32 or 0e f64)"
        );

        assert!(matches!(decode(&[0, 0, 8, 0]), Err(IdxError::BadRank(0))));
        assert_eq!(msg(&[0, 0, 8, 0]), "IDX rank 0 is not supported (expected 1 to 4)");
        assert!(matches!(decode(&[0, 0, 8, 5]), Err(IdxError::BadRank(5))));

        let mut mnist = encode(IdxType::U8, &[60000, 28, 28], &[]);
        mnist.extend_from_slice(&[0; 1000]);
        let e = decode(&mnist).unwrap_err();
        assert!(matches!(e, IdxError::BodySize { expected: 47040000, found: 1000, .. }));
        assert_eq!(
            e.to_string(),
            "dims 60000×28×28 need 47040000 bytes of body (u8) but the file has 1000 \
             (truncated: 47039000 bytes missing)"
        );
        let mut long = encode(IdxType::I16, &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        long.push(0);
        let e = decode(&long).unwrap_err();
        assert!(matches!(e, IdxError::BodySize { dtype: IdxType::I16, expected: 8, found: 9, .. }));
        assert_eq!(
            e.to_string(),
            "dims 2×2 need 8 bytes of body (i16) but the file has 9 (too long: 1 extra bytes)"
        );

        let huge = encode(IdxType::F64, &[u32::MAX; 4], &[]);
        let e = decode(&huge).unwrap_err();
        assert!(matches!(&e, IdxError::DimsOverflow { dims } if dims.len() == 4));
        assert_eq!(
            e.to_string(),
            "IDX dims 4294967295×4294967295×4294967295×4294967295 overflow the address space"
        );
    }

    #[test]
    fn gzip_errors() {
        let plain = encode(IdxType::U8, &[50, 50], &vec![3.0; 2500]);
        let zipped = gzip(&plain);
        for cut in [2, 10, zipped.len() / 2, zipped.len() - 8, zipped.len() - 1] {
            let e = decode(&zipped[..cut]).unwrap_err();
            assert!(matches!(e, IdxError::Gzip(_)), "cut at {cut}: {e:?}");
            assert!(e.to_string().starts_with("gzip stream is corrupt or truncated: "), "{e}");
        }
        let mut corrupt = zipped.clone();
        let n = corrupt.len();
        corrupt[n - 6] ^= 0xff; // the CRC-32 trailer
        assert!(matches!(decode(&corrupt), Err(IdxError::Gzip(_))));

        assert!(matches!(gunzip(&zipped, plain.len()), Ok(v) if v == plain));
        let e = gunzip(&zipped, plain.len() - 1).unwrap_err();
        assert!(matches!(e, IdxError::TooLarge { limit } if limit == plain.len() - 1));
        assert_eq!(
            e.to_string(),
            format!("gzip stream decodes to more than {} bytes (the limit)", plain.len() - 1)
        );

        // A gzip stream holding something that is not IDX is reported as such.
        assert!(matches!(decode(&gzip(b"hello")), Err(IdxError::BadMagic { .. })));
    }

    /// The MNIST subset vendored in `data/mnist-10k/`.
    #[test]
    fn vendored_mnist_subset() {
        let files: [(&[u8], usize, bool); 4] = [
            (
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/data/mnist-10k/train-images-idx3-ubyte.gz"
                )),
                8000,
                true,
            ),
            (
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/data/mnist-10k/train-labels-idx1-ubyte.gz"
                )),
                8000,
                false,
            ),
            (
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/data/mnist-10k/t10k-images-idx3-ubyte.gz"
                )),
                2000,
                true,
            ),
            (
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/data/mnist-10k/t10k-labels-idx1-ubyte.gz"
                )),
                2000,
                false,
            ),
        ];
        for (bytes, n, images) in files {
            let a = decode(bytes).unwrap();
            assert_eq!(a.dtype, IdxType::U8);
            if images {
                assert_eq!(a.dims, [n, 28, 28]);
                assert!(a.data.iter().all(|&x| (0.0..=255.0).contains(&x) && x.fract() == 0.0));
                // Real digits: mostly background, some ink at full strength.
                let ink = a.data.iter().filter(|&&x| x > 0.3 * 255.0).count();
                assert!(ink > a.data.len() / 20 && ink < a.data.len() / 2, "{ink}");
                assert!(a.data.contains(&255.0));
            } else {
                assert_eq!(a.dims, [n]);
                assert!(a.data.iter().all(|&x| (0.0..=9.0).contains(&x) && x.fract() == 0.0));
                for digit in 0..10 {
                    assert!(a.data.iter().filter(|&&x| x == digit as f32).count() > n / 20);
                }
            }
        }
    }
}
