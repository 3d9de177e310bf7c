//! `rapid eval`: HD, exact NLL and ground state of a model file, and AIS/RAISE estimates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use rapid_harness::ais::{
    ais_log_z, mean_nll, raise_nll, AisOptions, Base, RaiseOptions, Schedule,
};
use rapid_harness::data::{parse_shape, DatasetSpec, FileSource};
use rapid_harness::exact::MAX_ENUM_BITS;
use rapid_harness::limits;
use rapid_harness::metrics::HdProtocol;
use rapid_harness::model::Model;
use rapid_harness::outln;
use rapid_harness::run::{evaluate, Method, Track};
use serde_json::json;

use super::{check_counts, data_for_model, fail, load_model, whole};

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// The model file, or a checkpoint.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Dataset: bars4, bas:N, mnist, idx:IMAGES[,LABELS] or npy:FILE (its V must match the
    /// model's) [default: the data the model file or checkpoint was trained on].
    #[arg(long)]
    dataset: Option<DatasetSpec>,
    /// Test images for idx:/npy: data.
    #[arg(long, value_name = "FILE")]
    test: Option<FileSource>,
    /// Binarisation threshold for mnist/idx:/npy: data (as in `rapid train`).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    binarize: Option<f32>,
    /// Image shape RxC of flat npy: rows.
    #[arg(long, value_name = "RxC", value_parser = parse_shape)]
    shape: Option<(usize, usize)>,
    /// Seed of the BAS train/test split [default: the model's, else 0].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<u64>)]
    split_seed: Option<u64>,
    /// Seed of the evaluation draws.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = whole::<u64>)]
    seed: u64,
    /// Draws per image in the HD evaluation.
    #[arg(long, default_value_t = 100, allow_hyphen_values = true, value_parser = whole::<usize>)]
    eval_repeats: usize,
    /// Gibbs steps v -> h -> v per HD draw.
    #[arg(long, default_value_t = 1, value_name = "N", allow_hyphen_values = true, value_parser = whole::<usize>)]
    eval_steps: usize,
    /// Hold the kept pixels at the image's values during the HD steps (image completion).
    #[arg(long)]
    eval_clamp: bool,
    /// Largest layer to enumerate for the exact NLL and ground state (at most 30).
    #[arg(long, default_value_t = 24, allow_hyphen_values = true, value_parser = whole::<usize>)]
    max_enum: usize,
    /// Also estimate log Z by annealed importance sampling (any size; base: the training
    /// images' pixel rates), and the NLLs from it.
    #[arg(long)]
    ais: bool,
    /// AIS steps: intervals of a sigmoid schedule, beta_k = (s(d(2k/N - 1)) - s(-d)) /
    /// (s(d) - s(-d)) with d = 4 (fine near both ends).
    #[arg(long, default_value_t = 10_000, value_name = "N", requires = "ais", allow_hyphen_values = true, value_parser = whole::<usize>)]
    ais_betas: usize,
    /// Independent AIS runs.
    #[arg(long, default_value_t = 100, value_name = "M", requires = "ais", allow_hyphen_values = true, value_parser = whole::<usize>)]
    ais_runs: usize,
    /// Test images for RAISE (reverse AIS): an NLL that is high in expectation for the
    /// annealed model, so the other side of AIS where the chains mix; far too low on models
    /// that put their mass on a few states (0: none).
    #[arg(long, default_value_t = 100, value_name = "N", requires = "ais", allow_hyphen_values = true, value_parser = whole::<usize>)]
    raise_images: usize,
    /// Reverse runs per RAISE image.
    #[arg(long, default_value_t = 1, value_name = "M", requires = "ais", allow_hyphen_values = true, value_parser = whole::<usize>)]
    raise_runs: usize,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// The largest energy bound ([`Model::energy_bound`]) `rapid eval` evaluates: far below
/// `f32::MAX` (3.4·10³⁸), so no field or energy summed in `f32` can overflow. Any model trained
/// here stays below it (training stops when a parameter passes ±10⁶).
const ENERGY_LIMIT: f64 = 1e30;

/// The largest `min(V, H)` whose singular values `rapid eval` computes (a Gram matrix of
/// n² doubles and Jacobi sweeps of O(n³) each).
const SVD_MAX: usize = 2048;

pub(crate) fn cmd_eval(a: EvalArgs) -> ExitCode {
    if let Err(e) = check_counts(&[
        ("--eval-repeats", a.eval_repeats),
        ("--eval-steps", a.eval_steps),
        ("--ais-betas", a.ais_betas),
        ("--ais-runs", a.ais_runs),
        ("--raise-images", a.raise_images),
        ("--raise-runs", a.raise_runs),
    ]) {
        return fail(2, e);
    }
    let (model, made) = match load_model(&a.model) {
        Ok(m) => m,
        Err(e) => return fail(2, e),
    };
    let (data, data_origin) = match data_for_model(
        a.dataset.as_ref(),
        a.test.clone(),
        a.binarize,
        a.shape,
        a.split_seed,
        made.as_ref(),
    ) {
        Ok(d) => d,
        Err(e) => return fail(2, e),
    };
    let view = model.view();
    if view.visible() != data.visible() {
        return fail(
            2,
            format_args!(
                "the model has V={} but {} images have {} pixels",
                view.visible(),
                data.spec,
                data.visible()
            ),
        );
    }
    if a.eval_repeats == 0 {
        return fail(2, "--eval-repeats must be at least 1");
    }
    if a.max_enum > MAX_ENUM_BITS {
        return fail(
            2,
            format_args!(
                "--max-enum {} is above the limit of {MAX_ENUM_BITS} (2^{MAX_ENUM_BITS} states)",
                a.max_enum
            ),
        );
    }
    let (v, h) = (view.visible(), view.hidden());
    // Why the exact quantities are skipped, if they are: too many states, or too much work.
    let not_enumerated = if v.min(h) > a.max_enum {
        Some(format!("min(V, H) = {} is above --max-enum {}", v.min(h), a.max_enum))
    } else {
        limits::check_enum_work(v, h).err().map(|e| e.to_string())
    };
    let enumerable = not_enumerated.is_none();
    // The singular values come from the smaller side's Gram matrix: V·H floats for W, n²
    // doubles and O(n³) Jacobi sweeps; skipped beyond SVD_MAX or the memory budget.
    let n = v.min(h);
    let svd_bytes = 4 * v as u128 * h as u128 + 8 * n as u128 * n as u128;
    let no_svd = if n > SVD_MAX {
        Some(format!("min(V, H) = {n} is above {SVD_MAX} (the cost grows as min(V, H)³)"))
    } else {
        limits::check_memory("the singular values of W", svd_bytes).err().map(|e| e.to_string())
    };
    let track = Track { gs: enumerable, method: false, svd: no_svd.is_none(), nll: enumerable };
    if a.eval_steps == 0 {
        return fail(2, "--eval-steps must be at least 1");
    }
    let protocol = HdProtocol { repeats: a.eval_repeats, steps: a.eval_steps, clamp: a.eval_clamp };
    let method = if matches!(model, Model::Ra { .. }) {
        Method::Pid(rapid_core::NegativePhase::Patterns)
    } else {
        Method::Exact
    };
    // Parameters this large overflow the f32 sums (fields, energies) and give numbers that are
    // finite but wrong (singular values of 0 for an infinite W): refuse them.
    let bound = model.energy_bound();
    if bound.is_nan() || bound > ENERGY_LIMIT {
        return fail(
            1,
            format_args!(
                "cannot evaluate {}: its parameters reach |x| = {:.1e}, so an energy may reach \
                 {bound:.1e}, beyond what f32 arithmetic holds (limit {ENERGY_LIMIT:.0e})",
                a.model.display(),
                model.largest_param()
            ),
        );
    }
    let e = match evaluate(&model, method, &[], &data, protocol, track, a.seed, 0) {
        Ok(e) => e,
        Err(e) => return fail(1, e),
    };
    if a.ais && (a.ais_betas < 3 || a.ais_runs == 0 || a.raise_runs == 0) {
        return fail(2, "--ais-betas must be at least 3, --ais-runs and --raise-runs at least 1");
    }
    let ais = a.ais.then(|| {
        let base = Base::for_model(&view, Some(&data.train));
        let schedule = Schedule::Sigmoid { intervals: a.ais_betas, delta: 4.0 };
        let t0 = Instant::now();
        let est = ais_log_z(
            &view,
            &base,
            &AisOptions {
                schedule: schedule.clone(),
                runs: a.ais_runs,
                seed: a.seed,
                ..AisOptions::default()
            },
        );
        let nll_train = mean_nll(&view, &data.train, est.log_z);
        let nll_test = mean_nll(&view, &data.test, est.log_z);
        let n = a.raise_images.min(data.n_test());
        let raise = (n > 0).then(|| {
            raise_nll(
                &view,
                &base,
                &data.test[..n * data.visible()],
                &RaiseOptions {
                    schedule,
                    runs: a.raise_runs,
                    seed: a.seed,
                    ..RaiseOptions::default()
                },
            )
        });
        (est, nll_train, nll_test, raise, n, t0.elapsed().as_secs_f64())
    });
    let uniform = view.visible() as f64 * std::f64::consts::LN_2;
    // Every result must be a number: a NaN or infinity is an error naming the quantity.
    let mut results: Vec<(&str, f64)> = vec![("HD train", e.hd_train), ("HD test", e.hd_test)];
    for (name, x) in [
        ("exact NLL train", e.nll_train),
        ("exact NLL test", e.nll_test),
        ("ground-state energy E_GS", e.e_gs),
        ("Gibbs GS access", e.gs_access),
    ] {
        results.extend(x.map(|x| (name, x)));
    }
    results.extend(e.svd.iter().flatten().map(|&x| ("a singular value of W", x)));
    if let Some((est, tr, te, raise, _, _)) = &ais {
        results.extend([("AIS log Z", est.log_z), ("AIS NLL train", *tr), ("AIS NLL test", *te)]);
        results.extend(raise.as_ref().map(|r| ("RAISE NLL", r.mean_nll)));
    }
    if let Some((name, x)) = results.iter().find(|(_, x)| !x.is_finite()) {
        return fail(1, format_args!("the evaluation of {} gave {name} = {x}", a.model.display()));
    }
    if a.json {
        let ais_json = ais.as_ref().map(|(est, tr, te, raise, n, secs)| {
            json!({
                "betas": a.ais_betas,
                "runs": a.ais_runs,
                "log_z": est.log_z,
                "log_z_std_err": est.std_err,
                "log_z_low_3sd": if est.log_z_low.is_finite() { Some(est.log_z_low) } else { None },
                "log_z_high_3sd": est.log_z_high,
                "ess": est.ess,
                "nll_train": tr,
                "nll_test": te,
                "raise_images": n,
                "raise_nll_test": raise.as_ref().map(|r| r.mean_nll),
                "raise_std_err": raise.as_ref().map(|r| r.std_err),
                "seconds": secs,
            })
        });
        outln!(
            "{}",
            json!({
                "uniform_nll": uniform,
                "ais": ais_json,
                "model": a.model.display().to_string(),
                "kind": model.describe(),
                "dataset": data.spec.to_string(),
                "dataset_from": data_origin,
                "trained": made.as_ref().map(|p| json!({
                    "method": p.config.method.to_string(),
                    "epochs": p.config.epochs,
                    "seed": p.config.seed,
                    "checkpoint": p.checkpoint,
                })),
                "hd_train": e.hd_train,
                "hd_test": e.hd_test,
                "nll_train": e.nll_train,
                "nll_test": e.nll_test,
                "ground_state_energy": e.e_gs,
                "gs_access": e.gs_access,
                "singular_values": e.svd,
                "exact_skipped": not_enumerated,
                "svd_skipped": no_svd,
            })
        );
    } else {
        outln!("model            {} ({})", a.model.display(), model.describe());
        if let Some(p) = &made {
            outln!(
                "trained          method {}, {} epochs, seed {}{}",
                p.config.method,
                p.config.epochs,
                p.config.seed,
                if p.checkpoint { " (a checkpoint: the run may not be finished)" } else { "" }
            );
        }
        outln!(
            "dataset          {} ({} train / {} test; from {data_origin})",
            data.spec,
            data.n_train(),
            data.n_test()
        );
        outln!(
            "HD train / test  {:.4} / {:.4}  ({} draws per image; 0 = perfect, 0.5 = guessing)",
            e.hd_train,
            e.hd_test,
            a.eval_repeats
        );
        match (e.nll_train, e.nll_test, e.e_gs, e.gs_access) {
            (Some(tr), Some(te), Some(gs), Some(acc)) => {
                outln!("exact NLL        {tr:.4} train / {te:.4} test (nats per image)");
                outln!("ground state     E_GS = {gs:.4}");
                outln!("Gibbs GS access  {acc:.4}");
            }
            _ => {
                outln!("exact NLL        not computed: {}", not_enumerated.as_deref().unwrap_or(""))
            }
        }
        outln!(
            "uniform model    NLL {uniform:.4} = V·ln 2 (any model worth having is below it); HD 0.5 = guessing"
        );
        if let Some((est, tr, te, raise, n, secs)) = &ais {
            outln!(
                "AIS log Z        {:.4} ± {:.4} (std. error over {} runs, {} betas; ESS {:.1}; {secs:.1} s)",
                est.log_z, est.std_err, a.ais_runs, a.ais_betas, est.ess
            );
            outln!(
                "AIS NLL          {tr:.4} train / {te:.4} test (nats per image; in expectation a lower bound: AIS underestimates log Z)"
            );
            if let Some(r) = raise {
                outln!(
                    "RAISE NLL        {:.4} ± {:.4} on {n} test images (in expectation an upper bound, for the annealed model)",
                    r.mean_nll, r.std_err
                );
            }
        }
        if let Some(sv) = &e.svd {
            let shown: Vec<String> = sv.iter().take(8).map(|x| format!("{x:.3}")).collect();
            outln!("singular values  {}{}", shown.join(" "), if sv.len() > 8 { " …" } else { "" });
        }
        if let Some(why) = &no_svd {
            outln!("singular values  not computed: {why}");
        }
    }
    ExitCode::SUCCESS
}
