//! `rapid_harness::checkpoint::Checkpoint::decode` on arbitrary bytes, as given and with the
//! trailing CRC-32 recomputed (so the fuzzer reaches the settings, model and state checks),
//! then `Trainer::restore` and one training epoch on small in-memory data.
//!
//! Checks: decoding returns `Ok` or `Err` and never panics; errors display; what decodes
//! re-encodes to bytes that decode to the same encoding. A decoded checkpoint whose settings
//! are small enough to train here (Bars 4×4, `bas:3` to `bas:5`, or `arrays:` rows of at most
//! 64 pixels and 64 images, built in memory; `H ≤ 64`, `K ≤ 16`, at most 8 Gibbs steps, 256
//! PCD chains, and `min(V, H) ≤ 10` for `exact`) is restored: `restore` returns `Ok` or a
//! non-empty `Err`, never panics; a restored trainer reports the saved epoch, trains one
//! epoch when the run has one left (`Ok`, or the divergence error), and its state restores
//! again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapid_core::format::crc32;
use rapid_core::NegativePhase;
use rapid_harness::checkpoint::Checkpoint;
use rapid_harness::data::{Dataset, DatasetSpec};
use rapid_harness::run::{Method, TrainConfig, Trainer};

/// The in-memory data of `spec` when it is small, else `None`.
fn small_data(spec: &DatasetSpec, split_seed: u64) -> Option<Dataset> {
    match *spec {
        DatasetSpec::Bars4 => Some(Dataset::new(DatasetSpec::Bars4, split_seed)),
        DatasetSpec::Bas(n) if n <= 5 => Some(Dataset::new(DatasetSpec::Bas(n), split_seed)),
        DatasetSpec::Arrays { height, width, images }
            if height.checked_mul(width).is_some_and(|v| v <= 64) && images <= 64 =>
        {
            let v = height * width;
            // Pseudo-random ±1 rows from the split seed; the first half train, the rest test.
            let mut x = split_seed | 1;
            let mut rows = Vec::with_capacity(images * v);
            for _ in 0..images * v {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                rows.push(if x & 1 == 1 { 1.0 } else { -1.0 });
            }
            let test = rows.split_off(images.div_ceil(2) * v);
            Dataset::from_rows(rows, test, height, width).ok()
        }
        _ => None,
    }
}

/// Settings cheap enough to restore and train one epoch of.
fn small_config(c: &TrainConfig, data: &Dataset) -> bool {
    let steps = match c.method {
        Method::Pid(NegativePhase::Gibbs { steps }) => steps,
        Method::Cd { k } | Method::Pcd { k, .. } => k,
        _ => 1,
    };
    let chains = match c.method {
        Method::Pcd { chains, .. } => chains,
        _ => 0,
    };
    let enumerable = c.method != Method::Exact || data.visible().min(c.hidden) <= 10;
    c.hidden <= 64 && c.patterns <= 16 && steps <= 8 && chains <= 256 && enumerable
}

fn check(bytes: &[u8]) {
    let ck = match Checkpoint::decode(bytes) {
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
        Ok(ck) => ck,
    };
    let again = ck.encode();
    let back = Checkpoint::decode(&again).expect("an encoded checkpoint decodes");
    assert!(back.encode() == again, "decode(encode) changed the encoding");

    let Some(data) = small_data(&ck.dataset, ck.split_seed) else { return };
    if !small_config(&ck.config, &data) {
        return;
    }
    let epoch = ck.state.epoch;
    let mut t = match Trainer::restore(&ck.config, &data, ck.state) {
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
        Ok(t) => t,
    };
    assert_eq!(t.epochs_done(), epoch);
    if t.epochs_done() < ck.config.epochs {
        if let Err(e) = t.train_epoch(&data) {
            assert!(!e.to_string().is_empty());
            return;
        }
        assert_eq!(t.epochs_done(), epoch + 1);
    }
    if let Err(e) = Trainer::restore(&ck.config, &data, t.state()) {
        panic!("a trainer's own state does not restore: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 4 {
        let mut fixed = data.to_vec();
        let n = fixed.len() - 4;
        let crc = crc32(&fixed[..n]);
        fixed[n..].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});
