//! Checkpoints that decode but do not fit their settings: `Trainer::restore` refuses each with
//! a message naming the field and both values, instead of training the wrong model or
//! panicking. The first cases edit the settings text of a real checkpoint and recompute its
//! CRC, as a user (or a corrupted copy that happens to pass the checksum) would.

use rapid_core::format::crc32;
use rapid_core::NegativePhase;
use rapid_harness::checkpoint::Checkpoint;
use rapid_harness::data::{Dataset, DatasetSpec};
use rapid_harness::run::{
    Method, OptSnapshot, Optimizer, PartialBatch, TrainConfig, Trainer, TrainerState,
};

fn bars() -> Dataset {
    Dataset::new(DatasetSpec::Bars4, 0)
}

/// A checkpoint after `done` of `cfg.epochs` epochs on Bars 4×4.
fn checkpoint(cfg: TrainConfig, done: u32) -> Checkpoint {
    let data = bars();
    let mut t = Trainer::new(&cfg, &data).unwrap();
    for _ in 0..done {
        t.train_epoch(&data).unwrap();
    }
    Checkpoint { dataset: DatasetSpec::Bars4, split_seed: 0, config: cfg, state: t.state() }
}

fn config(method: Method, hidden: usize) -> TrainConfig {
    TrainConfig { hidden, epochs: 4, eval_every: 0, ..TrainConfig::paper(method) }
}

/// The checkpoint's bytes with settings lines replaced (`key=value`) and the CRC recomputed.
fn relabel(bytes: &[u8], edits: &[(&str, &str)]) -> Vec<u8> {
    let n = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let text = std::str::from_utf8(&bytes[16..16 + n]).unwrap();
    let mut new = String::new();
    for line in text.lines() {
        let key = line.split_once('=').unwrap().0;
        match edits.iter().find(|(k, _)| *k == key) {
            Some((k, v)) => new.push_str(&format!("{k}={v}\n")),
            None => new.push_str(&format!("{line}\n")),
        }
    }
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(new.len() as u32).to_le_bytes());
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&bytes[16 + n..bytes.len() - 4]);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes (which must succeed) and restores on Bars 4×4; the restore's error.
fn restore_err(bytes: &[u8]) -> String {
    let ck = Checkpoint::decode(bytes).expect("the edited checkpoint decodes");
    match Trainer::restore(&ck.config, &bars(), ck.state) {
        Ok(_) => panic!("restored a checkpoint that does not fit its settings"),
        Err(e) => e,
    }
}

fn restore_state_err(ck: &Checkpoint, st: TrainerState) -> String {
    match Trainer::restore(&ck.config, &bars(), st) {
        Ok(_) => panic!("restored a state that does not fit its settings"),
        Err(e) => e,
    }
}

fn assert_names(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "'{e}' does not name '{p}'");
    }
}

/// RA `H = 64, K = 8` and `H = 24, K = 16` both hold 640 parameters on `V = 16`.
#[test]
fn ra_checkpoint_with_other_hidden_and_patterns_is_refused() {
    for neg in [NegativePhase::Patterns, NegativePhase::Gibbs { steps: 1 }, NegativePhase::Hebb] {
        let good = checkpoint(config(Method::Pid(neg), 64), 2).encode();
        let e = restore_err(&relabel(&good, &[("hidden", "24"), ("patterns", "16")]));
        assert_names(&e, &["H=64", "hidden=24"]);
        let e = restore_err(&relabel(&good, &[("patterns", "16")]));
        assert!(e.contains("K=8") || e.contains("H=64"), "{e}");
    }
}

/// Dense `H = 69` without biases and `H = 64` with biases both hold 1104 parameters.
#[test]
fn dense_checkpoint_with_other_bias_setting_is_refused() {
    let cfg = TrainConfig { biases: true, ..config(Method::Cd { k: 1 }, 64) };
    let good = checkpoint(cfg, 2).encode();
    let e = restore_err(&relabel(&good, &[("hidden", "69"), ("biases", "false")]));
    assert_names(&e, &["with biases", "biases=false", "without biases"]);
    let e = restore_err(&relabel(&good, &[("hidden", "63")]));
    assert_names(&e, &["H=64", "hidden=63"]);
    // An RA checkpoint relabelled dense: the kind is named.
    let ra = checkpoint(config(Method::Pid(NegativePhase::Patterns), 64), 1).encode();
    let e = restore_err(&relabel(&ra, &[("method", "cd:1"), ("projection", "none")]));
    assert_names(&e, &["an RA model", "method=cd:1"]);
}

#[test]
fn pcd_checkpoint_relabelled_cd_or_with_other_chains_is_refused() {
    let good = checkpoint(config(Method::Pcd { k: 1, chains: 5 }, 8), 2).encode();
    let e = restore_err(&relabel(&good, &[("method", "cd:1")]));
    assert_names(&e, &["5 chain words", "method=cd:1", "keeps no chains"]);
    let e = restore_err(&relabel(&good, &[("method", "pcd:1:6")]));
    assert_names(&e, &["5 chain words", "needs 6", "6 chains"]);
    let e = restore_err(&relabel(&good, &[("method", "exact")]));
    assert_names(&e, &["5 chain words", "method=exact", "needs 0"]);
    // A chain word with a padding bit set (V = 16: bits 16..64 are padding).
    let ck = checkpoint(config(Method::Pcd { k: 1, chains: 5 }, 8), 2);
    let mut st = ck.state.clone();
    st.chains[3] |= 1 << 40;
    assert_names(&restore_state_err(&ck, st), &["chain 3", "padding", "V=16"]);
}

#[test]
fn cd_checkpoints_with_no_chains_or_the_older_block_restore() {
    let ck = checkpoint(config(Method::Cd { k: 1 }, 8), 2);
    assert!(ck.state.chains.is_empty());
    Trainer::restore(&ck.config, &bars(), ck.state.clone()).unwrap();
    // Older CD checkpoints carry batch × ⌈V/64⌉ words of chain scratch.
    let older = TrainerState { chains: vec![0x5a5a; ck.config.batch], ..ck.state.clone() };
    Trainer::restore(&ck.config, &bars(), older).unwrap();
    let other = TrainerState { chains: vec![0; ck.config.batch + 1], ..ck.state.clone() };
    assert_names(&restore_state_err(&ck, other), &["2 chain words", "keeps no chains"]);
}

#[test]
fn non_finite_or_negative_optimiser_state_is_refused() {
    let ck = checkpoint(config(Method::Cd { k: 1 }, 8), 2);
    let OptSnapshot::Adam { m, v, t } = ck.state.opt.clone() else { panic!("Adam") };
    let with = |m: Vec<f32>, v: Vec<f32>, t: u64| TrainerState {
        opt: OptSnapshot::Adam { m, v, t },
        ..ck.state.clone()
    };
    let mut bad = v.clone();
    bad[7] = -1e-9;
    assert_names(&restore_state_err(&ck, with(m.clone(), bad, t)), &["Adam v[7]", "-0.000000001"]);
    let mut bad = v.clone();
    bad[0] = f32::INFINITY;
    assert_names(&restore_state_err(&ck, with(m.clone(), bad, t)), &["Adam v[0]", "inf"]);
    let mut bad = m.clone();
    bad[2] = f32::NAN;
    assert_names(&restore_state_err(&ck, with(bad, v.clone(), t)), &["Adam m[2]", "NaN"]);
    assert_names(
        &restore_state_err(&ck, with(m.clone(), v.clone(), t + 1)),
        &["Adam step count", &(t + 1).to_string(), &t.to_string()],
    );
    assert_names(&restore_state_err(&ck, with(m[1..].to_vec(), v, t)), &["Adam m has 127"]);

    let sgd = TrainConfig { momentum: 0.5, ..config(Method::Pid(NegativePhase::Patterns), 8) };
    let ck = checkpoint(sgd, 1);
    let OptSnapshot::Sgd { mut velocity } = ck.state.opt.clone() else { panic!("SGD") };
    velocity[5] = f32::NEG_INFINITY;
    let st = TrainerState { opt: OptSnapshot::Sgd { velocity }, ..ck.state.clone() };
    assert_names(&restore_state_err(&ck, st), &["SGD velocity[5]", "-inf"]);
    // An Adam state under SGD settings.
    let st = TrainerState {
        opt: OptSnapshot::Adam { m: vec![0.0; 192], v: vec![0.0; 192], t: ck.state.updates },
        ..ck.state.clone()
    };
    assert_names(&restore_state_err(&ck, st), &["Adam's", "optimizer=sgd"]);
}

#[test]
fn counters_beyond_the_epochs_done_are_refused() {
    // Bars 4×4 has 10 training images: batch 3 makes 4 updates an epoch (3 when the short
    // last batch is dropped).
    let cfg = config(Method::Cd { k: 1 }, 8);
    let ck = checkpoint(TrainConfig { batch: 3, ..cfg }, 2);
    assert_eq!(ck.state.updates, 8);
    let with = |updates: u64| {
        let OptSnapshot::Adam { m, v, .. } = ck.state.opt.clone() else { panic!("Adam") };
        TrainerState { opt: OptSnapshot::Adam { m, v, t: updates }, updates, ..ck.state.clone() }
    };
    Trainer::restore(&ck.config, &bars(), with(7)).unwrap();
    assert_names(
        &restore_state_err(&ck, with(9)),
        &["update count 9", "epoch 2 × 4 updates per epoch = 8"],
    );
    // Adam's t at the end of its range: refused before an update could overflow it.
    assert_names(&restore_state_err(&ck, with(u64::MAX)), &["18446744073709551615", "= 8"]);
    let drop = TrainConfig { partial_batch: PartialBatch::Drop, ..ck.config };
    let e = Trainer::restore(&drop, &bars(), ck.state.clone()).err().unwrap();
    assert_names(&e, &["update count 8", "3 updates per epoch = 6"]);
    // The epoch must be within the run.
    let st = TrainerState { epoch: 5, ..ck.state.clone() };
    assert_names(&restore_state_err(&ck, st), &["epoch 5", "epochs=4"]);
    // The learning rate: finite, at least 0, within the schedule's range. (These settings have
    // no floor, so 0 is a rate the schedule could reach.)
    let adam = ck.config.lr;
    for (lr, named) in [(-1e-3, "at least 0"), (f32::NAN, "NaN"), (2.0 * adam, "range")] {
        let st = TrainerState { lr, ..ck.state.clone() };
        assert_names(&restore_state_err(&ck, st), &["learning rate", named]);
    }
    assert_eq!(ck.config.schedule.min, 0.0);
    Trainer::restore(&ck.config, &bars(), TrainerState { lr: 0.0, ..ck.state.clone() }).unwrap();
    let floor = TrainConfig {
        schedule: rapid_core::optim::LrSchedule { min: 1e-4, ..ck.config.schedule },
        ..ck.config
    };
    let e = Trainer::restore(&floor, &bars(), TrainerState { lr: 0.0, ..ck.state.clone() });
    assert_names(&e.err().unwrap(), &["learning rate 0", "range [0.0001, 0.001]"]);
}

#[test]
fn valid_checkpoints_of_every_method_restore_and_train() {
    let data = bars();
    for (method, hidden) in [
        (Method::Pid(NegativePhase::Patterns), 12),
        (Method::Pid(NegativePhase::Gibbs { steps: 1 }), 12),
        (Method::Pid(NegativePhase::Hebb), 12),
        (Method::Cd { k: 1 }, 6),
        (Method::Pcd { k: 1, chains: 7 }, 6),
        (Method::Exact, 6),
    ] {
        for optimizer in [Optimizer::Sgd, Optimizer::Adam, Optimizer::AdamByEpoch] {
            let cfg = TrainConfig { optimizer, ..config(method, hidden) };
            let ck = Checkpoint::decode(&checkpoint(cfg, 2).encode()).unwrap();
            let mut t = Trainer::restore(&ck.config, &data, ck.state).unwrap();
            t.train_epoch(&data).unwrap();
        }
    }
}
