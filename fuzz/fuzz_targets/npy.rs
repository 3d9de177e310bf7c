//! `rapid_harness::npy::decode` on arbitrary bytes.
//!
//! Checks: `decode` returns `Ok` or `Err` and never panics; an error's `Display` works; whatever
//! decodes has `data.len()` equal to the product of `shape` (1 for a 0-d array), and
//! `npy::encode_f32` of its shape and data decodes back to the same shape and the same bits.
#![no_main]

use libfuzzer_sys::fuzz_target;
/// The reader of `rapid-harness`, compiled in from its source file: the same code, without
/// the harness's other dependencies.
#[path = "../../std-harness/src/npy.rs"]
#[allow(dead_code)]
mod npy;

use npy::{decode, encode_f32};

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(a) => {
            assert_eq!(a.data.len(), a.shape.iter().product::<usize>());
            let again = decode(&encode_f32(&a.data, &a.shape)).expect("encode_f32 output decodes");
            assert_eq!(again.shape, a.shape);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(bits(&again.data) == bits(&a.data), "encode_f32 round trip changed the data");
        }
    }
});
