"""RapidRBM against the command-line program, exact enumeration and its own contracts."""

import json
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import rapid
from rapid import RapidRBM

REPO = Path(__file__).resolve().parents[2]


def rapid_cli():
    """The `rapid` program: $RAPID_BIN, else the workspace's release build. Under CI a
    missing program fails the test instead of skipping it."""
    path = Path(os.environ.get("RAPID_BIN", REPO / "target" / "release" / "rapid"))
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing (build it with cargo build --release -p rapid-harness)")
        pytest.skip(f"{path} is missing (cargo build --release -p rapid-harness)")
    return path


BARS = rapid.dataset("bars4")


@pytest.mark.parametrize(
    "method, epochs",
    [("pid", 300), ("pid-gibbs:1", 20), ("cd:10", 20), ("pcd:10:256", 20), ("exact", 20)],
)
def test_same_model_file_as_the_cli(tmp_path, method, epochs):
    cli = rapid_cli()
    out = tmp_path / "cli.rapid"
    subprocess.run(
        [cli, "train", "--dataset", "bars4", "--method", method, "--epochs", str(epochs),
         "--seed", "7", "--out", out, "--eval-every", "0"],
        check=True, capture_output=True,
    )
    rbm = RapidRBM(method=method, n_epochs=epochs, random_state=7).fit(BARS["train"])
    mine = tmp_path / "py.rapid"
    rbm.save(mine)
    cli_model = rapid.Model.load(out)
    # The model bytes are the same; the settings sections differ only in naming the data (the
    # CLI's bars4, the estimator's in-memory rows).
    assert rbm.model_.to_bytes(settings=False) == cli_model.to_bytes(settings=False)
    assert mine.read_bytes().startswith(rbm.model_.to_bytes(settings=False))
    ours, theirs = rbm.model_.settings(), cli_model.settings()
    assert (ours.pop("dataset"), theirs.pop("dataset")) == ("arrays:10x1x16", "bars4")
    assert ours == theirs


def test_bars4_reaches_test_hd_0_and_scores_as_the_cli_does(tmp_path):
    cli = rapid_cli()
    rbm = RapidRBM(random_state=0).fit(BARS["train"])
    assert rbm.reconstruction_distance(BARS["test"], kept=BARS["kept"]) == 0.0
    path = tmp_path / "m.rapid"
    rbm.save(path)
    report = subprocess.run(
        [cli, "eval", "--model", path, "--dataset", "bars4", "--json"],
        check=True, capture_output=True, text=True,
    )
    ev = json.loads(report.stdout)
    assert ev["hd_test"] == 0.0
    for rows, key in [(BARS["train"], "nll_train"), (BARS["test"], "nll_test")]:
        nll = -rbm.score_samples(rows).mean()
        assert nll == pytest.approx(ev[key], rel=1e-12, abs=1e-9)
    assert rbm.log_partition().method == "exact"


def test_score_samples_is_normalised_exactly():
    # V = 4 visible units: sum p(v) over all 16 states must be 1.
    states = np.array([[1 if (i >> j) & 1 else -1 for j in range(4)] for i in range(16)],
                      dtype=np.float32)
    rbm = RapidRBM(method="cd:1", n_hidden=6, n_epochs=3, biases=True, random_state=1)
    rbm.fit(states[[0, 3, 5, 9, 15]])
    total = np.exp(rbm.score_samples(states)).sum()
    assert total == pytest.approx(1.0, rel=1e-9)


def test_ais_path_agrees_with_exact():
    rbm = RapidRBM(method="cd:1", n_hidden=12, n_epochs=20, biases=True, random_state=3)
    rbm.fit(BARS["train"])
    exact = rbm.score_samples(BARS["test"])
    rbm.set_params(max_exact=4, ais_intervals=2000, ais_runs=100)
    z = rbm.log_partition()
    assert z.method == "ais" and z.std_err > 0
    ais = rbm.score_samples(BARS["test"])
    assert np.abs(ais - exact).max() < max(0.05, 5 * z.std_err)


def test_save_load_round_trip(tmp_path):
    rbm = RapidRBM(n_hidden=200, random_state=2).fit(BARS["train"])
    path = tmp_path / "m.rapid"
    rbm.save(path)
    back = RapidRBM.load(path)
    assert (back.n_hidden, back.n_patterns, back.method) == (200, 8, "pid")
    # The file remembers how the model was trained.
    assert (back.lr, back.batch_size, back.n_epochs, back.random_state) == (0.02, 3, 300, 2)
    np.testing.assert_array_equal(back.components_, rbm.components_)
    np.testing.assert_array_equal(back.transform(BARS["test"]), rbm.transform(BARS["test"]))
    np.testing.assert_array_equal(back.score_samples(BARS["test"]),
                                  rbm.score_samples(BARS["test"]))
    back.save(tmp_path / "again.rapid")
    assert (tmp_path / "again.rapid").read_bytes() == path.read_bytes()
    dense = RapidRBM(method="cd:10", n_hidden=5, biases=True, n_epochs=2, random_state=0,
                     image_shape=(4, 4))
    dense.fit(BARS["train"]).save(path)
    back = RapidRBM.load(path)
    assert (back.method, back.biases, back.n_hidden, back.n_epochs) == ("cd:10", True, 5, 2)
    assert back.image_shape == (4, 4)
    np.testing.assert_array_equal(back.intercept_visible_, dense.intercept_visible_)
    # A file without settings (as written before they were stored) still loads.
    bare = tmp_path / "bare.rapid"
    bare.write_bytes(dense.model_.to_bytes(settings=False))
    back = RapidRBM.load(bare)
    assert (back.method, back.biases, back.n_hidden) == ("cd:1", True, 5)


def test_pickle_round_trip_and_partial_fit_after_it():
    rbm = RapidRBM(n_hidden=100, n_epochs=5, random_state=4).fit(BARS["train"])
    back = pickle.loads(pickle.dumps(rbm))
    np.testing.assert_array_equal(back.transform(BARS["test"]), rbm.transform(BARS["test"]))
    back.partial_fit(BARS["train"])
    assert back.n_iter_ == 1  # a fresh run started from the pickled model


def test_partial_fit_epochs_equal_fit():
    a = RapidRBM(n_hidden=100, n_epochs=5, random_state=5).fit(BARS["train"])
    b = RapidRBM(n_hidden=100, n_epochs=5, random_state=5)
    for _ in range(5):
        b.partial_fit(BARS["train"])
    assert b.n_iter_ == 5
    assert a.model_.to_bytes() == b.model_.to_bytes()


def test_input_forms_give_the_same_model():
    pm1 = BARS["train"]
    forms = [pm1.astype(np.float64), (pm1 > 0).astype(np.int64), pm1 > 0,
             np.where(pm1 > 0, 0.9, 0.1), np.asfortranarray(pm1)]
    ref = RapidRBM(n_hidden=50, n_epochs=10, random_state=6).fit(pm1).model_.to_bytes()
    for X in forms:
        got = RapidRBM(n_hidden=50, n_epochs=10, random_state=6).fit(X).model_.to_bytes()
        assert got == ref


def test_transform_outputs():
    rbm = RapidRBM(n_hidden=30, n_epochs=10, random_state=0).fit(BARS["train"])
    p = rbm.transform(BARS["test"])
    assert p.shape == (4, 30) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    m = rbm.set_params(output="mean").transform(BARS["test"].astype(np.float64))
    assert m.dtype == np.float64
    np.testing.assert_allclose(m, 2 * p - 1, atol=1e-6)
    # tanh φ with φ = Wᵀv (no biases), from the published components_.
    np.testing.assert_allclose(m, np.tanh(BARS["test"] @ rbm.components_.T), atol=1e-5)


def test_gibbs_and_sample():
    rbm = RapidRBM(random_state=0).fit(BARS["train"])
    s = rbm.sample(50, steps=20)
    assert s.shape == (50, 16) and set(np.unique(s)) <= {-1.0, 1.0}
    # The same random_state gives the same draws; each call draws a new seed.
    again = RapidRBM(random_state=0).fit(BARS["train"])
    np.testing.assert_array_equal(s, again.sample(50, steps=20))
    assert not np.array_equal(s, again.sample(50, steps=20))
    g = rbm.gibbs(BARS["test"])
    assert g.shape == (4, 16) and set(np.unique(g)) <= {-1.0, 1.0}
    # The model learnt Bars 4x4: a long chain lands on valid bars (all rows equal, or all
    # columns equal), mirror images included.
    imgs = s.reshape(-1, 4, 4)
    valid = [(im == im[0]).all() or (im == im[:, :1]).all() for im in imgs]
    assert np.mean(valid) > 0.9


@pytest.mark.parametrize(
    "params, X, error",
    [
        ({}, np.array([[np.nan] * 16]), ValueError),
        ({}, np.ones(16), ValueError),
        ({"method": "cd:0"}, BARS["train"], ValueError),
        ({"method": "nonsense"}, BARS["train"], ValueError),
        ({"method": "cd:1", "projection": "sign"}, BARS["train"], ValueError),
        ({"batch_size": 0}, BARS["train"], ValueError),
        ({"n_epochs": 0}, BARS["train"], ValueError),
        ({"lr": float("inf")}, BARS["train"], ValueError),
        ({"method": "exact", "n_hidden": 40, "n_epochs": 1}, np.ones((3, 40)), ValueError),
        ({"image_shape": (3, 3)}, BARS["train"], ValueError),
        ({"output": "logits"}, BARS["train"], ValueError),
        ({"projection": "none", "lr": 1e30, "lr_decay": 1.0}, BARS["train"],
         FloatingPointError),
    ],
)
def test_bad_input_raises(params, X, error):
    with pytest.raises(error):
        RapidRBM(**params).fit(X)


def test_bad_use_of_a_fitted_model_raises(tmp_path):
    rbm = RapidRBM(n_hidden=10, n_epochs=2, random_state=0).fit(BARS["train"])
    with pytest.raises(ValueError, match="features"):
        rbm.transform(np.ones((2, 15)))
    with pytest.raises(ValueError):
        rbm.reconstruction_distance(BARS["test"], kept=np.ones(3, bool))
    with pytest.raises(ValueError):
        rbm.sample(3, 2, start="data")
    with pytest.raises(ValueError):
        rbm.sample(-1, 2)
    with pytest.raises(MemoryError):
        rbm.sample(2**40, 1)
    with pytest.raises(ValueError):
        rbm.gibbs(BARS["test"], steps=1.5)
    with pytest.raises(ValueError):
        rbm.set_params(max_exact=31).score_samples(BARS["test"])
    (tmp_path / "junk.rapid").write_bytes(b"not a model")
    with pytest.raises(ValueError):
        RapidRBM.load(tmp_path / "junk.rapid")
    with pytest.raises(OSError):
        RapidRBM.load(tmp_path / "missing.rapid")


def test_digits_pipeline_learns():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    # The example of docs/python.md.
    model = Pipeline([
        ("rbm", RapidRBM(n_hidden=1000, n_patterns=64, batch_size=10, n_epochs=50,
                         random_state=0)),
        ("logistic", LogisticRegression(max_iter=3000)),
    ]).fit(X_train, y_train)
    # Guessing gives 0.1; docs/python.md reports 0.931 for this seed.
    assert model.score(X_test, y_test) > 0.9


def test_gil_is_released_while_training():
    import threading
    import time

    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    X = rapid.dataset("bas:8")["train"]
    t = threading.Thread(target=tick)
    t.start()
    # Fits until 0.3 s have been spent inside them, so a fast machine still gives the other
    # thread time to tick.
    windows = []
    while sum(b - a for a, b in windows) < 0.3:
        start = time.perf_counter()
        RapidRBM(n_hidden=1000, n_patterns=40, n_epochs=20, batch_size=10, random_state=0).fit(X)
        windows.append((start, time.perf_counter()))
    stop.set()
    t.join()
    during = [x for x in ticks if any(a < x < b for a, b in windows)]
    # With the GIL held during a fit the other thread could not tick inside it at all.
    assert len(during) >= 20, (windows, len(during))


def test_load_reads_cli_checkpoints(tmp_path):
    cli = rapid_cli()
    ck = tmp_path / "run.ck"
    subprocess.run(
        [cli, "train", "--dataset", "bars4", "--epochs", "4", "--seed", "3", "--checkpoint", ck,
         "--eval-every", "0"],
        check=True, capture_output=True,
    )
    rbm = RapidRBM.load(ck)
    assert (rbm.method, rbm.n_epochs, rbm.random_state) == ("pid", 4, 3)
    assert rbm.model_.settings()["dataset"] == "bars4"
    assert rbm.score_samples(BARS["test"]).shape == (4,)
