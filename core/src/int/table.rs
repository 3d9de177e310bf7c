//! The two lookup tables of integer PID, indexed by the integer field `f = √K·φ` and clamped
//! where they saturate:
//!
//! ```text
//! tanh table    t(f) = round(tanh(f/√K)·2¹⁴)               (Q1.14 in i16), f ∈ [−R_t, R_t]
//! thresholds    T(f) = min(⌊σ(2f/√K)·2³²⌋, 2³² − 1)        (u32),          f ∈ [−R_s, R_s]
//! R_t = 6·⌈√K⌉,  R_s = 12·⌈√K⌉
//! ```
//!
//! Both are built once, in `f64` with libm (the only floating point of integer PID, marked
//! `#[allow(clippy::float_arithmetic)]`; firmware can build them on the host instead and pass
//! them in with [`Tables::from_slices`]). A lookup clamps the field to the table's range, and
//! that clamp is exact: past `R_t` the rounded `tanh` is `±2¹⁴` (`1 − tanh 6 < 2⁻¹⁵`), past
//! `R_s` the threshold is `0` or `2³² − 1` (`σ(−24) < 2⁻³²`), so a clamped lookup equals the
//! formula for every integer field (tested against the formula over `[−KV, KV]`). At MNIST
//! size (`K = 200`, `⌈√K⌉ = 15`) the two tables hold 181 + 361 entries: 1806 bytes, where
//! a table over the whole field range `[−KV, KV]` would hold `2·200·784 + 1` entries.
//!
//! A draw against a threshold is `+1` iff `r < T` or `T = 2³² − 1`, for a uniform `u32` `r`:
//! `P(+1)` is within `2⁻³²` of `σ(2f/√K)` (drawn by [`crate::int::sample::draw_spins`]).

use crate::error::ConfigError;

/// `1.0` in the Q1.14 format of the `tanh` table.
pub const TANH_ONE: i32 = 1 << 14;
/// Saturation multiple `c` of the `tanh` table: `R_t = c·⌈√K⌉`.
pub const TANH_SPAN: usize = 6;
/// Saturation multiple `c` of the threshold table: `R_s = c·⌈√K⌉`.
pub const THRESHOLD_SPAN: usize = 12;

/// `⌈√n⌉` in integers (`const`, for buffer lengths).
pub const fn ceil_sqrt(n: usize) -> usize {
    let mut r = 0usize;
    while r * r < n {
        r += 1;
    }
    r
}

/// `⌊√n⌋` of a `u64`, by Newton's method in integers.
pub fn isqrt_u64(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let mut x = n;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = (x + n / x) / 2;
    }
    x
}

/// Range `R_t` of the `tanh` table for `K` patterns.
pub const fn tanh_range(patterns: usize) -> usize {
    TANH_SPAN * ceil_sqrt(patterns)
}

/// Range `R_s` of the threshold table for `K` patterns.
pub const fn threshold_range(patterns: usize) -> usize {
    THRESHOLD_SPAN * ceil_sqrt(patterns)
}

/// Entries of the `tanh` table: `2·R_t + 1`.
pub const fn tanh_table_len(patterns: usize) -> usize {
    2 * tanh_range(patterns) + 1
}

/// Entries of the threshold table: `2·R_s + 1`.
pub const fn threshold_table_len(patterns: usize) -> usize {
    2 * threshold_range(patterns) + 1
}

/// `round(tanh(f/√K)·2¹⁴)`, the formula of the `tanh` table.
#[allow(clippy::float_arithmetic)]
pub fn tanh_entry(f: i64, patterns: usize) -> i16 {
    let x = f as f64 / libm::sqrt(patterns as f64);
    libm::round(libm::tanh(x) * f64::from(TANH_ONE)) as i16
}

/// `min(⌊σ(2f/√K)·2³²⌋, 2³² − 1)`, the formula of the threshold table .
#[allow(clippy::float_arithmetic)]
pub fn threshold_entry(f: i64, patterns: usize) -> u32 {
    let scale = 2.0 / libm::sqrt(patterns as f64);
    let p = 1.0 / (1.0 + libm::exp(-scale * f as f64));
    // `as` saturates: anything ≥ 2³² gives 2³² − 1.
    (p * 4_294_967_296.0) as u32
}

/// Fills a `tanh` table for `K = patterns` ([`tanh_table_len`] entries, entry `f + R_t`).
///
/// # Panics
/// If `buf` has the wrong length or `patterns` is 0.
pub fn fill_tanh(patterns: usize, buf: &mut [i16]) {
    assert!(patterns > 0, "K must be at least 1");
    assert_eq!(buf.len(), tanh_table_len(patterns), "tanh table needs tanh_table_len entries");
    let r = tanh_range(patterns) as i64;
    for (j, t) in buf.iter_mut().enumerate() {
        *t = tanh_entry(j as i64 - r, patterns);
    }
}

/// Fills a threshold table for `K = patterns` ([`threshold_table_len`] entries, entry
/// `f + R_s`).
///
/// # Panics
/// If `buf` has the wrong length or `patterns` is 0.
pub fn fill_thresholds(patterns: usize, buf: &mut [u32]) {
    assert!(patterns > 0, "K must be at least 1");
    assert_eq!(
        buf.len(),
        threshold_table_len(patterns),
        "threshold table needs threshold_table_len entries"
    );
    let r = threshold_range(patterns) as i64;
    for (j, t) in buf.iter_mut().enumerate() {
        *t = threshold_entry(j as i64 - r, patterns);
    }
}

/// The `tanh` and threshold tables of one `K`, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Tables<'a> {
    tanh: &'a [i16],
    thresholds: &'a [u32],
    patterns: usize,
}

impl<'a> Tables<'a> {
    /// Fills both buffers ([`fill_tanh`], [`fill_thresholds`]) and views them.
    ///
    /// # Panics
    /// If a buffer has the wrong length or `patterns` is 0.
    pub fn build(patterns: usize, tanh: &'a mut [i16], thresholds: &'a mut [u32]) -> Self {
        fill_tanh(patterns, tanh);
        fill_thresholds(patterns, thresholds);
        Tables { tanh, thresholds, patterns }
    }

    /// Views tables filled elsewhere (e.g. on the host, for firmware with no floating point
    /// at all). The lengths and the saturated end entries are checked; the entries in between
    /// are trusted.
    ///
    /// # Errors
    /// [`ConfigError::IntegerRange`] if a length does not match `K` or an end entry is not
    /// saturated.
    pub fn from_slices(
        patterns: usize,
        tanh: &'a [i16],
        thresholds: &'a [u32],
    ) -> Result<Self, ConfigError> {
        let ok = patterns > 0
            && tanh.len() == tanh_table_len(patterns)
            && thresholds.len() == threshold_table_len(patterns)
            && tanh[0] == -(TANH_ONE as i16)
            && tanh[tanh.len() - 1] == TANH_ONE as i16
            && thresholds[0] == 0
            && thresholds[thresholds.len() - 1] == u32::MAX;
        if ok {
            Ok(Tables { tanh, thresholds, patterns })
        } else {
            Err(ConfigError::IntegerRange)
        }
    }

    /// The `K` the tables were built for.
    #[inline]
    pub fn patterns(&self) -> usize {
        self.patterns
    }

    /// The `tanh` table.
    #[inline]
    pub fn tanh_table(&self) -> &'a [i16] {
        self.tanh
    }

    /// The threshold table.
    #[inline]
    pub fn threshold_table(&self) -> &'a [u32] {
        self.thresholds
    }

    /// `round(tanh(f/√K)·2¹⁴)` for any integer field (clamped lookup).
    #[inline(always)]
    pub fn tanh(&self, f: i32) -> i16 {
        let r = (self.tanh.len() / 2) as i32;
        self.tanh[(f.clamp(-r, r) + r) as usize]
    }

    /// The draw threshold `T(f)` for any integer field (clamped lookup).
    #[inline(always)]
    pub fn threshold(&self, f: i32) -> u32 {
        let r = (self.thresholds.len() / 2) as i32;
        self.thresholds[(f.clamp(-r, r) + r) as usize]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::float_arithmetic)] // f64 σ is the reference for the threshold bound
    use super::*;
    extern crate std;
    use std::vec;

    #[test]
    fn ceil_and_floor_square_roots() {
        for n in 0..2000usize {
            let c = ceil_sqrt(n);
            assert!(c * c >= n && (c == 0 || (c - 1) * (c - 1) < n), "ceil_sqrt({n}) = {c}");
        }
        for n in (0..5000u64).chain([u64::MAX, u64::MAX - 1, 1 << 62, (1 << 32) - 1]) {
            let f = isqrt_u64(n);
            assert!(f.checked_mul(f).is_some_and(|x| x <= n), "isqrt({n}) = {f}");
            assert!((f + 1).checked_mul(f + 1).is_none_or(|x| x > n), "isqrt({n}) = {f}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "tens of thousands of libm calls: slow under Miri")]
    fn clamped_lookups_equal_the_formula_over_the_whole_field_range() {
        for k in [1usize, 2, 3, 8, 40, 200] {
            let v = 64usize;
            let mut t = vec![0i16; tanh_table_len(k)];
            let mut s = vec![0u32; threshold_table_len(k)];
            let tables = Tables::build(k, &mut t, &mut s);
            let range = (k * v) as i32;
            for f in -range..=range {
                assert_eq!(tables.tanh(f), tanh_entry(f.into(), k), "tanh K={k} f={f}");
                assert_eq!(tables.threshold(f), threshold_entry(f.into(), k), "T K={k} f={f}");
            }
            // Far outside any field: still the saturated values.
            assert_eq!(tables.tanh(i32::MAX), TANH_ONE as i16);
            assert_eq!(tables.tanh(i32::MIN), -(TANH_ONE as i16));
            assert_eq!(tables.threshold(i32::MAX), u32::MAX);
            assert_eq!(tables.threshold(i32::MIN), 0);
        }
    }

    #[test]
    fn tables_at_mnist_size_are_small() {
        let k = 200;
        let bytes = 2 * tanh_table_len(k) + 4 * threshold_table_len(k);
        assert_eq!((tanh_table_len(k), threshold_table_len(k)), (181, 361));
        assert!(bytes <= 4096, "{bytes} bytes");
    }

    #[test]
    #[cfg_attr(miri, ignore = "libm table builds: slow under Miri")]
    fn tables_from_slices_checks_lengths_and_saturation() {
        let k = 8;
        let mut t = vec![0i16; tanh_table_len(k)];
        let mut s = vec![0u32; threshold_table_len(k)];
        fill_tanh(k, &mut t);
        fill_thresholds(k, &mut s);
        assert!(Tables::from_slices(k, &t, &s).is_ok());
        assert!(Tables::from_slices(10, &t, &s).is_err());
        assert!(Tables::from_slices(k, &t[1..], &s).is_err());
        let mut bad = s.clone();
        bad[0] = 1;
        assert!(Tables::from_slices(k, &t, &bad).is_err());
    }

    fn sigma_ref(x: f64) -> f64 {
        // σ(x) = (1 + tanh(x/2))/2: an evaluation independent of the table's.
        0.5 * (1.0 + libm::tanh(0.5 * x))
    }

    #[test]
    fn threshold_rule_edges() {
        // T(f) = min(⌊σ(2f/√K)·2³²⌋, 2³² − 1): σ = 1/2 gives 2³¹ for every K.
        for k in [1usize, 2, 3, 8, 200] {
            assert_eq!(threshold_entry(0, k), 1 << 31, "K={k}");
        }
        // K = 1: σ(±22) is 2.8·10⁻¹⁰ from 0 or 1 (more than 2⁻³² = 2.3·10⁻¹⁰), σ(±24) is
        // 3.8·10⁻¹¹ (less): the last entries that are not saturated, and the first that are.
        assert_eq!(threshold_entry(-12, 1), 0);
        assert_eq!(threshold_entry(-11, 1), 1);
        assert_eq!(threshold_entry(11, 1), u32::MAX - 1);
        assert_eq!(threshold_entry(12, 1), u32::MAX);
        // Far out (exp overflows to ∞ or underflows to 0): exactly 0 and "always".
        assert_eq!(threshold_entry(i64::MIN, 1), 0);
        assert_eq!(threshold_entry(i64::MAX, 1), u32::MAX);
        assert_eq!(threshold_entry(-1 << 40, 200), 0);
        assert_eq!(threshold_entry(1 << 40, 200), u32::MAX);
    }

    #[test]
    #[cfg_attr(miri, ignore = "12k f64 exp and tanh evaluations: slow under Miri")]
    fn threshold_tables_are_within_the_stated_bound() {
        // Every integer field of these sizes, `|f| ≤ K·max(V, H)`, most of them past the
        // table's clamp `R_s`: the drawn P(+1) is within 2⁻³² (+ f64 rounding) of σ(2f/√K).
        const TWO_M32: f64 = 1.0 / 4_294_967_296.0;
        for &(v_len, h_len, k) in &[(3usize, 2usize, 3usize), (16, 40, 8), (144, 30, 40), (5, 9, 1)]
        {
            let mut t = vec![0i16; tanh_table_len(k)];
            let mut s = vec![0u32; threshold_table_len(k)];
            let tables = Tables::build(k, &mut t, &mut s);
            let table = tables.threshold_table();
            assert_eq!(table.len(), 2 * threshold_range(k) + 1);
            assert_eq!((table[0], table[table.len() - 1]), (0, u32::MAX), "saturated ends");
            assert_eq!(tables.threshold(0), 1 << 31);
            let r = (k * v_len.max(h_len)) as i32;
            let sk = (k as f64).sqrt();
            let mut prev = 0u32;
            for f in -r..=r {
                let th = tables.threshold(f);
                assert!(th >= prev, "monotone");
                prev = th;
                let p = sigma_ref(2.0 * f64::from(f) / sk);
                let drawn = if th == u32::MAX { 1.0 } else { f64::from(th) * TWO_M32 };
                assert!((drawn - p).abs() < TWO_M32 + 1e-15, "K={k} f={f}: {drawn} vs {p}");
            }
        }
        // A large range saturates at both ends: exactly 0 and "always".
        let k = 40;
        let mut t = vec![0i16; tanh_table_len(k)];
        let mut s = vec![0u32; threshold_table_len(k)];
        let tables = Tables::build(k, &mut t, &mut s);
        assert_eq!((tables.threshold(-5760), tables.threshold(5760)), (0, u32::MAX));
    }
}
