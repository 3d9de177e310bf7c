//! [`Fit`]: the whole training loop in one call, for Rust callers who want a trained model and
//! its per-epoch reports without driving the [`Trainer`](super::Trainer) themselves.
//!
//! A `Fit` starts from the dataset's preset, the set-up `rapid train --dataset D` runs
//! ([`Preset::for_data`]), or from a whole [`TrainConfig`] ([`Fit::with_config`]); each setter
//! then overrides one setting, as a command-line option does. [`Fit::fit`] runs [`train`] and
//! returns its [`Trained`]: the model and one [`EpochReport`] per epoch.
//!
//! ```
//! use rapid_harness::data::{Dataset, DatasetSpec};
//! use rapid_harness::run::Fit;
//!
//! let bars = Dataset::new(DatasetSpec::Bars4, 0); // the paper's 10 training, 4 test images
//! let trained = Fit::new() // the bars4 preset: RAPID, V = 16, H = 1000, K = 8
//!     .epochs(50)
//!     .seed(0)
//!     .fit(&bars)
//!     .unwrap();
//! assert_eq!(trained.reports.len(), 50);
//! let last = trained.reports.last().unwrap();
//! println!("test HD {:?} after {:.3} s", last.hd_test, trained.train_seconds());
//! assert!(last.hd_test.unwrap() < 0.1); // random guessing scores 0.5
//! // The bare model file; `encode_with_settings` adds how it was made, as `rapid train` does.
//! let bytes = trained.model.encode();
//! # assert!(!bytes.is_empty());
//! ```
//!
//! A `Fit` trains through the same [`Trainer`](super::Trainer) as `rapid train`, so the same
//! settings and seed give the same parameters, bit for bit, at the same kernel level, on any
//! number of threads.

use super::config::{Method, Preset, TrainConfig, TrainError};
use super::evaluate::{train, EpochReport, Trained};
use crate::data::Dataset;

/// A change to the settings ([`Fit::configure`]).
type Edit<'a> = Box<dyn Fn(&mut TrainConfig) + Send + 'a>;
/// The per-epoch callback ([`Fit::on_epoch`]).
type OnEpoch<'a> = Box<dyn FnMut(&EpochReport) + Send + 'a>;

/// A training run to be done: settings now, data at [`Fit::fit`].
///
/// Built with [`Fit::new`] (the dataset's preset) or [`Fit::with_config`]; each setter
/// overrides one setting of that base and returns the `Fit`, so calls chain. The
/// learning-rate schedule, projection, optimiser and the rest are the base's, or the ones
/// set through [`Fit::configure`].
pub struct Fit<'a> {
    base: Option<TrainConfig>,
    method: Option<Method>,
    edits: Vec<Edit<'a>>,
    on_epoch: Option<OnEpoch<'a>>,
}

impl Default for Fit<'_> {
    fn default() -> Self {
        Fit::new()
    }
}

impl std::fmt::Debug for Fit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fit")
            .field("base", &self.base)
            .field("method", &self.method)
            .field("edits", &self.edits.len())
            .field("on_epoch", &self.on_epoch.is_some())
            .finish()
    }
}

impl<'a> Fit<'a> {
    /// A run with the preset of the data given to [`Fit::fit`] ([`Preset::for_data`]): on
    /// Bars 4×4, the paper's RAPID set-up (300 epochs, seed 0); on BAS, the paper's Fig. 4a
    /// set-up; on MNIST and files, the authors' MNIST notebook.
    pub fn new() -> Self {
        Fit { base: None, method: None, edits: Vec::new(), on_epoch: None }
    }

    /// A run with exactly `config` (before the setters' overrides), whatever the data.
    pub fn with_config(config: TrainConfig) -> Self {
        Fit { base: Some(config), ..Fit::new() }
    }

    /// The method. With [`Fit::new`] the preset is the one for this method (as
    /// `rapid train --method`: the baselines get their own optimiser, batch and model);
    /// with [`Fit::with_config`] only the method field changes.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Epochs to train.
    pub fn epochs(self, epochs: u32) -> Self {
        self.configure(move |c| c.epochs = epochs)
    }

    /// The seed of initialisation, shuffles and Gibbs draws.
    pub fn seed(self, seed: u64) -> Self {
        self.configure(move |c| c.seed = seed)
    }

    /// Hidden units `H`.
    pub fn hidden(self, hidden: usize) -> Self {
        self.configure(move |c| c.hidden = hidden)
    }

    /// Patterns `K` (RA models).
    pub fn patterns(self, patterns: usize) -> Self {
        self.configure(move |c| c.patterns = patterns)
    }

    /// Images per update.
    pub fn batch(self, batch: usize) -> Self {
        self.configure(move |c| c.batch = batch)
    }

    /// The initial learning rate.
    pub fn lr(self, lr: f32) -> Self {
        self.configure(move |c| c.lr = lr)
    }

    /// Evaluate every this many epochs (and after the last); 0 evaluates after the last epoch
    /// only. Evaluation never changes training.
    pub fn eval_every(self, every: u32) -> Self {
        self.configure(move |c| c.eval_every = every)
    }

    /// Any other change to the settings, applied after the base and the earlier setters, in
    /// the order given.
    ///
    /// ```
    /// use rapid_core::optim::Projection;
    /// use rapid_harness::run::Fit;
    ///
    /// let fit = Fit::new().configure(|c| c.projection = Projection::Clamp { bound: 1.0 });
    /// # let _ = fit;
    /// ```
    pub fn configure(mut self, edit: impl Fn(&mut TrainConfig) + Send + 'a) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// Calls `f` after every epoch with its report (for progress or early inspection).
    pub fn on_epoch(mut self, f: impl FnMut(&EpochReport) + Send + 'a) -> Self {
        self.on_epoch = Some(Box::new(f));
        self
    }

    /// The settings [`Fit::fit`] would train `data` with.
    pub fn config_for(&self, data: &Dataset) -> TrainConfig {
        let mut c = match self.base {
            Some(base) => TrainConfig { method: self.method.unwrap_or(base.method), ..base },
            None => Preset::for_data(data, self.method).config,
        };
        for edit in &self.edits {
            edit(&mut c);
        }
        c
    }

    /// Trains on `data`'s training images (evaluating on its test images as configured) and
    /// returns the model with one report per epoch.
    ///
    /// The work runs on the current rayon pool: all cores, unless the program built the
    /// global pool otherwise, or calls `fit` inside `pool.install(..)` of a pool of its own
    /// (a `Fit` is `Send`). The thread count changes the speed, never the result.
    ///
    /// # Errors
    /// A configuration problem, before any work ([`TrainConfig::validate`]), or a run that
    /// diverged ([`TrainError::NonFinite`]).
    pub fn fit(self, data: &Dataset) -> Result<Trained, TrainError> {
        let cfg = self.config_for(data);
        let mut on_epoch = self.on_epoch;
        train(&cfg, data, |r| {
            if let Some(f) = on_epoch.as_mut() {
                f(r)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{bars4, DatasetSpec};
    use crate::run::initial_params;
    use crate::seed::{stream, Stream};
    use rapid_core::step::Shape;
    use rapid_core::{Dims, NegativePhase};

    #[test]
    fn fit_runs_the_preset_with_the_overrides() {
        let d = bars4();
        let mut cfg = Preset::for_data(&d, None).config;
        cfg.epochs = 4;
        cfg.seed = 3;
        let want = train(&cfg, &d, |_| {}).unwrap();
        let mut seen = Vec::new();
        let got = Fit::new().epochs(4).seed(3).on_epoch(|r| seen.push(r.epoch)).fit(&d).unwrap();
        assert_eq!(got.model, want.model);
        assert_eq!(seen, [1, 2, 3, 4]);
        assert_eq!(got.reports.len(), 4);
        // Threads change the speed, never the bits.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let fit = Fit::new().epochs(4).seed(3);
        let one = pool.install(|| fit.fit(&d)).unwrap();
        assert_eq!(one.model, want.model);
    }

    #[test]
    fn the_method_picks_its_preset_or_only_its_field() {
        let d = Dataset::new(DatasetSpec::Bas(4), 0);
        let cd = Method::Cd { k: 1 };
        let from_preset = Fit::new().method(cd).config_for(&d);
        assert_eq!(from_preset, Preset::for_data(&d, Some(cd)).config);
        let base = TrainConfig { hidden: 7, ..TrainConfig::default() };
        let c = Fit::with_config(base).method(cd).hidden(9).config_for(&d);
        assert_eq!(c, TrainConfig { method: cd, hidden: 9, ..base });
        let c = Fit::with_config(base).configure(|c| c.batch = 2).batch(5).config_for(&d);
        assert_eq!(c.batch, 5, "edits apply in order");
    }

    #[test]
    fn bad_settings_fail_before_any_epoch() {
        let d = bars4();
        let mut calls = 0;
        let e = Fit::new().batch(0).on_epoch(|_| calls += 1).fit(&d).unwrap_err();
        assert_eq!(e, TrainError::ZeroBatch);
        assert_eq!(calls, 0);
        let m = Method::Pid(NegativePhase::Patterns);
        assert!(Fit::new().method(m).patterns(0).fit(&d).is_err());
    }

    #[test]
    fn the_cores_random_patterns_are_the_harness_initial_patterns() {
        let dims = Dims::new(16, 1000, 8);
        let mut a = stream(0, Stream::Train, 0, 0);
        let mut b = a.clone();
        let want = initial_params(Shape::Ra(dims), &mut a);
        let mut got = vec![0.0f32; dims.xi_len()];
        rapid_core::ra::random_patterns(&mut got, &mut b);
        assert_eq!(got, want);
        assert_eq!(a, b, "the same number of draws");
    }
}
