//! Models the harness trains and evaluates: RA (patterns) or dense (`W`, optional biases),
//! owned ([`Model`]) or borrowed as core views ([`ModelRef`]).
//!
//! Everything that works on "an RBM" (metrics, exact enumeration, export) goes through these
//! two types, so each works the same on both kinds.

use rapid_core::dense::{DenseDims, DenseRbm};
use rapid_core::format::{
    encode, encode_settings, encoded_len, settings_encoded_len, ModelFile, ModelKind,
};
use rapid_core::{Dims, FormatError, RaModel};

use crate::exact::Bipartite;

/// An owned model.
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    /// RA: `K` patterns, row-major `K × (V+H)`.
    Ra {
        /// Sizes.
        dims: Dims,
        /// The patterns `Ξ`.
        xi: Vec<f32>,
    },
    /// Dense: `W` row-major `V × H`, then `a`, `b` when `dims.biases`.
    Dense {
        /// Sizes.
        dims: DenseDims,
        /// The parameters.
        params: Vec<f32>,
    },
}

/// A borrowed model: the core's view of either kind.
#[derive(Clone, Copy, Debug)]
pub enum ModelRef<'a> {
    /// RA view.
    Ra(RaModel<&'a [f32]>),
    /// Dense view.
    Dense(DenseRbm<&'a [f32]>),
}

impl Model {
    /// The core view.
    pub fn view(&self) -> ModelRef<'_> {
        match self {
            Model::Ra { dims, xi } => ModelRef::Ra(RaModel::new_unchecked(&xi[..], *dims)),
            Model::Dense { dims, params } => ModelRef::Dense(DenseRbm::new(&params[..], *dims)),
        }
    }

    /// The trainable parameters as one slice (`Ξ`, or `W|a|b`).
    pub fn params(&self) -> &[f32] {
        match self {
            Model::Ra { xi, .. } => xi,
            Model::Dense { params, .. } => params,
        }
    }

    /// The trainable parameters, mutable.
    pub fn params_mut(&mut self) -> &mut [f32] {
        match self {
            Model::Ra { xi, .. } => xi,
            Model::Dense { params, .. } => params,
        }
    }

    /// Model file kind and header dimensions.
    pub fn kind(&self) -> (ModelKind, Dims) {
        match self {
            Model::Ra { dims, .. } => (ModelKind::Ra, *dims),
            Model::Dense { dims, .. } => {
                (ModelKind::Dense { biases: dims.biases }, Dims::new(dims.visible, dims.hidden, 0))
            }
        }
    }

    /// Encodes the model file (see [`rapid_core::format`]).
    pub fn encode(&self) -> Vec<u8> {
        let (kind, dims) = self.kind();
        let mut buf = vec![0u8; encoded_len(kind, dims)];
        encode(kind, dims, self.params(), &mut buf);
        buf
    }

    /// Encodes the model file followed by a settings section holding `settings` (the
    /// training settings as `key=value` lines, see [`crate::checkpoint::settings_text`]).
    ///
    /// # Panics
    /// If `settings` is longer than [`rapid_core::format::MAX_SETTINGS_LEN`] bytes.
    pub fn encode_with_settings(&self, settings: &str) -> Vec<u8> {
        let mut buf = self.encode();
        let m = buf.len();
        buf.resize(m + settings_encoded_len(settings.len()), 0);
        encode_settings(settings.as_bytes(), &mut buf[m..]);
        buf
    }

    /// Decodes a model file, with or without a settings section (which is ignored).
    ///
    /// # Errors
    /// The reader's [`FormatError`].
    pub fn decode(bytes: &[u8]) -> Result<Model, FormatError> {
        Model::decode_with_settings(bytes).map(|(m, _)| m)
    }

    /// Decodes a model file and the text of its settings section, if it has one.
    ///
    /// # Errors
    /// The reader's [`FormatError`]; [`FormatError::BadSettings`] also for text that is not
    /// UTF-8.
    pub fn decode_with_settings(bytes: &[u8]) -> Result<(Model, Option<String>), FormatError> {
        let (f, text) = ModelFile::parse_with_settings(bytes)?;
        let text = text
            .map(|t| String::from_utf8(t.to_vec()))
            .transpose()
            .map_err(|_| FormatError::BadSettings("the text is not UTF-8"))?;
        Ok((Model::from_file(&f), text))
    }

    fn from_file(f: &ModelFile<'_>) -> Model {
        let mut params = vec![0.0f32; f.param_count()];
        f.read_params(&mut params);
        let d = f.dims();
        match f.kind() {
            ModelKind::Ra => Model::Ra { dims: d, xi: params },
            ModelKind::Dense { biases } => {
                Model::Dense { dims: DenseDims::new(d.visible, d.hidden, biases), params }
            }
        }
    }

    /// The largest parameter magnitude `max |x|` (NaN when a parameter is NaN):
    /// [`rapid_core::optim::largest_magnitude`], the value the optimiser returns as it writes.
    pub fn largest_param(&self) -> f32 {
        rapid_core::optim::largest_magnitude(self.params())
    }

    /// An upper bound on `|E(v, h)|` over all states, computed in `f64` from the largest
    /// parameters: `V·H·max|W| + V·max|a| + H·max|b|`, with `max|W| ≤ √K·max|ξ|²` for RA.
    /// Every field and energy the evaluation sums in `f32` is at most this large, so a model
    /// whose bound is far below `f32::MAX` cannot overflow there.
    pub fn energy_bound(&self) -> f64 {
        let largest = |x: &[f32]| x.iter().fold(0.0f64, |m, &y| m.max(f64::from(y.abs())));
        match self {
            Model::Ra { dims, xi } => {
                let m = largest(xi);
                let w = (dims.patterns as f64).sqrt() * m * m;
                dims.visible as f64 * dims.hidden as f64 * w
            }
            Model::Dense { dims, params } => {
                let (v, h) = (dims.visible, dims.hidden);
                let w = largest(&params[..v * h]);
                let (a, b) = if dims.biases {
                    (largest(&params[v * h..v * h + v]), largest(&params[v * h + v..]))
                } else {
                    (0.0, 0.0)
                };
                v as f64 * h as f64 * w + v as f64 * a + h as f64 * b
            }
        }
    }

    /// A short description: `RA (V=16, H=1000, K=8)` or `dense (V=16, H=1000, biases)`.
    pub fn describe(&self) -> String {
        match self {
            Model::Ra { dims, .. } => {
                format!("RA (V={}, H={}, K={})", dims.visible, dims.hidden, dims.patterns)
            }
            Model::Dense { dims, .. } => format!(
                "dense (V={}, H={}, {})",
                dims.visible,
                dims.hidden,
                if dims.biases { "biases" } else { "no biases" }
            ),
        }
    }
}

impl<'a> ModelRef<'a> {
    /// Visible units `V`.
    pub fn visible(&self) -> usize {
        match self {
            ModelRef::Ra(m) => m.dims().visible,
            ModelRef::Dense(m) => m.dims().visible,
        }
    }

    /// Hidden units `H`.
    pub fn hidden(&self) -> usize {
        match self {
            ModelRef::Ra(m) => m.dims().hidden,
            ModelRef::Dense(m) => m.dims().hidden,
        }
    }

    /// Scratch length for the field functions.
    pub fn scratch_len(&self) -> usize {
        match self {
            ModelRef::Ra(m) => m.dims().patterns,
            ModelRef::Dense(_) => 0,
        }
    }

    /// `φ = Wᵀv + b` (replaces `phi`).
    pub fn hidden_field(&self, v: &[f32], phi: &mut [f32], scratch: &mut [f32]) {
        match self {
            ModelRef::Ra(m) => m.hidden_field(v, &mut scratch[..m.dims().patterns], phi),
            ModelRef::Dense(m) => m.hidden_field(v, phi),
        }
    }

    /// `ψ = W h + a` (replaces `psi`).
    pub fn visible_field(&self, h: &[f32], psi: &mut [f32], scratch: &mut [f32]) {
        match self {
            ModelRef::Ra(m) => m.visible_field(h, &mut scratch[..m.dims().patterns], psi),
            ModelRef::Dense(m) => m.visible_field(h, psi),
        }
    }

    /// `E(v, h)`.
    pub fn energy(&self, v: &[f32], h: &[f32]) -> f32 {
        match self {
            ModelRef::Ra(m) => m.energy(v, h),
            ModelRef::Dense(m) => m.energy(v, h),
        }
    }

    /// Rows `rows` of the weight matrix `W` (row-major, `rows.len() × H`, into `out`), the
    /// same bits as those rows of [`ModelRef::weights`]: `W` in pieces, for exports of any
    /// size.
    ///
    /// # Panics
    /// If `rows` goes past `V` or `out` does not have `rows.len() · H` entries.
    pub fn weight_rows(&self, rows: std::ops::Range<usize>, out: &mut [f32]) {
        let h = self.hidden();
        assert!(rows.end <= self.visible(), "rows beyond V");
        assert_eq!(out.len(), rows.len() * h, "out must have rows·H entries");
        match self {
            ModelRef::Ra(m) => {
                // The same sums as `weights`, row by row: a model over these visible units.
                let d = m.dims();
                let mut xi = Vec::with_capacity(d.patterns * (rows.len() + h));
                for k in 0..d.patterns {
                    xi.extend_from_slice(&m.xi_v(k)[rows.clone()]);
                    xi.extend_from_slice(m.xi_h(k));
                }
                let part = Dims::new(rows.len(), h, d.patterns);
                RaModel::new_unchecked(&xi[..], part).weights(out);
            }
            ModelRef::Dense(m) => out.copy_from_slice(&m.w()[rows.start * h..rows.end * h]),
        }
    }

    /// `W` as a new row-major `V × H` vector (formed for RA models).
    pub fn weights(&self) -> Vec<f32> {
        match self {
            ModelRef::Ra(m) => {
                let mut w = vec![0.0; m.dims().weights_len()];
                m.weights(&mut w);
                w
            }
            ModelRef::Dense(m) => m.w().to_vec(),
        }
    }

    /// The visible and hidden biases, when the model has them.
    pub fn biases(&self) -> (Option<&'a [f32]>, Option<&'a [f32]>) {
        match self {
            ModelRef::Ra(_) => (None, None),
            ModelRef::Dense(m) => {
                let m: DenseRbm<&'a [f32]> = *m;
                let dims = m.dims();
                if dims.biases {
                    let p: &'a [f32] = m.into_inner();
                    let vh = dims.visible * dims.hidden;
                    (Some(&p[vh..vh + dims.visible]), Some(&p[vh + dims.visible..]))
                } else {
                    (None, None)
                }
            }
        }
    }

    /// Calls `f` with the exact-enumeration view of this model (`W` formed for RA models).
    pub fn with_bipartite<R>(&self, f: impl FnOnce(&Bipartite<'_>) -> R) -> R {
        let w = self.weights();
        let (a, b) = self.biases();
        f(&Bipartite { visible: self.visible(), hidden: self.hidden(), w: &w, a, b })
    }
}

#[cfg(test)]
mod tests {
    /// `W` in pieces has the bits of `W` formed at once, for both kinds.
    #[test]
    fn weight_rows_are_the_rows_of_w() {
        let dims = Dims::new(7, 5, 3);
        let xi: Vec<f32> = (0..dims.xi_len()).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
        let dd = DenseDims::new(7, 5, true);
        let params: Vec<f32> = (0..dd.param_len()).map(|i| (i as f32).sin()).collect();
        for m in [Model::Ra { dims, xi }, Model::Dense { dims: dd, params }] {
            let w = m.view().weights();
            for (a, b) in [(0, 7), (0, 1), (2, 5), (6, 7), (3, 3)] {
                let mut part = vec![f32::NAN; (b - a) * 5];
                m.view().weight_rows(a..b, &mut part);
                assert_eq!(part, w[a * 5..b * 5], "{a}..{b}");
            }
        }
    }

    use super::*;

    #[test]
    fn files_round_trip_for_every_kind() {
        let models = [
            Model::Ra {
                dims: Dims::new(2, 3, 2),
                xi: vec![1.0, -1.0, 0.5, 1.0, -1.0, 1.0, 1.0, -0.25, 1.0, 1.0],
            },
            Model::Dense {
                dims: DenseDims::new(2, 3, false),
                params: vec![0.1, 0.2, 0.3, -0.1, -0.2, -0.3],
            },
            Model::Dense {
                dims: DenseDims::new(2, 3, true),
                params: vec![0.1, 0.2, 0.3, -0.1, -0.2, -0.3, 1.0, 2.0, 3.0, 4.0, 5.0],
            },
        ];
        for m in models {
            assert_eq!(Model::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn views_agree_on_fields_and_energy() {
        let ra = Model::Ra {
            dims: Dims::new(3, 2, 2),
            xi: vec![1.0, -1.0, 1.0, 0.5, -1.0, 0.2, 1.0, 1.0, 1.0, 0.3],
        };
        let w = ra.view().weights();
        let dense = Model::Dense { dims: DenseDims::new(3, 2, false), params: w };
        let v = [1.0f32, -1.0, 1.0];
        let h = [-1.0f32, 1.0];
        let (mut p1, mut p2, mut s) = ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
        ra.view().hidden_field(&v, &mut p1, &mut s);
        dense.view().hidden_field(&v, &mut p2, &mut s);
        for (a, b) in p1.iter().zip(&p2) {
            assert!((a - b).abs() < 1e-6);
        }
        assert!((ra.view().energy(&v, &h) - dense.view().energy(&v, &h)).abs() < 1e-5);
    }
}
