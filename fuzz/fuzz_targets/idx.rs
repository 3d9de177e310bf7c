//! `rapid_harness::idx::decode` on arbitrary bytes, as given and wrapped in a gzip stream of
//! stored deflate blocks (so the fuzzer reaches the IDX checks behind the gunzip without having
//! to forge a valid stream; inputs that start with the gzip magic exercise the decompressor).
//!
//! Checks: `decode` returns `Ok` or `Err` and never panics; an error's `Display` works; whatever
//! decodes has a rank of 1 to `MAX_RANK`, `data.len()` equal to the product of `dims`, and a
//! plain input exactly as long as its header and body; types converted exactly (`u8`, `i8`,
//! `i16`, `f32`) re-encode to the input bytes. A gzip-wrapped input decodes as the plain one
//! does (the same array, or an error with the same message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapid_core::format::crc32;
/// The reader of `rapid-harness`, compiled in from its source file: the same code, without
/// the harness's other dependencies.
#[path = "../../std-harness/src/idx.rs"]
#[allow(dead_code)]
mod idx;

use idx::{decode, IdxArray, IdxError, IdxType, MAX_RANK};

/// The input bytes of an array of a type `f32` holds exactly, or `None` for `i32` and `f64`.
fn reencode(a: &IdxArray) -> Option<Vec<u8>> {
    let mut out = vec![0, 0, a.dtype.byte(), a.dims.len() as u8];
    for &d in &a.dims {
        out.extend_from_slice(&u32::try_from(d).expect("dims come from u32").to_be_bytes());
    }
    for &x in &a.data {
        match a.dtype {
            IdxType::U8 => out.push(x as u8),
            IdxType::I8 => out.extend_from_slice(&(x as i8).to_be_bytes()),
            IdxType::I16 => out.extend_from_slice(&(x as i16).to_be_bytes()),
            IdxType::F32 => out.extend_from_slice(&x.to_bits().to_be_bytes()),
            IdxType::I32 | IdxType::F64 => return None,
        }
    }
    Some(out)
}

/// `bytes` as a gzip stream of stored (uncompressed) deflate blocks: cheap to build, and a
/// complete stream for the decoder (header, blocks, CRC-32 and length trailer).
fn gzip_stored(bytes: &[u8]) -> Vec<u8> {
    // Magic, deflate, no flags, no time, no extra flags, unknown OS.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = bytes.chunks(usize::from(u16::MAX)).peekable();
    if bytes.is_empty() {
        out.extend([1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        // BFINAL on the last block, BTYPE 00 (stored), then LEN and its complement.
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(block);
    }
    out.extend(crc32(bytes).to_le_bytes());
    out.extend((bytes.len() as u32).to_le_bytes());
    out
}

/// The outcome in a comparable form: the array with its `f32`s as bits, or the message.
fn outcome(r: &Result<IdxArray, IdxError>) -> Result<(IdxType, Vec<usize>, Vec<u32>), String> {
    match r {
        Ok(a) => Ok((a.dtype, a.dims.clone(), a.data.iter().map(|x| x.to_bits()).collect())),
        Err(e) => Err(e.to_string()),
    }
}

fn check(bytes: &[u8]) -> Result<IdxArray, IdxError> {
    let result = decode(bytes);
    match &result {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(a) => {
            assert!((1..=MAX_RANK).contains(&a.dims.len()), "rank {}", a.dims.len());
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            if !bytes.starts_with(&[0x1f, 0x8b]) {
                assert_eq!(bytes.len(), 4 + 4 * a.dims.len() + a.data.len() * a.dtype.size());
                if let Some(again) = reencode(a) {
                    assert!(again == bytes, "re-encoding a {} array changed the bytes", a.dtype);
                }
            }
        }
    }
    result
}

fuzz_target!(|data: &[u8]| {
    let plain = check(data);
    if !data.starts_with(&[0x1f, 0x8b]) {
        let zipped = check(&gzip_stored(data));
        assert_eq!(outcome(&zipped), outcome(&plain), "gzip and plain disagree");
    }
});
