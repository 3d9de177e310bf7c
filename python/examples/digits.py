"""RapidRBM features for a linear classifier on scikit-learn's digits, next to BernoulliRBM.

Both pipelines see the same split; the fit times of the two RBMs are measured in the same run,
alternating, `--repeats` times each (median and range printed). Run from anywhere after
`pip install ./python`:

    python python/examples/digits.py
"""

import argparse
import os
import platform
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import Pipeline

import rapid


def pipelines():
    return {
        "rapid.RapidRBM (pid, H=1000, K=64, 50 epochs)": Pipeline([
            ("rbm", rapid.RapidRBM(n_hidden=1000, n_patterns=64, batch_size=10, n_epochs=50,
                                   random_state=0)),
            ("logistic", LogisticRegression(max_iter=3000)),
        ]),
        "rapid.RapidRBM (pid, H=100, K=64, 10 epochs)": Pipeline([
            ("rbm", rapid.RapidRBM(n_hidden=100, n_patterns=64, batch_size=10, n_epochs=10,
                                   random_state=0)),
            ("logistic", LogisticRegression(max_iter=3000)),
        ]),
        "rapid.RapidRBM (cd:1, H=100, 10 epochs)": Pipeline([
            ("rbm", rapid.RapidRBM(method="cd:1", n_hidden=100, batch_size=10, n_epochs=10,
                                   lr=0.01, random_state=0)),
            ("logistic", LogisticRegression(max_iter=3000, C=100.0)),
        ]),
        "sklearn BernoulliRBM (H=100, 10 epochs)": Pipeline([
            ("rbm", BernoulliRBM(n_components=100, learning_rate=0.06, n_iter=10,
                                 random_state=0)),
            ("logistic", LogisticRegression(max_iter=3000, C=6000.0)),
        ]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # grey levels in [0, 1]: RapidRBM thresholds them at 0.5
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    times = {name: [] for name in pipelines()}
    accuracy = {}
    for _ in range(args.repeats):
        for name, model in pipelines().items():
            t0 = time.perf_counter()
            model.named_steps["rbm"].fit(X_train)
            times[name].append(time.perf_counter() - t0)
            features = model.named_steps["rbm"].transform(X_train)
            model.named_steps["logistic"].fit(features, y_train)
            accuracy[name] = model.score(X_test, y_test)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"rapid kernels: {rapid.kernel_level()}; {len(X_train)} train / {len(X_test)} test")
    print("| pipeline (→ LogisticRegression) | test accuracy | RBM fit, s (median, range) |")
    print("| --- | --- | --- |")
    for name in times:
        t = np.array(times[name])
        print(f"| {name} | {accuracy[name]:.3f} | {np.median(t):.2f} ({t.min():.2f}–{t.max():.2f}) |")


if __name__ == "__main__":
    main()
