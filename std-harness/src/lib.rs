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
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod ais;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod exact;
pub mod fig4;
pub mod idx;
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
