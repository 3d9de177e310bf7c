//! # rapid-harness
//!
//! Everything around [`rapid_core`] that needs `std`: the datasets ([`data`]: the paper's, a
//! vendored MNIST subset, the user's files), readers for outside data (IDX files such as
//! MNIST, gzip or plain, in [`idx`]; NumPy `.npy` arrays in [`npy`], which also writes them),
//! the reconstruction metric ([`metrics`]), exact enumeration of small models ([`exact`]:
//! log Z, NLL, model averages, ground state), annealed importance sampling for larger ones
//! ([`ais`]: AIS estimates of log Z, RAISE estimates of the NLL), the paper's Fig. 4
//! ([`fig4`]), the training loop ([`run`]), sampling and image
//! grids ([`sample`]), model files written atomically ([`modelio`]), seeding ([`seed`]),
//! training-speed measurements ([`mod@bench`]), and the `rapid` command-line program.
//!
//! Data flows one way: this crate calls the core, never the reverse.
//!
//! ## Quick start
//!
//! [`run::Fit`] runs the whole loop (shuffled batches, updates, evaluation) with a dataset's
//! preset, the set-up `rapid train --dataset D` uses, and returns the model with one report
//! per epoch:
//!
//! ```
//! use rapid_harness::data::{Dataset, DatasetSpec};
//! use rapid_harness::run::Fit;
//!
//! let bars = Dataset::new(DatasetSpec::Bars4, 0);
//! let trained = Fit::new().epochs(50).seed(0).fit(&bars).unwrap();
//! let report = trained.reports.last().unwrap();
//! assert!(report.hd_test.unwrap() < 0.1); // reconstruction from the top row; guessing: 0.5
//! ```
//!
//! For a loop of your own, [`run::Trainer`] trains one epoch per [`run::Trainer::next_epoch`];
//! for a step of your own, see the core's [`rapid_core::step::Engine`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod ais;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod exact;
pub mod fig4;
pub mod idx;
pub mod limits;
pub mod linalg;
pub mod metrics;
pub mod model;
pub mod modelio;
pub mod npy;
pub mod plot;
pub mod reproduce;
pub mod run;
pub mod sample;
pub mod seed;
pub mod stdout;
