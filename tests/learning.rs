//! Learning checks: RAPID trained with the paper's Bars 4×4 defaults must generalise.
//!
//! Reference: the authors' code, measured on 5 seeds, has a mean test HD of 0.23 at epoch 10
//! and 0.0 on every seed at epoch 100. The bar: mean test HD over 10 seeds after
//! 100 epochs below 0.05.

use rapid_harness::data::bars4;
use rapid_harness::run::{evaluate, train, Track, TrainConfig};

#[test]
fn bars4_defaults_generalise_within_100_epochs() {
    let data = bars4();
    let seeds = 0..10u64;
    let mut hd_train = Vec::new();
    let mut hd_test = Vec::new();
    for seed in seeds.clone() {
        let cfg = TrainConfig { epochs: 100, seed, eval_every: 0, ..TrainConfig::default() };
        let trained = train(&cfg, &data, |_| {}).expect("valid configuration");
        let last = trained.reports.last().unwrap();
        let (a, b) = (last.hd_train.unwrap(), last.hd_test.unwrap());
        // The report equals a fresh evaluation of the returned model with the same stream.
        let e =
            evaluate(&trained.model, cfg.method, &[], &data, cfg.eval, Track::default(), seed, 100)
                .unwrap();
        assert_eq!((e.hd_train, e.hd_test), (a, b));
        hd_train.push(a);
        hd_test.push(b);
    }
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    eprintln!("per-seed test HD at epoch 100: {hd_test:.3?}");
    eprintln!("mean HD at epoch 100: train {:.4}, test {:.4}", mean(&hd_train), mean(&hd_test));
    assert!(mean(&hd_test) < 0.05, "mean test HD {:.4} over 10 seeds", mean(&hd_test));
    // Most seeds solve the task outright.
    assert!(hd_test.iter().filter(|&&h| h < 0.01).count() >= 7, "{hd_test:?}");
}

#[test]
fn one_epoch_already_beats_random_guessing() {
    let data = bars4();
    let mut total = 0.0;
    for seed in 0..10 {
        let cfg = TrainConfig { epochs: 1, seed, ..TrainConfig::default() };
        total += train(&cfg, &data, |_| {}).unwrap().reports[0].hd_test.unwrap();
    }
    let mean = total / 10.0;
    assert!(mean < 0.4, "mean test HD after one epoch {mean:.3}, random guessing is 0.5");
}
