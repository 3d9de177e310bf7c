"""scikit-learn's own estimator checks, on RapidRBM with each kind of training."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from rapid import RapidRBM

# Every check runs; none is expected to fail. (check_array_api_input skips itself unless
# SCIPY_ARRAY_API=1 is set: RapidRBM takes NumPy arrays only and does not declare array-API
# support.)
ESTIMATORS = [
    RapidRBM(random_state=0),
    RapidRBM(method="pid-gibbs:1", n_hidden=64, n_epochs=20, random_state=0),
    RapidRBM(method="cd:1", n_hidden=32, n_epochs=5, random_state=0),
    RapidRBM(method="pcd:2:16", n_hidden=32, n_epochs=5, biases=True, random_state=0),
    RapidRBM(method="exact", n_hidden=8, n_epochs=5, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
