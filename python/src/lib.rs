//! `rapid._rapid`: the native half of the `rapid` Python package.
//!
//! Thin bindings over `rapid-harness` (which drives the `rapid-core` engine): a `Trainer`
//! that trains a model epoch by epoch on rows handed over from NumPy, a `Model` with the
//! model file of the command-line program and everything the estimator computes from a model
//! (hidden activations, free energies, `log Z`, Gibbs steps, samples, the reconstruction
//! distance), and the built-in datasets. The scikit-learn estimator itself is plain Python
//! (`rapid/_estimator.py`) on top of these.
//!
//! Conventions: images are C-contiguous `float32` arrays of ±1 pixels, one row per image (the
//! Python layer converts and validates user input first; this layer checks again and raises
//! `ValueError` rather than trusting it). Work on arrays runs with the GIL released. Results
//! are allocated in Rust and handed to NumPy without a copy.

use std::path::PathBuf;

use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyFloatingPointError, PyMemoryError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rapid_core::optim::LrSchedule;
use rapid_harness::ais::{self, AisOptions, Base, Schedule};
use rapid_harness::checkpoint::{parse_settings, read_model_or_checkpoint, settings_text};
use rapid_harness::data::{Dataset, DatasetSpec};
use rapid_harness::exact::{self, MAX_ENUM_BITS};
use rapid_harness::metrics::{reconstruction_hd, HdProtocol};
use rapid_harness::model::Model;
use rapid_harness::modelio::{read_model_or_checkpoint_bytes, AtomicFile, ReadError};
use rapid_harness::run::{
    parse_projection, projection_name, Method, Optimizer, PartialBatch, TrainConfig, TrainError,
    Trainer,
};
use rapid_harness::sample::{draw, Start};
use rayon::prelude::*;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// The rows of `x` as one slice, after checking that they have `visible` columns, are
/// C-contiguous and hold only ±1.
fn pm1_rows<'a>(x: &'a PyReadonlyArray2<'_, f32>, visible: usize) -> PyResult<&'a [f32]> {
    let shape = x.shape();
    if shape[1] != visible {
        return Err(value_error(format!(
            "X has {} features per row, the model has {visible} visible units",
            shape[1]
        )));
    }
    let rows = x.as_slice().map_err(|_| value_error("X must be a C-contiguous array"))?;
    if let Some(i) = rows.iter().position(|&v| v != 1.0 && v != -1.0) {
        return Err(value_error(format!(
            "row {}, column {}: {} is not +1 or -1",
            i / visible.max(1),
            i % visible.max(1),
            rows[i]
        )));
    }
    Ok(rows)
}

/// Most values an array made here may hold: 2³² `f32` (16 GiB), the training memory budget.
const MAX_OUTPUT_VALUES: usize = 1 << 32;

/// `rows × cols`, or `MemoryError` beyond [`MAX_OUTPUT_VALUES`] (before anything is
/// allocated: an allocation failure would abort the interpreter).
fn output_len(rows: usize, cols: usize) -> PyResult<usize> {
    rows.checked_mul(cols).filter(|&n| n <= MAX_OUTPUT_VALUES).ok_or_else(|| {
        PyMemoryError::new_err(format!(
            "{rows} x {cols} values is more than the {MAX_OUTPUT_VALUES} an output may hold"
        ))
    })
}

/// A `rows × cols` NumPy array that takes over `data` without copying it.
fn to_array2<T: numpy::Element>(
    py: Python<'_>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
) -> Bound<'_, PyArray2<T>> {
    Array2::from_shape_vec((rows, cols), data).expect("rows × cols values").into_pyarray(py)
}

fn train_error(e: TrainError) -> PyErr {
    match e {
        e @ TrainError::NonFinite { .. } => PyFloatingPointError::new_err(
            e.to_string()
                .replace("(--resume takes a new --lr)", "(`lr`)")
                .replace("use a clamp projection", "use projection='clamp:1'"),
        ),
        other => value_error(other),
    }
}

// ---------------------------------------------------------------------------------------------
// Training.

/// The training settings: `TrainConfig::paper(method)` (the paper's Bars 4×4 set-up for the
/// method) with the given values put in.
#[allow(clippy::too_many_arguments)]
fn config(
    method: &str,
    hidden: Option<usize>,
    patterns: Option<usize>,
    biases: Option<bool>,
    epochs: Option<u32>,
    batch: Option<usize>,
    optimizer: Option<&str>,
    lr: Option<f32>,
    momentum: Option<f32>,
    weight_decay: Option<f32>,
    projection: Option<&str>,
    lr_decay: Option<f32>,
    lr_min: Option<f32>,
    lr_decay_start: Option<u32>,
    partial_batch: Option<&str>,
    seed: u64,
) -> PyResult<TrainConfig> {
    let method: Method = method.parse().map_err(value_error)?;
    let mut c = TrainConfig::paper(method);
    c.seed = seed;
    if let Some(h) = hidden {
        c.hidden = h;
    }
    if let Some(k) = patterns {
        c.patterns = k;
    }
    if let Some(b) = biases {
        c.biases = b;
    }
    if let Some(e) = epochs {
        c.epochs = e;
    }
    if let Some(b) = batch {
        c.batch = b;
    }
    if let Some(o) = optimizer {
        c.optimizer = o.parse::<Optimizer>().map_err(value_error)?;
    }
    for (name, value) in [("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)] {
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(value_error(format!("{name} must be finite, got {}", value.unwrap())));
        }
    }
    if let Some(v) = lr {
        c.lr = v;
    }
    if let Some(v) = momentum {
        c.momentum = v;
    }
    if let Some(v) = weight_decay {
        c.weight_decay = v;
    }
    if let Some(p) = projection {
        c.projection = parse_projection(p).map_err(value_error)?;
    }
    let LrSchedule { decay, min, start_epoch } = c.schedule;
    c.schedule = LrSchedule {
        decay: lr_decay.unwrap_or(decay),
        min: lr_min.unwrap_or(min),
        start_epoch: lr_decay_start.unwrap_or(start_epoch),
    };
    if let Some(p) = partial_batch {
        c.partial_batch = p.parse::<PartialBatch>().map_err(value_error)?;
    }
    Ok(c)
}

/// `x` as the Python float with the shortest decimal that reads back as `x` (`0.02`, not
/// `0.019999999552965164`).
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

fn config_dict<'py>(py: Python<'py>, c: &TrainConfig) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("method", c.method.to_string())?;
    d.set_item("hidden", c.hidden)?;
    d.set_item("patterns", c.patterns)?;
    d.set_item("biases", c.biases)?;
    d.set_item("epochs", c.epochs)?;
    d.set_item("batch", c.batch)?;
    d.set_item("optimizer", c.optimizer.to_string())?;
    d.set_item("lr", shortest(c.lr))?;
    d.set_item("momentum", shortest(c.momentum))?;
    d.set_item("weight_decay", shortest(c.weight_decay))?;
    d.set_item("projection", projection_name(c.projection))?;
    d.set_item("lr_decay", shortest(c.schedule.decay))?;
    d.set_item("lr_min", shortest(c.schedule.min))?;
    d.set_item("lr_decay_start", c.schedule.start_epoch)?;
    d.set_item("partial_batch", c.partial_batch.to_string())?;
    d.set_item("seed", c.seed)?;
    Ok(d)
}

/// The settings `Trainer` would use for these arguments, as a dict (unset values take the
/// paper's Bars 4×4 set-up for the method).
#[pyfunction]
#[pyo3(signature = (method="pid", *, hidden=None, patterns=None, biases=None, epochs=None,
    batch=None, optimizer=None, lr=None, momentum=None, weight_decay=None, projection=None,
    lr_decay=None, lr_min=None, lr_decay_start=None, partial_batch=None, seed=0))]
#[allow(clippy::too_many_arguments)]
fn resolve_config<'py>(
    py: Python<'py>,
    method: &str,
    hidden: Option<usize>,
    patterns: Option<usize>,
    biases: Option<bool>,
    epochs: Option<u32>,
    batch: Option<usize>,
    optimizer: Option<&str>,
    lr: Option<f32>,
    momentum: Option<f32>,
    weight_decay: Option<f32>,
    projection: Option<&str>,
    lr_decay: Option<f32>,
    lr_min: Option<f32>,
    lr_decay_start: Option<u32>,
    partial_batch: Option<&str>,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let c = config(
        method,
        hidden,
        patterns,
        biases,
        epochs,
        batch,
        optimizer,
        lr,
        momentum,
        weight_decay,
        projection,
        lr_decay,
        lr_min,
        lr_decay_start,
        partial_batch,
        seed,
    )?;
    config_dict(py, &c)
}

/// The settings of a dict made by `resolve_config` (every key present), back as a
/// `TrainConfig`: the inverse of `config_dict`.
fn config_from_dict(d: &Bound<'_, PyDict>) -> PyResult<TrainConfig> {
    fn get<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
        d.get_item(key)?
            .ok_or_else(|| value_error(format!("settings: missing '{key}' (use resolve_config)")))?
            .extract()
            .map_err(|e| value_error(format!("settings: '{key}': {}", Into::<PyErr>::into(e))))
    }
    let method: String = get(d, "method")?;
    let (optimizer, projection, partial_batch): (String, String, String) =
        (get(d, "optimizer")?, get(d, "projection")?, get(d, "partial_batch")?);
    config(
        &method,
        Some(get(d, "hidden")?),
        Some(get(d, "patterns")?),
        Some(get(d, "biases")?),
        Some(get(d, "epochs")?),
        Some(get(d, "batch")?),
        Some(&optimizer),
        Some(get(d, "lr")?),
        Some(get(d, "momentum")?),
        Some(get(d, "weight_decay")?),
        Some(&projection),
        Some(get(d, "lr_decay")?),
        Some(get(d, "lr_min")?),
        Some(get(d, "lr_decay_start")?),
        Some(&partial_batch),
        get(d, "seed")?,
    )
}

/// A training run: the harness's `Trainer` (the core's engine) and the rows it trains on.
///
/// `Trainer(X, height, width, settings)` validates the settings (a dict from
/// `resolve_config`) against `X` (rows of ±1 `float32`) and initialises the model from their
/// seed; `train(epochs)` runs epochs on the rows
/// held; `set_rows(X)` replaces them (same number of columns) for the next epochs. The rows
/// are copied once, into the trainer, when given.
#[pyclass(name = "Trainer", module = "rapid._rapid")]
struct PyTrainer {
    trainer: Trainer,
    data: Dataset,
}

#[pymethods]
impl PyTrainer {
    #[new]
    fn new(
        x: PyReadonlyArray2<'_, f32>,
        height: usize,
        width: usize,
        settings: &Bound<'_, PyDict>,
    ) -> PyResult<Self> {
        let c = config_from_dict(settings)?;
        let data = dataset_of(&x, height, width)?;
        let trainer = Trainer::new(&c, &data).map_err(train_error)?;
        Ok(PyTrainer { trainer, data })
    }

    /// Replaces the rows trained on (same number of columns; any number of rows, at least
    /// one).
    fn set_rows(&mut self, x: PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        self.data = dataset_of(&x, self.data.height, self.data.width)?;
        Ok(())
    }

    /// Frees the rows held (the estimator keeps a trainer between `partial_fit` calls, not
    /// the data); `set_rows` gives new ones.
    fn clear_rows(&mut self) {
        self.data.train = Vec::new();
    }

    /// Trains `epochs` epochs on the rows held, with the GIL released; returns the seconds
    /// each took. Raises `FloatingPointError` if a parameter stops being finite (the model
    /// then holds the last update's values).
    fn train(&mut self, py: Python<'_>, epochs: u32) -> PyResult<Vec<f64>> {
        if self.data.train.is_empty() {
            return Err(value_error("the trainer holds no rows: call set_rows first"));
        }
        let PyTrainer { trainer, data } = self;
        py.detach(|| (0..epochs).map(|_| trainer.train_epoch(data)).collect::<Result<_, _>>())
            .map_err(train_error)
    }

    /// Continues from `model` (same kind and sizes) instead of the fresh initialisation; the
    /// optimiser state, schedule and epoch count stay as they are.
    fn set_model(&mut self, model: &PyModel) -> PyResult<()> {
        let mut state = self.trainer.state();
        state.model = model.model.clone();
        let cfg = *self.trainer.config();
        self.trainer = Trainer::restore(&cfg, &self.data, state).map_err(value_error)?;
        Ok(())
    }

    /// The model as it stands (a copy), with the settings it was trained with (written into
    /// its file by `save`).
    fn model(&self) -> PyModel {
        let settings = settings_text(&self.data.spec, 0, self.trainer.config());
        PyModel { model: self.trainer.model().clone(), settings: Some(settings) }
    }

    /// Epochs trained so far.
    #[getter]
    fn epochs_done(&self) -> u32 {
        self.trainer.epochs_done()
    }

    /// The learning rate of the next epoch.
    #[getter]
    fn lr(&self) -> f32 {
        self.trainer.lr()
    }

    /// The settings in use, as a dict.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        config_dict(py, self.trainer.config())
    }
}

fn dataset_of(x: &PyReadonlyArray2<'_, f32>, height: usize, width: usize) -> PyResult<Dataset> {
    let v = height.checked_mul(width).unwrap_or(0);
    let rows = pm1_rows(x, v)?;
    Dataset::from_rows(rows.to_vec(), Vec::new(), height, width).map_err(value_error)
}

// ---------------------------------------------------------------------------------------------
// Models.

/// A model file (with or without settings) or a checkpoint's model and settings.
fn decode_any(bytes: &[u8]) -> Result<PyModel, String> {
    let (model, made) = read_model_or_checkpoint(bytes)?;
    let settings = made.map(|p| settings_text(&p.dataset, p.split_seed, &p.config));
    Ok(PyModel { model, settings })
}

impl PyModel {
    fn encode(&self, settings: bool) -> Vec<u8> {
        match &self.settings {
            Some(text) if settings => self.model.encode_with_settings(text),
            _ => self.model.encode(),
        }
    }
}

/// A trained model: RA (`K` patterns over the visible and hidden units) or dense (`W`, optional
/// biases), in the same file format as the `rapid` command-line program.
#[pyclass(name = "Model", module = "rapid._rapid")]
#[derive(Clone)]
struct PyModel {
    model: Model,
    /// The settings section's text (`key=value` lines), when the model has one.
    settings: Option<String>,
}

/// `log Z` and how it was obtained.
#[pyclass(name = "LogZ", module = "rapid._rapid", get_all)]
#[derive(Clone)]
struct PyLogZ {
    /// The value (natural log).
    value: f64,
    /// Its standard error (0 when exact).
    std_err: f64,
    /// `"exact"` or `"ais"`.
    method: String,
}

#[pymethods]
impl PyLogZ {
    fn __repr__(&self) -> String {
        format!("LogZ(value={}, std_err={}, method='{}')", self.value, self.std_err, self.method)
    }
}

#[pymethods]
impl PyModel {
    /// Decodes a model file's bytes (CRC-checked), or a checkpoint's model.
    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        decode_any(bytes).map_err(value_error)
    }

    /// The model file's bytes; with `settings=True` (the default) followed by the settings
    /// section when the model has one.
    #[pyo3(signature = (settings=true))]
    fn to_bytes(&self, settings: bool) -> Vec<u8> {
        self.encode(settings)
    }

    /// Reads a model file written by `save` or by `rapid train --out`, or a checkpoint.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        // No further than the headers say, no larger than the memory budget.
        let bytes = read_model_or_checkpoint_bytes(&path, rapid_harness::limits::max_memory())
            .map_err(|e| match e {
                ReadError::Io(e) => PyOSError::new_err(format!("{}: {e}", path.display())),
                e => value_error(format!("{}: {e}", path.display())),
            })?;
        decode_any(&bytes).map_err(|e| value_error(format!("{}: {e}", path.display())))
    }

    /// Writes the model file atomically (a temporary file next to `path`, then renamed),
    /// with its settings section when it has one.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let err = |e: std::io::Error| PyOSError::new_err(format!("{}: {e}", path.display()));
        AtomicFile::prepare(&path).map_err(err)?.commit(&self.encode(true)).map_err(err)
    }

    /// How the model was made, as a dict (`dataset`, `split_seed` and the training settings
    /// of `resolve_config`), or `None` for a file without settings.
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(text) = &self.settings else { return Ok(None) };
        let (dataset, split_seed, cfg) = parse_settings(text).map_err(value_error)?;
        let d = config_dict(py, &cfg)?;
        d.set_item("dataset", dataset.to_string())?;
        d.set_item("split_seed", split_seed)?;
        Ok(Some(d))
    }

    /// `"ra"` or `"dense"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.model {
            Model::Ra { .. } => "ra",
            Model::Dense { .. } => "dense",
        }
    }

    /// Visible units `V`.
    #[getter]
    fn visible(&self) -> usize {
        self.model.view().visible()
    }

    /// Hidden units `H`.
    #[getter]
    fn hidden(&self) -> usize {
        self.model.view().hidden()
    }

    /// Patterns `K` (RA models; `None` for dense ones).
    #[getter]
    fn patterns(&self) -> Option<usize> {
        match &self.model {
            Model::Ra { dims, .. } => Some(dims.patterns),
            Model::Dense { .. } => None,
        }
    }

    /// Whether the model has visible and hidden biases.
    #[getter]
    fn has_biases(&self) -> bool {
        matches!(&self.model, Model::Dense { dims, .. } if dims.biases)
    }

    /// One line: kind and sizes.
    fn describe(&self) -> String {
        self.model.describe()
    }

    fn __repr__(&self) -> String {
        format!("<rapid Model: {}>", self.model.describe())
    }

    /// The patterns `Ξ` of an RA model, `K × (V + H)` (visible parts first); `None` for dense
    /// models.
    fn pattern_matrix<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f32>>> {
        match &self.model {
            Model::Ra { dims, xi } => {
                Some(to_array2(py, xi.clone(), dims.patterns, dims.visible + dims.hidden))
            }
            Model::Dense { .. } => None,
        }
    }

    /// The weights `W`, `V × H` (formed as `Ξ_vᵀ Ξ_h / √K` for RA models).
    fn weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let (v, h) = (self.visible(), self.hidden());
        to_array2(py, self.model.view().weights(), v, h)
    }

    /// The visible and hidden biases `(a, b)`, or `(None, None)`.
    #[allow(clippy::type_complexity)]
    fn biases<'py>(
        &self,
        py: Python<'py>,
    ) -> (Option<Bound<'py, PyArray1<f32>>>, Option<Bound<'py, PyArray1<f32>>>) {
        let view = self.model.view();
        let (a, b) = view.biases();
        (a.map(|a| a.to_vec().into_pyarray(py)), b.map(|b| b.to_vec().into_pyarray(py)))
    }

    /// Hidden activations of each row of `x`: `P(h = +1 | v) = (1 + tanh φ)/2` when
    /// `mean=False`, the mean `E[h | v] = tanh φ` when `mean=True`, where `φ = Wᵀv + b`.
    #[pyo3(signature = (x, mean=false))]
    fn hidden_activations<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        mean: bool,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let view = self.model.view();
        let (v, h) = (view.visible(), view.hidden());
        let rows = pm1_rows(&x, v)?;
        let n = rows.len() / v.max(1);
        let len = output_len(n, h)?;
        let out = py.detach(|| {
            let mut out = vec![0.0f32; len];
            out.par_chunks_mut(h.max(1)).zip(rows.par_chunks(v.max(1))).for_each_init(
                || vec![0.0f32; view.scratch_len()],
                |scratch, (phi, row)| {
                    view.hidden_field(row, phi, scratch);
                    for p in phi.iter_mut() {
                        let t = libm::tanhf(*p);
                        *p = if mean { t } else { 0.5 * (1.0 + t) };
                    }
                },
            );
            out
        });
        Ok(to_array2(py, out, n, h))
    }

    /// `log p*(v) = −F(v) = aᵀv + Σ_j log 2cosh φ_j` of each row of `x`, in `f64`: the
    /// log-probability up to `log Z`. Exactly the free energy of `rapid eval` when the
    /// smaller layer has at most 30 units.
    fn log_p_star<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let view = self.model.view();
        let v = view.visible();
        let rows = pm1_rows(&x, v)?;
        let out: Vec<f64> = py.detach(|| {
            if view.visible().min(view.hidden()) <= MAX_ENUM_BITS {
                view.with_bipartite(|b| {
                    rows.par_chunks(v.max(1)).map(|r| -exact::free_energy(b, r)).collect()
                })
            } else {
                rows.par_chunks(v.max(1)).map(|r| ais::log_p_star(&view, r)).collect()
            }
        });
        Ok(out.into_pyarray(py))
    }

    /// `log Z`: by exact enumeration when the smaller layer has at most `max_exact` units
    /// (at most 30), otherwise by forward AIS from the base rate of the training data (their
    /// pixel means `pixel_means`, each in [−1, 1]; uniform without) with a sigmoid schedule
    /// of `ais_intervals` steps and `ais_runs` runs seeded by `seed`. The AIS estimate is in
    /// expectation below the true `log Z` (Jensen), so log-likelihoods from it are in
    /// expectation too high.
    #[pyo3(signature = (pixel_means=None, max_exact=30, ais_intervals=10_000, ais_runs=100,
        seed=0))]
    fn log_z(
        &self,
        py: Python<'_>,
        pixel_means: Option<PyReadonlyArray1<'_, f64>>,
        max_exact: usize,
        ais_intervals: usize,
        ais_runs: usize,
        seed: u64,
    ) -> PyResult<PyLogZ> {
        let view = self.model.view();
        let v = view.visible();
        if max_exact > MAX_ENUM_BITS {
            return Err(value_error(format!(
                "max_exact is at most {MAX_ENUM_BITS} (2^{MAX_ENUM_BITS} states), got {max_exact}"
            )));
        }
        if view.visible().min(view.hidden()) <= max_exact {
            let z = py.detach(|| view.with_bipartite(exact::log_z));
            return z
                .map(|value| PyLogZ { value, std_err: 0.0, method: "exact".into() })
                .map_err(value_error);
        }
        if ais_intervals < 2 || ais_runs == 0 {
            return Err(value_error("AIS needs ais_intervals >= 2 and ais_runs >= 1"));
        }
        let base = match &pixel_means {
            Some(m) => {
                let m = m.as_slice().map_err(|_| value_error("pixel_means must be contiguous"))?;
                if m.len() != v || m.iter().any(|x| !(-1.0..=1.0).contains(x)) {
                    return Err(value_error(format!(
                        "pixel_means needs V = {v} values in [-1, 1], got {} values",
                        m.len()
                    )));
                }
                Base::from_means(m, Base::is_mirror_symmetric(&view))
            }
            None => Base::uniform(v),
        };
        let est = py.detach(|| {
            let opts = AisOptions {
                schedule: Schedule::Sigmoid { intervals: ais_intervals, delta: 4.0 },
                runs: ais_runs,
                seed,
                ..AisOptions::default()
            };
            ais::ais_log_z(&view, &base, &opts)
        });
        Ok(PyLogZ { value: est.log_z, std_err: est.std_err, method: "ais".into() })
    }

    /// `steps` steps of block Gibbs sampling (`v → h → v`) from each row of `x`; row `i`
    /// draws from its own stream of `seed`, so results do not depend on the thread count.
    #[pyo3(signature = (x, steps=1, seed=0))]
    fn gibbs<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
        steps: usize,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let view = self.model.view();
        let v = view.visible();
        let rows = pm1_rows(&x, v)?;
        let n = rows.len() / v.max(1);
        let out = py.detach(|| draw(&view, n, steps, Start::Data, rows, seed));
        Ok(to_array2(py, out, n, v))
    }

    /// `n` samples after `steps` block Gibbs steps from `start` (`"random"`, `"zero"`, or
    /// `"data"` with `x`: chain `c` starts at row `c mod len(x)`).
    #[pyo3(signature = (n, steps, seed=0, start="random", x=None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        steps: usize,
        seed: u64,
        start: &str,
        x: Option<PyReadonlyArray2<'py, f32>>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let view = self.model.view();
        let v = view.visible();
        let start: Start = start.parse().map_err(value_error)?;
        output_len(n, v)?;
        let rows: &[f32] = match (&x, start) {
            (Some(x), _) => pm1_rows(x, v)?,
            (None, Start::Data) => return Err(value_error("start='data' needs rows x")),
            (None, _) => &[],
        };
        if start == Start::Data && rows.is_empty() {
            return Err(value_error("start='data' needs at least one row"));
        }
        let out = py.detach(|| draw(&view, n, steps, start, rows, seed));
        Ok(to_array2(py, out, n, v))
    }

    /// The paper's reconstruction Hamming distance of the rows of `x`: the pixels where `kept`
    /// is false start at 0, `steps` Gibbs steps (with the kept pixels clamped back after each
    /// when `clamp`), `repeats` draws per image, mean fraction of wrong pixels.
    #[pyo3(signature = (x, kept, repeats=100, steps=1, clamp=false, seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn reconstruction_hd(
        &self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        kept: PyReadonlyArray1<'_, bool>,
        repeats: usize,
        steps: usize,
        clamp: bool,
        seed: u64,
    ) -> PyResult<f64> {
        let view = self.model.view();
        let v = view.visible();
        let rows = pm1_rows(&x, v)?;
        let kept = kept.as_slice().map_err(|_| value_error("kept must be contiguous"))?;
        if kept.len() != v {
            return Err(value_error(format!("kept has {} entries, not V = {v}", kept.len())));
        }
        if rows.is_empty() || repeats == 0 || steps == 0 {
            return Err(value_error("needs at least one row, one repeat and one step"));
        }
        let protocol = HdProtocol { repeats, steps, clamp };
        Ok(py.detach(|| reconstruction_hd(&view, rows, kept, protocol, seed, 0)))
    }
}

// ---------------------------------------------------------------------------------------------
// Datasets.

/// A built-in or file dataset as the command-line program names it (`bars4`, `bas:N`,
/// `mnist`, `idx:IMAGES[,LABELS]`, `npy:FILE`): a dict with `train`, `test` (float32 ±1
/// rows), `train_labels`, `test_labels` (uint32, empty without labels), `height`, `width` and
/// `kept` (the reconstruction mask).
#[pyfunction]
#[pyo3(signature = (name, split_seed=0))]
fn dataset<'py>(py: Python<'py>, name: &str, split_seed: u64) -> PyResult<Bound<'py, PyDict>> {
    let spec: DatasetSpec = name.parse().map_err(value_error)?;
    let data = py.detach(|| Dataset::load(&spec, split_seed)).map_err(value_error)?;
    let v = data.visible();
    let d = PyDict::new(py);
    let (n_train, n_test) = (data.n_train(), data.n_test());
    d.set_item("name", spec.to_string())?;
    d.set_item("height", data.height)?;
    d.set_item("width", data.width)?;
    d.set_item("train", to_array2(py, data.train, n_train, v))?;
    d.set_item("test", to_array2(py, data.test, n_test, v))?;
    d.set_item("train_labels", data.train_labels.into_pyarray(py))?;
    d.set_item("test_labels", data.test_labels.into_pyarray(py))?;
    d.set_item("kept", data.kept.into_pyarray(py))?;
    Ok(d)
}

/// The SIMD level the kernels run at on this machine (`scalar`, `avx2`, `avx512`, `neon`).
#[pyfunction]
fn kernel_level() -> String {
    rapid_core::kernels::active().name().to_string()
}

#[pymodule]
fn _rapid(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTrainer>()?;
    m.add_class::<PyModel>()?;
    m.add_class::<PyLogZ>()?;
    m.add_function(wrap_pyfunction!(resolve_config, m)?)?;
    m.add_function(wrap_pyfunction!(dataset, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_level, m)?)?;
    m.add("MAX_EXACT_BITS", MAX_ENUM_BITS)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
