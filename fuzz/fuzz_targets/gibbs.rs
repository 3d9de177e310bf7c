//! Block Gibbs sampling on small models built from the input: the dense packed sampler
//! (`gibbs_packed`, `V ∈ 1..=130` so word boundaries are crossed, `H ∈ 1..=8`, with or without
//! biases) and the RA sampler (`ra::gibbs::gibbs_step`, `V ∈ 1..=130`, `H, K ∈ 1..=8`).
//!
//! Parameters are finite: either dyadic values in `[−2, 2)` (one byte each) or any finite `f32`
//! bit pattern (four bytes each; NaN and ±inf read as 0), so fields may overflow to ±inf or NaN
//! inside the sampler. Checks:
//! * the packed state still passes `PackedSpins::new_checked` (padding bits 0) and every spin,
//!   visible and hidden, is exactly ±1;
//! * the same seed gives the same chain;
//! * with dyadic parameters (every field exact in `f32`), `gibbs_packed` draws exactly what the
//!   unpacked half-steps `dense::sample_hidden` / `dense::sample_visible` draw;
//! * the RA sampler leaves only ±1 values in `v` and `h`;
//! * the block sampler `blocks::gibbs_rows` (the one the training step uses), on `1..=8` rows
//!   that start at the start state with some entries 0 (neutral), in blocks of `1..=4` rows,
//!   for both models: only ±1 values after at least one step, rows untouched after zero steps,
//!   and the same seed gives the same rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use rapid_core::blocks::{block_scratch_len, gibbs_rows, BlockModel, Workspace};
use rapid_core::dense::{self, gibbs_packed, DenseDims, DenseRbm};
use rapid_core::kernels::active;
use rapid_core::ra::gibbs::{gibbs_scratch_len, gibbs_step};
use rapid_core::ra::model::{Dims, RaModel};
use rapid_core::spins::{words_for, PackedSpins, WORD_BITS};

#[path = "../common/bytes.rs"]
mod bytes;
use bytes::Bytes;

impl Bytes<'_> {
    /// A finite parameter: dyadic in `[−2, 2)` when `dyadic`, else any finite `f32`.
    fn param(&mut self, dyadic: bool) -> f32 {
        if dyadic {
            self.unit()
        } else {
            let x = f32::from_bits(u32::from_le_bytes(core::array::from_fn(|_| self.u8())));
            if x.is_finite() {
                x
            } else {
                0.0
            }
        }
    }
}

fn is_pm1(x: f32) -> bool {
    x.to_bits() == 1.0f32.to_bits() || x.to_bits() == (-1.0f32).to_bits()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let flags = input.u8();
    let dyadic = flags & 1 == 0;
    let biases = flags & 2 != 0;
    let steps = u32::from((flags >> 2) % 5); // 0..=4
    let seed = input.u64();
    let nv = input.size(130);
    let nh = input.size(8);
    let d = DenseDims::new(nv, nh, biases);
    let params: Vec<f32> = (0..d.param_len()).map(|_| input.param(dyadic)).collect();
    let nw = words_for(nv);
    let mut start: Vec<u64> = (0..nw).map(|_| input.u64()).collect();
    if nv % WORD_BITS != 0 {
        start[nw - 1] &= (1u64 << (nv % WORD_BITS)) - 1;
    }
    PackedSpins::new_checked(&start[..], nv).expect("masked start state is valid");

    let mut vf_start = vec![0.0f32; nv];
    PackedSpins::new_checked(&start[..], nv).unwrap().to_f32(&mut vf_start);

    // Dense, packed.
    let model = DenseRbm::new(&params[..], d);
    let mut colsum = vec![0.0f32; nh];
    model.column_sums(&mut colsum);
    let run = |seed: u64| {
        let mut words = start.clone();
        let mut h = vec![0.5f32; dense::gibbs_scratch_len(d)];
        let mut v = PackedSpins::new_checked(&mut words[..], nv).unwrap();
        gibbs_packed(&model, &colsum, &mut v, steps, &mut h, &mut Pcg32::seed_from_u64(seed));
        (words, h)
    };
    let (words, h) = run(seed);
    let v = PackedSpins::new_checked(&words[..], nv).expect("padding bits stay zero");
    assert!((0..nv).all(|i| v.get(i) == 1 || v.get(i) == -1));
    if steps > 0 {
        assert!(h.iter().all(|&x| is_pm1(x)), "hidden state not ±1: {h:?}");
    } else {
        assert_eq!(words, start, "zero steps must leave the chain alone");
    }
    assert_eq!(run(seed), (words.clone(), h.clone()), "same seed, different chain");

    if dyadic {
        // Every field is exact in f32, so the unpacked half-steps draw the same spins.
        let mut vf = vec![0.0f32; nv];
        PackedSpins::new_checked(&start[..], nv).unwrap().to_f32(&mut vf);
        let mut hf = vec![0.5f32; nh];
        let mut rng = Pcg32::seed_from_u64(seed);
        for _ in 0..steps {
            dense::sample_hidden(&model, &vf, &mut hf, &mut rng);
            dense::sample_visible(&model, &hf, &mut vf, &mut rng);
        }
        let mut back = vec![0.0f32; nv];
        v.to_f32(&mut back);
        assert_eq!(back, vf, "packed and unpacked chains differ (V={nv} H={nh} {steps} steps)");
        assert_eq!(h, hf, "packed and unpacked hidden states differ");
    }

    // RA: the visible layer reuses V, with its own H and K.
    let dims = Dims::new(nv, input.size(8), input.size(8));
    let xi: Vec<f32> = (0..dims.xi_len()).map(|_| input.param(dyadic)).collect();
    let ra = RaModel::new(&xi[..], dims).expect("sizes 1..=130 and 1..=8 are valid");
    let mut vr = vec![0.0f32; nv];
    PackedSpins::new_checked(&start[..], nv).unwrap().to_f32(&mut vr);
    let mut hr = vec![0.0f32; dims.hidden];
    let mut scratch = vec![0.0f32; gibbs_scratch_len(dims)];
    let mut rng = Pcg32::seed_from_u64(seed);
    for _ in 0..steps.max(1) {
        gibbs_step(&ra, &mut vr, &mut hr, &mut scratch, &mut rng);
        assert!(vr.iter().all(|&x| is_pm1(x)), "RA visible state not ±1: {vr:?}");
        assert!(hr.iter().all(|&x| is_pm1(x)), "RA hidden state not ±1: {hr:?}");
    }

    // Block chains, both models: rows from the start state, some spins neutral (0).
    let n_rows = input.size(8);
    let block_rows = input.size(4);
    let neutral = input.u64();
    let start_rows: Vec<f32> = (0..n_rows)
        .flat_map(|r| {
            let vf = &vf_start;
            (0..nv).map(move |i| if (neutral >> ((r * 7 + i) % 64)) & 1 == 1 { 0.0 } else { vf[i] })
        })
        .collect();
    block_chains(&model, &start_rows, steps, block_rows, seed);
    block_chains(&ra, &start_rows, steps, block_rows, seed);
});

/// `gibbs_rows` on `rows` in blocks of `block_rows`: ±1 after a step, unchanged after none,
/// reproducible.
fn block_chains<M: BlockModel>(model: &M, rows: &[f32], steps: u32, block_rows: usize, seed: u64) {
    let (v, h, w) = (model.visible(), model.hidden(), model.row_work());
    let n = rows.len() / v;
    let run = || {
        let mut out = rows.to_vec();
        let mut scratch = vec![0.0f32; block_scratch_len(active(), v, h, w, block_rows.min(n))];
        let mut ws = Workspace::new(&mut scratch, block_rows);
        gibbs_rows(model, &mut out, steps, &mut ws, &mut Pcg32::seed_from_u64(seed));
        out
    };
    let out = run();
    if steps == 0 {
        assert_eq!(out, rows, "zero steps must leave the rows alone");
    } else {
        assert!(out.iter().all(|&x| is_pm1(x)), "block chain state not ±1: {out:?}");
    }
    let again = run();
    assert!(out.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "not reproducible");
}
