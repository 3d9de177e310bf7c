//! The compute kernels of `rapid_core::kernels` at every instruction-set level this CPU has,
//! and the core's FMA peak to compare them with.
//!
//! Run with `cargo bench -p rapid-benches --bench kernels` (an estimated 3 minutes on the 2-core dev
//! machine; the scalar GEMMs on the MNIST shapes take about 0.2 s per call), add `-- --quick`
//! for a short run (about 45 s there), or a filter such as `-- gemm/mnist`, `-- avx512` or
//! `-- fma_peak`.
//!
//! # Levels
//! The binary first prints the level that run-time detection picked (what the dispatched
//! kernels use when nothing is forced). The default build needs no `-C target-cpu` flags:
//! rapid-core's `std` feature, which `benches/Cargo.toml` enables, detects AVX2/AVX-512 with
//! `is_x86_feature_detected!`. Every benchmark id ends with the level that ran: `scalar` (the
//! portable oracle, compiled for baseline x86-64), `avx2`, `avx512`; levels the CPU lacks are
//! skipped. The GEMMs call `gemm_with(level, …)`; the slice kernels have no per-level entry
//! point, so their bench functions call `force(level)` before timing (the level is
//! process-wide) and the detected level is restored after each group.
//!
//! # Groups
//! | id | what | throughput unit |
//! | --- | --- | --- |
//! | `gemm/<size>_<product>/<m>x<n>x<k>/<level>` | `C += α·A·B`, `A` `m×k`, `B` `k×n`, with the strides the core uses | flops |
//! | `tanh_in_place/65536/<level>` | `x ← tanh x` on 65 536 fields uniform in `[−4, 4)` | entries |
//! | `sigmoid2_in_place/65536/<level>` | `x ← σ(2x)` on the same fields | entries |
//! | `sample_pm1_in_place/65536/<level>` | a ±1 draw with `P(+1) = σ(2x)` per field (16 xoshiro128++ lanes, seeded from a `Pcg64` per call) | draws |
//! | `bits/<kernel>/<n>/<bits level>` | the integer kernels on bit-packed ±1 spins (`rapid_core::kernels::bits`) at each available `BitsLevel` (`scalar`, `popcnt`, `avx2`, `avx512`, `avx512vpopcnt`), through their `*_with` entry points: `xor_popcount` and `masked_xor_popcount` over `n` = 16, 144, 784, 4096 bits; `signed_add_i32`, `signed_add_i64`, `signed_sum_i16`, `axpy_i16_i64` over `n` = 64, 1000, 3000 entries; the integer PID block kernels at the Bars 4×4 and BAS 12×12 sizes (`K` = 8, 40; rows = batch + K = 11, 160): `hidden_block/<size>` (one block of 64 hidden units over every row) and `signed_rows_add_i64/<size>` (one pattern's `D_v` over every row, `n` = V = 16, 144), `overlaps_rows/<size>` (the `K` overlaps of one row, every level) | bits (popcounts, `overlaps_rows`), entries (the element kernels), (row, pattern, unit) triples (`hidden_block`), row entries (`signed_rows_add_i64`) |
//! | `fma_peak/<level>` | independent register-only FMAs (`rapid_core::kernels::peak`), one thread, at `avx2` and `avx512` | flops |
//!
//! **For the GEMMs and the FMA peak, criterion's "elements" are flops**: each GEMM sets
//! `Throughput::Elements(2·m·n·k)`, so `Gelem/s` reads as GFLOP/s.
//!
//! The GEMM products, at each paper size (`bars4x4`, `bas12x12`, `mnist`):
//!
//! | product | formula | `m × n × k` | layout |
//! | --- | --- | --- | --- |
//! | `pid_phi` | PID hidden field `Φ = M Ξ_h/√K` | `b × H × K` | `B` = `Ξ_h` inside `Ξ` (row stride `V+H`) |
//! | `pid_proj` | PID projections `U = T Ξ_hᵀ` | `b × K × H` | `B` transposed (`Ξ_hᵀ`, column stride `V+H`) |
//! | `pid_grad_h` | PID gradient `g_h += c·Mᵀ T` | `K × H × b` | `A` transposed (`Mᵀ`), `C` inside the gradient (row stride `V+H`) |
//! | `gibbs_hidden` | dense hidden fields `F = S W` | `r × H × V` | row-major |
//! | `gibbs_visible` | dense visible fields `G = H Wᵀ` | `r × V × H` | `B` transposed (`Wᵀ`) |
//!
//! with `b = min(batch, block_rows)` (the block of `rapid_core::blocks::accumulate_phase`: 3,
//! 120 and 256 rows) and `r = block_rows` (256 chains, the block of the Gibbs chains of
//! `rapid_core::blocks`), where `block_rows` is `StepConfig::block_rows` at its default,
//! `rapid_core::blocks::BLOCK_ROWS`: 256 rows on every architecture. The Bars PID products
//! (`b = 3`) and other small products take the core's direct (unpacked) path; the rest the
//! packed, register-tiled one. The packing buffer has `GEMM_PACK_LEN` entries, enough for
//! every level (`gemm_pack_len(level)` is what each level needs; 0 at the scalar level).
//!
//! # Inputs
//! All from fixed seeds: patterns and spins ±1 ([`random_spins`]), other operands and the
//! fields uniform ([`random_fields`]). The buffers are allocated before timing; a GEMM
//! accumulates into the same `C` every iteration (the time does not depend on the values);
//! each slice-kernel iteration gets a fresh copy of the fields, made outside the timed region
//! ([`BatchSize::PerIteration`]: the copy is excluded, and the 30–200 µs a call takes dwarfs the
//! per-iteration timer overhead).

#![deny(unsafe_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use rand_core::RngCore;
use rapid_benches::{
    available_isas, random_fields, random_spins, report_isa, restore_detected_isa, rng, PaperSize,
    BARS_4X4, BAS_12X12, MNIST,
};
use rapid_core::blocks::BLOCK_ROWS;
use rapid_core::kernels::{
    axpy_i16_i64_with, bits::HiddenBlock, force, gemm_with, hidden_block_with,
    masked_xor_popcount_with, overlaps_rows_with, peak, sample_pm1_in_place, sigmoid2_in_place,
    signed_add_i32_with, signed_add_i64_with, signed_rows_add_i64_with, signed_sum_i16_with,
    tanh_in_place, xor_popcount_with, BitsLevel, GemmDims, MatMut, MatRef, GEMM_PACK_LEN,
};

/// Entries of the slice-kernel benches.
const SLICE_LEN: usize = 1 << 16;
/// Seed of the GEMM operands (each operand adds its own offset).
const GEMM_SEED: u64 = 0x4b45_524e_0001;
/// Seed of the activation fields.
const FIELD_SEED: u64 = 0x4b45_524e_0002;
/// Seed of the RNG handed to `sample_pm1_in_place`.
const DRAW_SEED: u64 = 0x4b45_524e_0003;
/// FMA rounds per timed call of the peak loop (33.5 Mflop at AVX-512).
const FMA_ROUNDS: u64 = 1 << 16;
/// Seed of the bit-kernel inputs.
const BITS_SEED: u64 = 0x4b45_524e_0004;
/// Bits per popcount in the `bits` group: a 4×4 image, 12×12, MNIST's 28×28, 4096.
const POPCOUNT_BITS: [usize; 4] = [16, 144, 784, 4096];
/// Entries of the element-wise bit kernels in the `bits` group.
const BITS_ENTRIES: [usize; 3] = [64, 1000, 3000];
/// The integer PID block kernels in the `bits` group, `(label, V, K, rows)` with
/// `rows = batch + K`: Bars 4×4 (`K = 8`, batch 3) and BAS 12×12 (`K = 40`, batch 120),
/// `H = 1000` (the `--hidden 1000` runs), so a block has 64 units and an update 16 blocks.
const PID_BLOCKS: [(&str, usize, usize, usize); 2] =
    [("bars4x4", 16, 8, 11), ("bas12x12", 144, 40, 160)];

/// One GEMM to time: `C += alpha·A·B` with `A = a` (`m × k`), `B = b` (`k × n`), `C` from
/// offset `c_at` of a buffer with row stride `ldc`.
struct Product<'a> {
    label: String,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef<'a>,
    b: MatRef<'a>,
    c_len: usize,
    c_at: usize,
    ldc: usize,
}

/// Times `p` at every available level, in `group`.
fn bench_product(group: &mut BenchmarkGroup<'_, WallTime>, p: &Product<'_>, pack: &mut [f32]) {
    let mut c = vec![0.0f32; p.c_len];
    group.throughput(Throughput::Elements(2 * (p.m * p.n * p.k) as u64));
    for isa in available_isas() {
        let id = BenchmarkId::new(format!("{}/{}x{}x{}", p.label, p.m, p.n, p.k), isa.name());
        group.bench_function(id, |bench| {
            bench.iter(|| {
                gemm_with(
                    isa,
                    GemmDims { m: p.m, n: p.n, k: p.k },
                    p.alpha,
                    black_box(p.a),
                    black_box(p.b),
                    MatMut { data: &mut c[p.c_at..], rs: p.ldc },
                    pack,
                );
            });
        });
    }
    black_box(&c);
}

/// The three PID phase products of one block (see the file docs) at `size`.
fn pid_products(group: &mut BenchmarkGroup<'_, WallTime>, size: &PaperSize, pack: &mut [f32]) {
    let d = size.dims;
    let (kk, v, h, w) = (d.patterns, d.visible, d.hidden, d.width());
    let b = size.batch.min(BLOCK_ROWS);
    let xi = random_spins(GEMM_SEED, d.xi_len());
    let m_rows = random_fields(GEMM_SEED + 1, b * kk, 8.0); // overlaps M: b × K
    let t_rows = random_fields(GEMM_SEED + 2, b * h, 1.0); // tanh Φ: b × H
    let xh = MatRef { data: &xi[v..], rs: w, cs: 1 }; // Ξ_h: K × H
    let inv_sqrt_k = 1.0 / (kk as f32).sqrt();
    let products = [
        Product {
            label: format!("{}_pid_phi", size.name),
            m: b,
            n: h,
            k: kk,
            alpha: inv_sqrt_k,
            a: MatRef::row_major(&m_rows, kk),
            b: xh,
            c_len: b * h,
            c_at: 0,
            ldc: h,
        },
        Product {
            label: format!("{}_pid_proj", size.name),
            m: b,
            n: kk,
            k: h,
            alpha: 1.0,
            a: MatRef::row_major(&t_rows, h),
            b: xh.t(),
            c_len: b * kk,
            c_at: 0,
            ldc: kk,
        },
        Product {
            label: format!("{}_pid_grad_h", size.name),
            m: kk,
            n: h,
            k: b,
            alpha: inv_sqrt_k / b as f32,
            a: MatRef::row_major(&m_rows, kk).t(),
            b: MatRef::row_major(&t_rows, h),
            c_len: d.xi_len(),
            c_at: v,
            ldc: w,
        },
    ];
    for p in &products {
        bench_product(group, p, pack);
    }
}

/// The two field products of a dense Gibbs step on a block of [`BLOCK_ROWS`] chains at
/// `size`.
fn gibbs_products(group: &mut BenchmarkGroup<'_, WallTime>, size: &PaperSize, pack: &mut [f32]) {
    let (v, h) = (size.dims.visible, size.dims.hidden);
    let r = BLOCK_ROWS;
    let weights = random_fields(GEMM_SEED + 3, v * h, 0.01); // W: V × H
    let s = random_spins(GEMM_SEED + 4, r * v); // visible states: r × V
    let hs = random_spins(GEMM_SEED + 5, r * h); // hidden states: r × H
    let products = [
        Product {
            label: format!("{}_gibbs_hidden", size.name),
            m: r,
            n: h,
            k: v,
            alpha: 1.0,
            a: MatRef::row_major(&s, v),
            b: MatRef::row_major(&weights, h),
            c_len: r * h,
            c_at: 0,
            ldc: h,
        },
        Product {
            label: format!("{}_gibbs_visible", size.name),
            m: r,
            n: v,
            k: h,
            alpha: 1.0,
            a: MatRef::row_major(&hs, h),
            b: MatRef::row_major(&weights, h).t(),
            c_len: r * v,
            c_at: 0,
            ldc: v,
        },
    ];
    for p in &products {
        bench_product(group, p, pack);
    }
}

fn gemm(c: &mut Criterion) {
    let mut pack = vec![0.0f32; GEMM_PACK_LEN];
    let mut group = c.benchmark_group("gemm");
    // Criterion switches to flat sampling when 20 linear samples would take too long (the
    // scalar MNIST products take ~0.1–0.5 s a call).
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Auto)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for size in [BARS_4X4, BAS_12X12, MNIST] {
        pid_products(&mut group, &size, &mut pack);
    }
    for size in [BARS_4X4, BAS_12X12, MNIST] {
        gibbs_products(&mut group, &size, &mut pack);
    }
    group.finish();
}

/// Times `kernel` on a fresh copy of the fields at every level, in group `name`.
fn bench_slice_kernel(c: &mut Criterion, name: &str, mut kernel: impl FnMut(&mut [f32])) {
    let fields = random_fields(FIELD_SEED, SLICE_LEN, 4.0);
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(SLICE_LEN as u64))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for isa in available_isas() {
        group.bench_function(BenchmarkId::new(SLICE_LEN.to_string(), isa.name()), |b| {
            force(isa).expect("available level");
            b.iter_batched_ref(|| fields.clone(), |x| kernel(x), BatchSize::PerIteration);
        });
    }
    group.finish();
    restore_detected_isa();
}

fn slice_kernels(c: &mut Criterion) {
    bench_slice_kernel(c, "tanh_in_place", tanh_in_place);
    bench_slice_kernel(c, "sigmoid2_in_place", sigmoid2_in_place);
    let mut draw_rng = rng(DRAW_SEED);
    bench_slice_kernel(c, "sample_pm1_in_place", |x| sample_pm1_in_place(x, &mut draw_rng));
}

/// The integer bit kernels at every [`BitsLevel`] the CPU has, through their `*_with` entry
/// points (no `force`). The element kernels skip `popcnt` and `avx512vpopcnt`, which run
/// the same code as `scalar` and `avx512` there.
fn bits(c: &mut Criterion) {
    let levels: Vec<BitsLevel> = BitsLevel::ALL.into_iter().filter(|l| l.available()).collect();
    let elementwise: Vec<BitsLevel> = levels
        .iter()
        .copied()
        .filter(|l| !matches!(l, BitsLevel::Popcnt | BitsLevel::Avx512Vpopcnt))
        .collect();
    let mut r = rng(BITS_SEED);
    let mut words = |n: usize| -> Vec<u64> { (0..n).map(|_| r.next_u64()).collect() };
    let mut group = c.benchmark_group("bits");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_millis(1000));
    for n in POPCOUNT_BITS {
        let w = n.div_ceil(64);
        let (a, b, m) = (words(w), words(w), words(w));
        group.throughput(Throughput::Elements(n as u64));
        for &l in &levels {
            group.bench_function(BenchmarkId::new(format!("xor_popcount/{n}"), l.name()), |bn| {
                bn.iter(|| xor_popcount_with(l, black_box(&a), black_box(&b)))
            });
            let id = BenchmarkId::new(format!("masked_xor_popcount/{n}"), l.name());
            group.bench_function(id, |bn| {
                bn.iter(|| masked_xor_popcount_with(l, black_box(&a), black_box(&b), black_box(&m)))
            });
        }
    }
    for n in BITS_ENTRIES {
        let s = words(n.div_ceil(64));
        let raw = words(n);
        let t: Vec<i16> = raw.iter().map(|&x| (x >> 52) as i16).collect();
        let mut acc32 = vec![0i32; n];
        let mut acc64 = vec![0i64; n];
        group.throughput(Throughput::Elements(n as u64));
        for &l in &elementwise {
            let id = BenchmarkId::new(format!("signed_add_i32/{n}"), l.name());
            group.bench_function(id, |bn| {
                bn.iter(|| {
                    signed_add_i32_with(l, black_box(&s), black_box(3), black_box(&mut acc32))
                })
            });
            let id = BenchmarkId::new(format!("signed_add_i64/{n}"), l.name());
            group.bench_function(id, |bn| {
                bn.iter(|| {
                    signed_add_i64_with(l, black_box(&s), black_box(3), black_box(&mut acc64))
                })
            });
            let id = BenchmarkId::new(format!("signed_sum_i16/{n}"), l.name());
            group.bench_function(id, |bn| {
                bn.iter(|| signed_sum_i16_with(l, black_box(&s), black_box(&t)))
            });
            let id = BenchmarkId::new(format!("axpy_i16_i64/{n}"), l.name());
            group.bench_function(id, |bn| {
                bn.iter(|| {
                    axpy_i16_i64_with(l, black_box(-7), black_box(&t), black_box(&mut acc64))
                })
            });
        }
    }
    // Integer PID blocks: `hidden_block` (one block of 64 hidden units over every row) and
    // `signed_rows_add_i64` (one pattern's `D_v` over every row), with the paper sizes' K,
    // rows and V; the tanh table of `K` (length `2·8·⌈√K⌉ + 1`, a ramp to ±2¹⁴).
    for (label, v, k, rows) in PID_BLOCKS {
        let signs = words(k);
        let m: Vec<i32> =
            words(rows * k).iter().map(|&x| (x % (2 * v as u64 + 1)) as i32 - v as i32).collect();
        let r_t = 8 * (k as f64).sqrt().ceil() as i64;
        let tanh: Vec<i16> = (-r_t..=r_t).map(|f| (f * 16384 / r_t) as i16).collect();
        let blk = HiddenBlock {
            signs: &signs,
            stride: 1,
            units: 64,
            patterns: k,
            m: &m,
            data_rows: rows - k,
            weights: [k as i64, -((rows - k) as i64)],
            tanh: &tanh,
        };
        let (mut u, mut g) = (vec![0i32; rows * k], vec![0i64; k * 64]);
        let (mut f, mut t) = (vec![0i32; 64], vec![0i16; 64]);
        let vrows = words(rows * v.div_ceil(64));
        let mut acc = vec![0i64; v];
        // Elements: the rows × K × 64 (row, pattern, unit) triples of a block.
        group.throughput(Throughput::Elements((rows * k * 64) as u64));
        for &l in &elementwise {
            let id = BenchmarkId::new(format!("hidden_block/{label}"), l.name());
            group.bench_function(id, |bn| {
                bn.iter(|| hidden_block_with(l, black_box(&blk), &mut u, &mut g, &mut f, &mut t))
            });
        }
        let vwords = v.div_ceil(64);
        let (patterns, one_row) = (words(k * vwords), words(vwords));
        let mut overlaps = vec![0i32; k];
        group.throughput(Throughput::Elements((k * v) as u64));
        for &l in &levels {
            let id = BenchmarkId::new(format!("overlaps_rows/{label}"), l.name());
            group.bench_function(id, |bn| {
                bn.iter(|| {
                    overlaps_rows_with(
                        l,
                        black_box(&patterns),
                        black_box(&one_row),
                        v as i32,
                        &mut overlaps,
                    )
                })
            });
        }
        group.throughput(Throughput::Elements((rows * v) as u64));
        for &l in &elementwise {
            let id = BenchmarkId::new(format!("signed_rows_add_i64/{label}"), l.name());
            group.bench_function(id, |bn| {
                bn.iter(|| {
                    signed_rows_add_i64_with(
                        l,
                        black_box(&vrows),
                        v.div_ceil(64),
                        black_box(&m),
                        k,
                        -3,
                        black_box(&mut acc),
                    )
                })
            });
        }
    }
    group.finish();
}

/// Register-only FMAs ([`peak::fma_rounds`]) at AVX2 and AVX-512 (the levels the CPU has; the
/// scalar level has no loop), on one thread.
fn fma_peak(c: &mut Criterion) {
    let mut group = c.benchmark_group("fma_peak");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for isa in available_isas() {
        let Some(flops_per_round) = peak::flops_per_round(isa) else { continue };
        group.throughput(Throughput::Elements(FMA_ROUNDS * flops_per_round));
        group.bench_function(isa.name(), |b| {
            b.iter(|| peak::fma_rounds(isa, black_box(FMA_ROUNDS)))
        });
    }
    group.finish();
}

fn main() {
    report_isa("kernels");
    let mut c = Criterion::default().configure_from_args();
    gemm(&mut c);
    slice_kernels(&mut c);
    bits(&mut c);
    fma_peak(&mut c);
    c.final_summary();
}
