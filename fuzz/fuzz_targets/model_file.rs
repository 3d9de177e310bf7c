//! `ModelFile::parse` on arbitrary bytes, as given and with the trailing CRC-32 recomputed (so
//! the fuzzer reaches the checks after the checksum without having to forge it).
//!
//! Checks: `parse` returns `Ok` or `Err` and never panics; an error's `Display` works; and
//! whatever parses re-encodes, through `format::encode` with its kind, dimensions and
//! `read_params`, to exactly the input bytes. A parsed file holds only finite parameters.
//!
//! `ModelFile::parse_with_settings` likewise: never panics; a strict parse that succeeds
//! gives the same model and no settings; a file with a settings section re-encodes, model
//! block and section (`format::encode_settings`), to the input bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapid_core::format::{
    crc32, encode, encode_settings, encoded_len, param_count, settings_encoded_len, ModelFile,
    CHECKSUM_LEN,
};

fn reencode(file: &ModelFile<'_>) -> Vec<u8> {
    let (kind, dims) = (file.kind(), file.dims());
    let mut params = vec![0.0f32; file.param_count()];
    file.read_params(&mut params);
    let mut out = vec![0u8; encoded_len(kind, dims)];
    encode(kind, dims, &params, &mut out);
    out
}

fn check_with_settings(bytes: &[u8]) {
    match ModelFile::parse_with_settings(bytes) {
        Err(e) => {
            let mut s = String::new();
            core::fmt::write(&mut s, format_args!("{e}")).expect("Display never fails");
            if let Ok(strict) = ModelFile::parse(bytes) {
                panic!(
                    "strict parse accepted {:?} what parse_with_settings refused: {s}",
                    strict.dims()
                );
            }
        }
        Ok((file, None)) => assert!(reencode(&file) == bytes, "bare model did not round-trip"),
        Ok((file, Some(text))) => {
            let mut out = reencode(&file);
            let m = out.len();
            out.resize(m + settings_encoded_len(text.len()), 0);
            encode_settings(text, &mut out[m..]);
            assert!(out == bytes, "model with settings did not round-trip");
        }
    }
}

fn check(bytes: &[u8]) {
    check_with_settings(bytes);
    match ModelFile::parse(bytes) {
        Err(e) => {
            let mut s = String::new();
            core::fmt::write(&mut s, format_args!("{e}")).expect("Display never fails");
            assert!(!s.is_empty());
        }
        Ok(file) => {
            let (kind, dims) = (file.kind(), file.dims());
            assert!(kind.dims_valid(dims), "parsed dims {dims:?} invalid for {kind:?}");
            assert_eq!(file.param_count(), param_count(kind, dims));
            let mut params = vec![0.0f32; file.param_count()];
            file.read_params(&mut params);
            assert!(params.iter().all(|p| p.is_finite()), "parsed a non-finite parameter");
            assert_eq!(encoded_len(kind, dims), bytes.len());
            let mut out = vec![0u8; bytes.len()];
            assert_eq!(encode(kind, dims, &params, &mut out), bytes.len());
            assert!(out == bytes, "re-encoding {kind:?} {dims:?} changed the bytes");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= CHECKSUM_LEN {
        let mut fixed = data.to_vec();
        let n = fixed.len() - CHECKSUM_LEN;
        let crc = crc32(&fixed[..n]);
        fixed[n..].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});
