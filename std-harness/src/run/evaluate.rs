//! Measuring a model ([`Evaluation`], [`evaluate`]), the per-epoch [`EpochReport`] of
//! [`Trainer::next_epoch`], and whole runs ([`train`], [`Trained`]).

use super::config::{Method, Track, TrainConfig, TrainError};
use super::trainer::Trainer;
use crate::data::Dataset;
use crate::exact::{self, ExactError};
use crate::linalg::singular_values;
use crate::metrics::{
    cd_min_energy, chains_min_energy, gibbs_gs_accessibility, pattern_min_energy,
    reconstruction_hd, HdProtocol,
};
use crate::model::{Model, ModelRef};
use crate::seed::{stream, Stream};

/// What one epoch produced.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// Epoch number (1-based).
    pub epoch: u32,
    /// Wall seconds spent training in this epoch (evaluation excluded).
    pub seconds: f64,
    /// Learning rate used in this epoch.
    pub lr: f32,
    /// Reconstruction HD on the training set, when evaluated this epoch.
    pub hd_train: Option<f64>,
    /// Reconstruction HD on the test set, when evaluated this epoch.
    pub hd_test: Option<f64>,
    /// Gibbs GS accessibility, when tracked.
    pub gs_access: Option<f64>,
    /// Method accessibility, when tracked (none for exact training).
    pub method_access: Option<f64>,
    /// Singular values of `W`, largest first, when tracked.
    pub svd: Option<Vec<f64>>,
    /// Exact mean NLL of the training set, when tracked.
    pub nll_train: Option<f64>,
    /// Exact mean NLL of the test set, when tracked.
    pub nll_test: Option<f64>,
}

impl Trainer {
    /// Trains the next epoch and evaluates it when due (every `eval_every` epochs and at
    /// `cfg.epochs`).
    ///
    /// # Errors
    /// [`TrainError::NonFinite`], or an enumeration that is too large.
    pub fn next_epoch(&mut self, data: &Dataset) -> Result<EpochReport, TrainError> {
        let lr = self.lr();
        let seconds = self.train_epoch(data)?;
        let (epoch, every) = (self.epochs_done(), self.config().eval_every);
        let due = epoch == self.config().epochs || (every > 0 && epoch % every == 0);
        self.epoch_report(data, seconds, lr, due)
    }

    /// The report of the epoch just trained (in `seconds`, at learning rate `lr`), with the
    /// model evaluated when `evaluate` is set: for callers that choose the evaluated epochs
    /// themselves. An evaluation gives the same numbers whichever epochs are evaluated (its
    /// randomness is keyed by the seed and the epoch).
    ///
    /// # Errors
    /// An enumeration that is too large.
    pub fn epoch_report(
        &self,
        data: &Dataset,
        seconds: f64,
        lr: f32,
        evaluate: bool,
    ) -> Result<EpochReport, TrainError> {
        let epoch = self.epochs_done();
        let mut r = EpochReport {
            epoch,
            seconds,
            lr,
            hd_train: None,
            hd_test: None,
            gs_access: None,
            method_access: None,
            svd: None,
            nll_train: None,
            nll_test: None,
        };
        if evaluate {
            let e = self.evaluate(data, self.config().track)?;
            r.hd_train = Some(e.hd_train);
            r.hd_test = Some(e.hd_test);
            r.gs_access = e.gs_access;
            r.method_access = e.method_access;
            r.svd = e.svd;
            r.nll_train = e.nll_train;
            r.nll_test = e.nll_test;
        }
        Ok(r)
    }

    /// Evaluates the current model: HD always, the rest as `track` asks.
    ///
    /// # Errors
    /// An enumeration that is too large (prevented by [`TrainConfig::validate`]).
    pub fn evaluate(&self, data: &Dataset, track: Track) -> Result<Evaluation, TrainError> {
        evaluate(
            self.model(),
            self.config().method,
            &self.pcd_chains(),
            data,
            self.config().eval,
            track,
            self.config().seed,
            u64::from(self.epochs_done()),
        )
    }
}

/// Everything measured on a model at one point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// HD on the training set.
    pub hd_train: f64,
    /// HD on the test set.
    pub hd_test: f64,
    /// Gibbs GS accessibility.
    pub gs_access: Option<f64>,
    /// Method accessibility.
    pub method_access: Option<f64>,
    /// Singular values of `W`.
    pub svd: Option<Vec<f64>>,
    /// Exact mean NLL of the training set.
    pub nll_train: Option<f64>,
    /// Exact mean NLL of the test set.
    pub nll_test: Option<f64>,
    /// Exact ground-state energy, when computed.
    pub e_gs: Option<f64>,
}

/// Evaluates a model: HD always; accessibilities, SVD and NLL when asked. `method` says which
/// configurations count for the method accessibility (`chains` are PCD's). Random draws come
/// from evaluation streams tagged with `tag`, never from training.
///
/// # Errors
/// [`TrainError::Exact`] when an enumeration is too large.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &Model,
    method: Method,
    chains: &[f32],
    data: &Dataset,
    protocol: HdProtocol,
    track: Track,
    seed: u64,
    tag: u64,
) -> Result<Evaluation, TrainError> {
    let view = model.view();
    let mut e = Evaluation {
        hd_train: reconstruction_hd(&view, &data.train, &data.kept, protocol, seed, 2 * tag),
        hd_test: reconstruction_hd(&view, &data.test, &data.kept, protocol, seed, 2 * tag + 1),
        ..Evaluation::default()
    };
    if track.gs || track.method {
        view.with_bipartite(|bip| -> Result<(), TrainError> {
            let gs = exact::ground_state(bip)?;
            e.e_gs = Some(gs.energy);
            let mut rng = stream(seed, Stream::Eval, tag, u64::MAX);
            if track.gs {
                e.gs_access = Some(gibbs_gs_accessibility(&view, bip, gs.energy, 10, 10, &mut rng));
            }
            if track.method {
                let min_e = match (method, &view) {
                    (Method::Pid(_), ModelRef::Ra(m)) => Some(pattern_min_energy(m, bip)),
                    (Method::Pcd { .. }, _) => {
                        Some(chains_min_energy(&view, bip, chains, &mut rng))
                    }
                    (Method::Cd { k }, _) => {
                        Some(cd_min_energy(&view, bip, &data.train, k as usize, 10, &mut rng))
                    }
                    _ => None,
                };
                e.method_access = min_e.map(|x| x / gs.energy);
            }
            Ok(())
        })?;
    }
    if track.svd {
        e.svd = Some(singular_values(&view.weights(), view.visible(), view.hidden()));
    }
    if track.nll {
        // log Z once for both sets.
        let (a, b) = view.with_bipartite(|m| -> Result<(f64, f64), ExactError> {
            let lz = exact::log_z(m)?;
            let mean_f = |rows: &[f32]| {
                let n = rows.len() / m.visible;
                rows.chunks_exact(m.visible).map(|v| exact::free_energy(m, v)).sum::<f64>()
                    / n as f64
            };
            Ok((mean_f(&data.train) + lz, mean_f(&data.test) + lz))
        })?;
        e.nll_train = Some(a);
        e.nll_test = Some(b);
    }
    Ok(e)
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The trained model.
    pub model: Model,
    /// One report per epoch.
    pub reports: Vec<EpochReport>,
}

impl Trained {
    /// Total training seconds (evaluation excluded).
    pub fn train_seconds(&self) -> f64 {
        self.reports.iter().map(|r| r.seconds).sum()
    }
}

/// Trains on `data`, evaluating as configured and calling `on_epoch` after each epoch.
///
/// # Errors
/// A configuration problem (before any work), or [`TrainError::NonFinite`].
pub fn train(
    cfg: &TrainConfig,
    data: &Dataset,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<Trained, TrainError> {
    let mut t = Trainer::new(cfg, data)?;
    let mut reports = Vec::with_capacity(cfg.epochs as usize);
    while t.epochs_done() < cfg.epochs {
        let r = t.next_epoch(data)?;
        on_epoch(&r);
        reports.push(r);
    }
    Ok(Trained { model: t.into_model(), reports })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{bars4, DatasetSpec};
    use rapid_core::NegativePhase;

    #[test]
    fn training_is_reproducible_and_independent_of_evaluation() {
        let d = Dataset::new(DatasetSpec::Bars4, 0);
        for method in [
            Method::Pid(NegativePhase::Patterns),
            Method::Cd { k: 2 },
            Method::Pcd { k: 1, chains: 16 },
            Method::Exact,
        ] {
            let cfg = TrainConfig { epochs: 3, hidden: 20, ..TrainConfig::paper(method) };
            let a = train(&cfg, &d, |_| {}).unwrap();
            let b = train(&TrainConfig { eval_every: 0, ..cfg }, &d, |_| {}).unwrap();
            assert_eq!(a.model, b.model, "{method}");
            assert!(a.reports.iter().all(|r| r.hd_test.is_some()));
            assert!(b.reports[..2].iter().all(|r| r.hd_test.is_none()));
            assert_eq!(a.reports[2].hd_test, b.reports[2].hd_test);
            let c = train(&TrainConfig { seed: 1, ..cfg }, &d, |_| {}).unwrap();
            assert_ne!(a.model, c.model, "{method}");
        }
    }

    /// An epoch evaluated alone gives the numbers it gives when every epoch is evaluated, and
    /// evaluating fewer epochs leaves the model alone.
    #[test]
    fn an_epochs_numbers_do_not_depend_on_the_other_epochs_evaluated() {
        let d = bars4();
        let track = Track { gs: true, method: true, svd: true, nll: true };
        for method in [Method::Pid(NegativePhase::Patterns), Method::Pcd { k: 1, chains: 8 }] {
            let cfg = TrainConfig { epochs: 5, hidden: 12, track, ..TrainConfig::paper(method) };
            let every = train(&cfg, &d, |_| {}).unwrap();
            let mut t = Trainer::new(&cfg, &d).unwrap();
            for e in 1..=5u32 {
                let lr = t.lr();
                let seconds = t.train_epoch(&d).unwrap();
                let r = t.epoch_report(&d, seconds, lr, e == 3).unwrap();
                let want = &every.reports[e as usize - 1];
                assert_eq!((r.epoch, r.lr), (want.epoch, want.lr));
                if e == 3 {
                    assert_eq!(EpochReport { seconds: want.seconds, ..r }, *want, "{method}");
                } else {
                    assert!(r.hd_test.is_none() && r.svd.is_none() && r.gs_access.is_none());
                }
            }
            assert_eq!(t.into_model(), every.model, "{method}");
        }
    }

    #[test]
    fn tracking_reports_what_was_asked() {
        let d = bars4();
        let track = Track { gs: true, method: true, svd: true, nll: true };
        for method in [
            Method::Pid(NegativePhase::Patterns),
            Method::Cd { k: 2 },
            Method::Pcd { k: 1, chains: 8 },
            Method::Exact,
        ] {
            let cfg = TrainConfig { epochs: 2, hidden: 12, track, ..TrainConfig::paper(method) };
            let t = train(&cfg, &d, |_| {}).unwrap();
            let r = &t.reports[1];
            let gs = r.gs_access.unwrap();
            assert!(gs > 0.0 && gs <= 1.0, "{method}: gs accessibility {gs}");
            match method {
                Method::Exact => assert!(r.method_access.is_none()),
                _ => {
                    let m = r.method_access.unwrap();
                    assert!(m <= 1.0, "{method}: method accessibility {m}");
                }
            }
            assert_eq!(r.svd.as_ref().unwrap().len(), 12);
            assert!(r.nll_train.unwrap() > 0.0 && r.nll_test.unwrap() > 0.0);
            // The shared log Z gives the same NLL as exact::mean_nll.
            let want = t.model.view().with_bipartite(|m| exact::mean_nll(m, &d.test)).unwrap();
            assert!((r.nll_test.unwrap() - want).abs() < 1e-9 * want.abs());
        }
    }
}
