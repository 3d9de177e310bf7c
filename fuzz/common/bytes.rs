//! The input reader shared by the fuzz targets (included with `#[path]`; each target uses a
//! subset, hence `dead_code` is allowed).
#![allow(dead_code)]

/// Reads the input front to back; past its end every byte reads as 0.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(core::array::from_fn(|_| self.u8()))
    }

    /// A value in `1..=n`.
    pub fn size(&mut self, n: u8) -> usize {
        usize::from(self.u8() % n) + 1
    }

    /// A dyadic value `(b − 128)/64` in `[−2, 2)`; hits −1, 0 and +1 exactly.
    pub fn unit(&mut self) -> f32 {
        (f32::from(self.u8()) - 128.0) / 64.0
    }
}
