"""The scikit-learn estimator :class:`RapidRBM`."""

import sys

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _rapid

_SEED_LIMIT = 2**63 - 1


def _is_ra(method):
    return str(method).startswith("pid")


def _arrays_shape(dataset):
    """``(rows, cols)`` of in-memory rows named ``arrays:NxRxC`` in a model file, else None."""
    if not dataset.startswith("arrays:"):
        return None
    _, rows, cols = (int(v) for v in dataset[len("arrays:"):].split("x"))
    return rows, cols


def _count(name, value, least):
    """``value`` as an int >= ``least``, or ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")
    return int(value)


class RapidRBM(TransformerMixin, BaseEstimator):
    """A restricted Boltzmann machine with ±1 units, trained by the Rust engine of ``rapid``.

    With ``method="pid"`` (the default) the model is RAPID's: the weights are built from
    ``n_patterns`` patterns ``ξ^μ = (ξ_v^μ, ξ_h^μ)`` as ``W = Ξ_vᵀ Ξ_h / √K`` (no biases), and
    training estimates the model average from the patterns themselves instead of from Markov
    chains. ``method="pid-gibbs:k"`` refines that estimate with ``k`` Gibbs steps. The
    baselines train a dense ``W``: ``"cd:k"``, ``"pcd:k"`` (2048 persistent chains, or
    ``"pcd:k:CHAINS"``) and ``"exact"`` (the model average by enumeration; the smaller layer
    must have at most 30 units).

    Parameters
    ----------
    n_hidden : int, default=1000
        Hidden units ``H``.
    n_patterns : int, default=8
        Patterns ``K`` (RAPID methods only).
    method : str, default="pid"
        ``"pid"``, ``"pid-hebb"``, ``"pid-gibbs:k"``, ``"cd:k"``, ``"pcd:k[:chains]"`` or
        ``"exact"``.
    lr : float or None, default=None
        Initial learning rate. None: 0.02 for RAPID methods, 0.001 for the baselines.
    batch_size : int or None, default=None
        Images per update (capped at the number of rows given). None: 3 for RAPID methods,
        1 for the baselines.
    n_epochs : int, default=300
        Passes over the data in :meth:`fit`.
    projection : str or None, default=None
        What is done to the patterns after training steps (RAPID methods): ``"sign"``
        (project to ±1 at each epoch end), ``"sign:N"`` (every N updates), ``"clamp:B"``
        (clip to [−B, B] after each update) or ``"none"``. None: ``"sign"`` for RAPID
        methods, ``"none"`` for the baselines (which must use ``"none"``).
    optimizer : str or None, default=None
        ``"sgd"``, ``"adam"`` or ``"adam-epoch"``. None: SGD for RAPID methods, Adam for the
        baselines.
    lr_decay : float or None, default=None
        Learning-rate factor per epoch. None: 0.96 for RAPID methods, 1 (none) otherwise.
    lr_min : float or None, default=None
        Floor of the decayed learning rate. None: 1e-5 for RAPID methods, 0 otherwise.
    lr_decay_start : int or None, default=None
        Epochs before the decay starts. None: 0.
    biases : bool or None, default=None
        Visible and hidden biases (dense baselines only). None: no biases.
    momentum, weight_decay : float or None, default=None
        SGD momentum and weight decay. None: 0.
    threshold : float, default=0.5
        Input values above ``threshold`` become +1, the others −1. {0, 1} and ±1 arrays map
        as expected; grey levels in [0, 1] are thresholded (scikit-learn's ``BernoulliRBM``
        treats them as probabilities instead).
    output : {"probability", "mean"}, default="probability"
        What :meth:`transform` returns: ``P(h_j = +1 | v) = (1 + tanh φ_j)/2``, in [0, 1] as
        ``BernoulliRBM``'s, or the mean ``E[h_j | v] = tanh φ_j``, in [−1, 1]; ``φ = Wᵀv + b``.
    image_shape : tuple of two ints or None, default=None
        ``(rows, columns)`` of an image, used by :meth:`reconstruction_distance`'s default
        mask. None: one row of ``n_features_in_`` pixels.
    max_exact : int, default=30
        :meth:`score_samples` enumerates the smaller layer exactly when it has at most this
        many units (at most 30), and uses AIS otherwise.
    ais_intervals, ais_runs : int, default=10000, 100
        The AIS schedule (a sigmoid of ``ais_intervals`` steps) and its number of runs.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial patterns or weights, the shuffles and every Gibbs draw of
        training; then :meth:`gibbs`, :meth:`sample` and AIS. An int ``s`` trains exactly as
        ``rapid train --seed s`` does: same settings, same rows, same model file, bit for
        bit, whatever the number of threads.
    verbose : bool, default=False
        Print one line per epoch.

    Attributes
    ----------
    model_ : rapid.Model
        The trained model (``model_.save(path)`` writes the command-line program's file).
    components_ : ndarray of shape (n_hidden, n_features_in_)
        ``Wᵀ`` (float32), as ``BernoulliRBM.components_``. For RAPID models it is formed from
        the patterns.
    patterns_ : ndarray of shape (n_patterns, n_features_in_ + n_hidden) or None
        The patterns ``Ξ`` (visible parts first); None for dense models.
    intercept_visible_, intercept_hidden_ : ndarray
        The biases (zeros for models without biases).
    n_features_in_ : int
        Visible units ``V``.
    n_iter_ : int
        Epochs trained.
    seed_ : int
        The training seed that was used.
    """

    def __init__(
        self,
        n_hidden=1000,
        n_patterns=8,
        method="pid",
        lr=None,
        batch_size=None,
        n_epochs=300,
        projection=None,
        optimizer=None,
        lr_decay=None,
        lr_min=None,
        lr_decay_start=None,
        biases=None,
        momentum=None,
        weight_decay=None,
        threshold=0.5,
        output="probability",
        image_shape=None,
        max_exact=30,
        ais_intervals=10_000,
        ais_runs=100,
        random_state=None,
        verbose=False,
    ):
        self.n_hidden = n_hidden
        self.n_patterns = n_patterns
        self.method = method
        self.lr = lr
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.projection = projection
        self.optimizer = optimizer
        self.lr_decay = lr_decay
        self.lr_min = lr_min
        self.lr_decay_start = lr_decay_start
        self.biases = biases
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.threshold = threshold
        self.output = output
        self.image_shape = image_shape
        self.max_exact = max_exact
        self.ais_intervals = ais_intervals
        self.ais_runs = ais_runs
        self.random_state = random_state
        self.verbose = verbose

    # -- input ----------------------------------------------------------------------------

    def _spins(self, X):
        """X as C-contiguous float32 ±1 rows: passed through when it already is, else
        thresholded (one new array)."""
        if (
            X.dtype == np.float32
            and X.flags.c_contiguous
            and bool(((X == 1.0) | (X == -1.0)).all())
        ):
            return X
        return np.where(X > self.threshold, np.float32(1.0), np.float32(-1.0))

    def _validated(self, X, reset):
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32))
        return X, self._spins(X)

    def _shape(self, n_features):
        if self.image_shape is None:
            return 1, n_features
        rows, cols = (int(v) for v in self.image_shape)
        if rows * cols != n_features:
            raise ValueError(
                f"image_shape {self.image_shape} has {rows * cols} pixels, X has {n_features}"
                " features"
            )
        return rows, cols

    def _check_params(self):
        if self.output not in ("probability", "mean"):
            raise ValueError(f"output must be 'probability' or 'mean', got {self.output!r}")
        if not (isinstance(self.n_epochs, (int, np.integer)) and self.n_epochs >= 1):
            raise ValueError(f"n_epochs must be a whole number >= 1, got {self.n_epochs!r}")
        if not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold!r}")

    def _training_seed(self):
        if isinstance(self.random_state, (int, np.integer)):
            if not 0 <= self.random_state <= _SEED_LIMIT:
                raise ValueError(f"random_state must be in [0, 2**63), got {self.random_state}")
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(0, 2**62, dtype=np.int64))

    def _new_trainer(self, S, n_features, seed, n_rows):
        height, width = self._shape(n_features)
        ra = _is_ra(self.method)
        batch = self.batch_size if self.batch_size is not None else (3 if ra else 1)
        if not (isinstance(batch, (int, np.integer)) and batch >= 1):
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch!r}")
        projection = self.projection if self.projection is not None else ("sign" if ra else "none")
        settings = _rapid.resolve_config(
            str(self.method),
            hidden=self.n_hidden,
            patterns=self.n_patterns,
            biases=self.biases,
            epochs=self.n_epochs,
            batch=int(min(batch, n_rows)),
            optimizer=self.optimizer,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            projection=projection,
            lr_decay=self.lr_decay,
            lr_min=self.lr_min,
            lr_decay_start=self.lr_decay_start,
            seed=seed,
        )
        return _rapid.Trainer(S, height, width, settings)

    def _train(self, trainer, epochs):
        if not self.verbose:
            trainer.train(epochs)
            return
        for _ in range(epochs):
            (seconds,) = trainer.train(1)
            print(
                f"[RapidRBM] epoch {trainer.epochs_done}: {seconds:.3f} s, next lr {trainer.lr:.3g}",
                file=sys.stdout,
                flush=True,
            )

    def _set_model(self, model, pixel_means):
        self.model_ = model
        self._publish()
        self._pixel_means = pixel_means
        # Filled lazily by log_partition(); a dict so that scoring leaves the estimator's
        # attributes as they were.
        self._cache = {}

    def _publish(self):
        m = self.model_
        self.components_ = np.ascontiguousarray(m.weights().T)
        self.patterns_ = m.pattern_matrix()
        a, b = m.biases()
        self.intercept_visible_ = a if a is not None else np.zeros(m.visible, np.float32)
        self.intercept_hidden_ = b if b is not None else np.zeros(m.hidden, np.float32)

    # -- training -------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Trains ``n_epochs`` epochs on ``X`` from a fresh initialisation; returns self.

        The rows are copied once into the trainer as ±1 float32; training runs with the
        GIL released. Raises ``FloatingPointError`` if training diverges.
        """
        self._check_params()
        X, S = self._validated(X, reset=True)
        self.seed_ = self._training_seed()
        self.random_state_ = check_random_state(self.random_state)
        trainer = self._new_trainer(S, X.shape[1], self.seed_, X.shape[0])
        self._train(trainer, self.n_epochs)
        trainer.clear_rows()
        self._trainer = trainer
        self.n_iter_ = trainer.epochs_done
        self._set_model(trainer.model(), S.mean(axis=0, dtype=np.float64))
        return self

    def partial_fit(self, X, y=None):
        """Trains one epoch on ``X``, continuing the run (optimiser state, learning-rate
        schedule, chains) of an earlier ``fit`` or ``partial_fit``; returns self.

        After unpickling or :meth:`load`, the run restarts from the saved model with a fresh
        optimiser state and schedule.
        """
        self._check_params()
        fitted = hasattr(self, "model_")
        X, S = self._validated(X, reset=not fitted)
        trainer = getattr(self, "_trainer", None)
        if trainer is None:
            if not fitted:
                self.seed_ = self._training_seed()
                self.random_state_ = check_random_state(self.random_state)
            trainer = self._new_trainer(S, X.shape[1], self.seed_, X.shape[0])
            if fitted:
                trainer.set_model(self.model_)
        else:
            trainer.set_rows(S)
        self._train(trainer, 1)
        trainer.clear_rows()
        self._trainer = trainer
        self.n_iter_ = trainer.epochs_done
        means = S.mean(axis=0, dtype=np.float64)
        if fitted and self._pixel_means is not None:
            means = 0.5 * (means + self._pixel_means)
        self._set_model(trainer.model(), means)
        return self

    # -- using the model ------------------------------------------------------------------

    def transform(self, X):
        """Hidden activations of each row: ``P(h = +1 | v)`` (``output="probability"``) or
        ``tanh φ`` (``output="mean"``), in X's float dtype."""
        check_is_fitted(self)
        X, S = self._validated(X, reset=False)
        H = self.model_.hidden_activations(S, mean=self.output == "mean")
        return H if X.dtype == np.float32 else H.astype(np.float64)

    def log_partition(self):
        """``log Z`` as a ``rapid.LogZ`` (``value``, ``std_err``, ``method``): exact when the
        smaller layer has at most ``max_exact`` units, else AIS from the training data's base
        rate (uniform after :meth:`load`), seeded by ``seed_``. Computed once per fit."""
        check_is_fitted(self)
        key = (self.max_exact, self.ais_intervals, self.ais_runs)
        if key not in self._cache:
            self._cache[key] = self.model_.log_z(
                pixel_means=self._pixel_means,
                max_exact=self.max_exact,
                ais_intervals=self.ais_intervals,
                ais_runs=self.ais_runs,
                seed=self.seed_,
            )
        return self._cache[key]

    def score_samples(self, X):
        """Log-likelihood of each row, ``log p(v) = −F(v) − log Z`` (natural log, float64).

        Exact when the smaller layer has at most ``max_exact`` (≤ 30) units: the numbers of
        ``rapid eval``. Otherwise ``log Z`` is an AIS estimate (see :meth:`log_partition`),
        low in expectation, so the log-likelihoods are high in expectation.
        """
        check_is_fitted(self)
        _, S = self._validated(X, reset=False)
        return self.model_.log_p_star(S) - self.log_partition().value

    def score(self, X, y=None):
        """Mean log-likelihood of the rows (see :meth:`score_samples`)."""
        return float(np.mean(self.score_samples(X)))

    def gibbs(self, X, steps=1):
        """``steps`` block Gibbs steps ``v → h → v`` from each row; returns ±1 float32 rows.
        Each call draws a new seed from ``random_state_``."""
        check_is_fitted(self)
        _, S = self._validated(X, reset=False)
        return self.model_.gibbs(S, steps=_count("steps", steps, 0), seed=self._next_seed())

    def sample(self, n, steps=1000, start="random", X=None):
        """``n`` samples after ``steps`` Gibbs steps from ``start``: ``"random"`` (uniform ±1),
        ``"zero"`` or ``"data"`` (chain ``c`` starts at row ``c mod len(X)`` of X); ±1
        float32 rows."""
        check_is_fitted(self)
        n, steps = _count("n", n, 1), _count("steps", steps, 0)
        S = None
        if X is not None:
            _, S = self._validated(X, reset=False)
        return self.model_.sample(n, steps, seed=self._next_seed(), start=start, x=S)

    def reconstruction_distance(self, X, kept=None, repeats=100, steps=1, clamp=False):
        """The paper's reconstruction Hamming distance: the pixels outside ``kept`` (a boolean
        mask of ``n_features_in_``; default the top half of the image rows) start at 0,
        ``steps`` Gibbs steps, ``repeats`` draws per row; the mean fraction of wrong pixels
        (0 = perfect, 0.5 = guessing). Seeded by ``seed_``."""
        check_is_fitted(self)
        _, S = self._validated(X, reset=False)
        if kept is None:
            rows, cols = self._shape(self.n_features_in_)
            keep = (rows // 2) * cols if rows >= 2 else cols // 2
            kept = np.arange(self.n_features_in_) < keep
        kept = np.ascontiguousarray(kept, dtype=bool)
        return self.model_.reconstruction_hd(
            S,
            kept,
            repeats=_count("repeats", repeats, 1),
            steps=_count("steps", steps, 1),
            clamp=bool(clamp),
            seed=self.seed_,
        )

    def _next_seed(self):
        rng = getattr(self, "random_state_", None)
        if rng is None:
            rng = self.random_state_ = check_random_state(self.random_state)
        return int(rng.randint(0, 2**62, dtype=np.int64))

    # -- files and pickling ---------------------------------------------------------------

    def save(self, path):
        """Writes the model file of the command-line program (``rapid eval --model path``
        reads it), with the training settings in its settings section (:meth:`load` restores
        them; the data are named ``arrays:NxRxC``, as they are not stored)."""
        check_is_fitted(self)
        self.model_.save(str(path))

    @classmethod
    def load(cls, path, **params):
        """An estimator holding the model in ``path``: a file written by :meth:`save` or
        ``rapid train --out``, or a checkpoint of ``rapid train --checkpoint``.

        The training settings come from the file (method, sizes, learning rate and schedule,
        batch size, epochs, projection, optimiser, seed, and the image shape of in-memory
        rows), ``params`` override them. A file without settings (written before they were
        stored) gives ``n_hidden``, ``n_patterns`` and ``biases`` from its sizes and
        ``method="pid"`` for RA models, ``"cd:1"`` for dense ones."""
        model = _rapid.Model.load(str(path))
        made = model.settings()
        settings = {"n_hidden": model.hidden}
        if made is not None:
            settings.update(
                method=made["method"],
                n_patterns=made["patterns"],
                biases=made["biases"],
                n_epochs=made["epochs"],
                batch_size=made["batch"],
                optimizer=made["optimizer"],
                lr=made["lr"],
                lr_decay=made["lr_decay"],
                lr_min=made["lr_min"],
                lr_decay_start=made["lr_decay_start"],
                momentum=made["momentum"],
                weight_decay=made["weight_decay"],
                projection=made["projection"],
                random_state=made["seed"],
            )
            shape = _arrays_shape(made["dataset"])
            if shape is not None and shape[0] > 1:
                settings.update(image_shape=shape)
        elif model.kind == "ra":
            settings.update(n_patterns=model.patterns, method="pid")
        else:
            settings.update(method="cd:1", biases=model.has_biases)
        settings.update(params)
        est = cls(**settings)
        est.n_features_in_ = model.visible
        est.n_iter_ = 0
        est.seed_ = est._training_seed()
        est.random_state_ = check_random_state(est.random_state)
        est._set_model(model, None)
        return est

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_trainer", None)
        if "model_" in state:
            state["model_"] = state["model_"].to_bytes()
            state["_cache"] = {}
        return state

    def __setstate__(self, state):
        if "model_" in state:
            state["model_"] = _rapid.Model.from_bytes(state["model_"])
        self.__dict__.update(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
