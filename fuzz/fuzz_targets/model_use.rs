//! Parse, then use: arbitrary bytes to `rapid_harness::checkpoint::read_model_or_checkpoint`
//! (what `rapid eval` and `rapid export` read a model with: a model file with or without a
//! settings section, or a checkpoint), as given and with the model block's and the settings
//! section's CRC-32s recomputed; whatever reads is then used the way those commands use it,
//! on small sizes (`V·H ≤ 4096`).
//!
//! Checks, none of which may panic: the export (`W` as `V × H`, `Ξ` as `K × (V+H)`, the
//! biases) encodes to `.npy` bytes that decode to those shapes and bits; the evaluation of
//! `rapid eval` (`run::evaluate`: reconstruction HD, and with `min(V, H) ≤ 10` the exact
//! ground state, Gibbs accessibility and NLL; singular values) on a few in-memory images gives
//! finite HDs in `[0, 1]`; the exact log Z (when `min(V, H) ≤ 10`) and the log p* of an image
//! agree with the exact NLL; a short AIS estimate and RAISE run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapid_core::format::{crc32, encoded_len, ModelFile, CHECKSUM_LEN, HEADER_LEN};
use rapid_harness::ais::{
    ais_log_z, log_p_star, mean_nll, raise_nll, AisOptions, Base, RaiseOptions, Schedule,
};
use rapid_harness::checkpoint::read_model_or_checkpoint;
use rapid_harness::data::Dataset;
use rapid_harness::exact;
use rapid_harness::metrics::HdProtocol;
use rapid_harness::model::Model;
use rapid_harness::npy;
use rapid_harness::run::{evaluate, Method, Track};

/// `±1` rows from a seed (xorshift), `n` images of `v` pixels.
fn rows(v: usize, n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed | 1;
    (0..v * n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x & 1 == 1 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

fn export(model: &Model) {
    let view = model.view();
    let (v, h) = (view.visible(), view.hidden());
    let mut files = vec![(view.weights(), vec![v, h])];
    match model {
        Model::Ra { dims, xi } => files.push((xi.clone(), vec![dims.patterns, dims.width()])),
        Model::Dense { .. } => {
            if let (Some(a), Some(b)) = view.biases() {
                files.push((a.to_vec(), vec![v]));
                files.push((b.to_vec(), vec![h]));
            }
        }
    }
    for (data, shape) in files {
        assert_eq!(data.len(), shape.iter().product::<usize>(), "export shape {shape:?}");
        let back = npy::decode(&npy::encode_f32(&data, &shape)).expect("exported .npy decodes");
        assert_eq!(back.shape, shape);
        let bits = |x: &[f32]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
        assert!(bits(&back.data) == bits(&data), "export changed the values");
    }
}

fn use_model(model: &Model, seed: u64) {
    let view = model.view();
    let (v, h) = (view.visible(), view.hidden());
    if v.checked_mul(h).is_none_or(|n| n > 4096) {
        return;
    }
    export(model);
    let data = Dataset::from_rows(rows(v, 3, seed), rows(v, 2, !seed), 1, v)
        .expect("±1 rows make a dataset");
    let enumerable = v.min(h) <= 10;
    let track = Track { gs: enumerable, method: false, svd: true, nll: enumerable };
    let protocol = HdProtocol { repeats: 2, steps: 1 + (seed % 3) as usize, clamp: seed & 4 != 0 };
    let method = if matches!(model, Model::Ra { .. }) {
        Method::Pid(rapid_core::NegativePhase::Patterns)
    } else {
        Method::Exact
    };
    let e = evaluate(model, method, &[], &data, protocol, track, seed, 0)
        .expect("the enumeration sizes were checked");
    for hd in [e.hd_train, e.hd_test] {
        assert!((0.0..=1.0).contains(&hd), "HD {hd}");
    }
    if enumerable {
        // log Z and the free energies by enumeration agree with the NLL `evaluate` reported.
        let (log_z, free) = view.with_bipartite(|b| {
            let f: Vec<f64> = data.train.chunks(v).map(|x| exact::free_energy(b, x)).collect();
            (exact::log_z(b).expect("enumerable"), f)
        });
        let lp: Vec<f64> = data.train.chunks(v).map(|x| log_p_star(&view, x)).collect();
        let nll = e.nll_train.expect("tracked");
        let mean_f = free.iter().sum::<f64>() / free.len() as f64;
        let scale = 1.0 + log_z.abs() + free.iter().map(|f| f.abs()).sum::<f64>();
        if [log_z, nll, mean_f].iter().all(|x| x.is_finite()) {
            let want = log_z + mean_f;
            assert!((nll - want).abs() <= 1e-6 * scale, "NLL {nll} vs log Z + F {want}");
        }
        // log p* (f32 fields, from Ξ directly for RA models) and −F (f64 fields of the formed
        // `W`, rounded to f32) agree to rounding, which for entries up to `x` in magnitude is
        // below 2⁻²⁴ per term of the `V·K` (RA) or `V` (dense) products of `x²` (or `x`).
        // Huge parameters can make the two roundings differ without bound, so the check
        // applies to moderate ones.
        let x = model.params().iter().fold(0.0f64, |m, p| m.max(f64::from(p.abs())));
        if x <= 16.0 {
            let k = match model {
                Model::Ra { dims, .. } => dims.patterns as f64,
                Model::Dense { .. } => 1.0,
            };
            let terms = (v as f64) * (h as f64) * k * x.max(1.0) * x.max(1.0);
            for (f, p) in free.iter().zip(&lp) {
                let tol = 1e-6 * (1.0 + terms) + 1e-5 * f.abs();
                assert!((f + p).abs() <= tol, "F {f} vs log p* {p} (tolerance {tol})");
            }
        }
    }
    // `rapid eval --ais`, tiny.
    let base = Base::for_model(&view, Some(&data.train));
    let schedule = Schedule::Sigmoid { intervals: 3 + (seed % 8) as usize, delta: 4.0 };
    let opts = AisOptions { schedule: schedule.clone(), runs: 2, seed, ..AisOptions::default() };
    let est = ais_log_z(&view, &base, &opts);
    let _ = mean_nll(&view, &data.train, est.log_z);
    let ropts = RaiseOptions { schedule, runs: 1, seed, ..RaiseOptions::default() };
    let _ = raise_nll(&view, &base, &data.test[..v], &ropts);
}

/// The bytes with the model block's CRC (and the settings section's, when one follows)
/// recomputed, when the header's payload length places them.
fn fix_crcs(bytes: &[u8]) -> Option<Vec<u8>> {
    let payload = u64::from_le_bytes(bytes.get(24..32)?.try_into().ok()?);
    let end = HEADER_LEN.checked_add(usize::try_from(payload).ok()?)?;
    let mut out = bytes.to_vec();
    let crc = crc32(out.get(..end)?);
    out.get_mut(end..end + CHECKSUM_LEN)?.copy_from_slice(&crc.to_le_bytes());
    let rest = end + CHECKSUM_LEN;
    if out.len() >= rest + 16 + CHECKSUM_LEN {
        let n = out.len() - CHECKSUM_LEN;
        let crc = crc32(&out[rest..n]);
        out[n..].copy_from_slice(&crc.to_le_bytes());
    }
    Some(out)
}

fn check(bytes: &[u8], seed: u64) {
    match read_model_or_checkpoint(bytes) {
        Err(e) => assert!(!e.is_empty()),
        Ok((model, _)) => {
            // The model parsed: it is as its file says.
            let (kind, dims) = model.kind();
            assert_eq!(
                model.params().len(),
                (encoded_len(kind, dims) - HEADER_LEN - CHECKSUM_LEN) / 4
            );
            if let Ok(file) = ModelFile::parse(&model.encode()) {
                assert_eq!((file.kind(), file.dims()), (kind, dims));
            } else {
                panic!("a model that was read does not re-encode to a valid file");
            }
            use_model(&model, seed);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let seed = data.iter().fold(0u64, |s, &b| s.rotate_left(5) ^ u64::from(b));
    check(data, seed);
    if let Some(fixed) = fix_crcs(data) {
        if fixed != data {
            check(&fixed, seed);
        }
    }
});
