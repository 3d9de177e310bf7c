"""RAPID restricted Boltzmann machines from Python, on the Rust engine of ``rapid``.

* :class:`RapidRBM`: a scikit-learn estimator and transformer (``fit``, ``partial_fit``,
  ``transform``, ``score_samples``, ``gibbs``, ``sample``, ``save``/``load``).
* :class:`Model`: a trained model, in the model-file format of the ``rapid`` command-line
  program.
* :func:`dataset`: the built-in datasets (``"bars4"``, ``"bas:N"``, ``"mnist"``) and data
  files (``"idx:IMAGES[,LABELS]"``, ``"npy:FILE"``) as the command line names them.
"""

from ._rapid import (  # noqa: F401
    MAX_EXACT_BITS,
    LogZ,
    Model,
    Trainer,
    __version__,
    dataset,
    kernel_level,
    resolve_config,
)
from ._estimator import RapidRBM  # noqa: F401

__all__ = [
    "RapidRBM",
    "Model",
    "LogZ",
    "Trainer",
    "dataset",
    "kernel_level",
    "resolve_config",
    "MAX_EXACT_BITS",
    "__version__",
]
