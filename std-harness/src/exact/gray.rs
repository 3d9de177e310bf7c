//! Gray-code order and the fixed chunking of the state space (see "Gray-code enumeration and
//! chunking" in the docs of [`crate::exact`]), shared by the oracle and the fast path.

/// Chunks have at least `2^LOCAL_MIN` states (unless there are fewer states)…
const LOCAL_MIN: usize = 10;
/// …and there are at most `2^CHUNK_LOG_MAX` chunks.
const CHUNK_LOG_MAX: usize = 6;

/// `k`-th Gray code.
#[inline]
pub(super) fn gray_code(k: u64) -> u64 {
    k ^ (k >> 1)
}

/// The position `k` of the Gray code `g` (`gray_code(inverse_gray(g)) == g`).
#[inline]
pub(super) fn inverse_gray(g: u64) -> u64 {
    let mut k = g;
    for shift in [1, 2, 4, 8, 16, 32] {
        k ^= k >> shift;
    }
    k
}

/// Spin `i` of the state `code` (bit set: `+1`).
#[inline]
pub(super) fn spin(code: u64, i: usize) -> f64 {
    if (code >> i) & 1 == 1 {
        1.0
    } else {
        -1.0
    }
}

/// The fixed chunking of `2^bits` states (plus `fixed` bits OR-ed into every code).
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    bits: usize,
    pub(super) local: usize,
    fixed: u64,
}

impl Plan {
    pub(super) fn new(bits: usize, fixed: u64) -> Self {
        Plan { bits, local: bits.min(LOCAL_MIN).max(bits.saturating_sub(CHUNK_LOG_MAX)), fixed }
    }

    pub(super) fn chunks(self) -> usize {
        1 << (self.bits - self.local)
    }

    pub(super) fn start(self, chunk: usize) -> u64 {
        gray_code((chunk as u64) << self.local) | self.fixed
    }
}
