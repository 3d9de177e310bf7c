//! Process-wide limits on memory and work, checked before the work starts.
//!
//! Small inputs can ask for enormous work: a 256 KiB model file with `V = 16, H = 65 536`
//! needs `2¹⁶ · 65 536 ≈ 4.3·10⁹` unit updates to enumerate, a 128 KiB one with
//! `V = H = 2¹⁴` a 1 GiB `W`. Every large allocation is estimated against
//! [`max_memory`] first and made with `try_reserve` ([`zeroed`]), so running out is one line
//! of error, never an abort; exact enumeration is bounded by its cost ([`check_enum_work`]).
//! The program sets both from its options (`--max-memory`, `--max-enum-work`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The memory budget when none is set and the machine's memory is unknown: 8 GiB.
pub const FALLBACK_MEMORY: u64 = 8 << 30;

/// The default exact-enumeration cost limit: `2³¹` unit updates (`2^min(V,H) · max(V,H)`),
/// some tens of seconds on two cores (`V = 16` fits with `H` up to 32 768).
pub const DEFAULT_ENUM_WORK: u64 = 1 << 31;

static MAX_MEMORY: AtomicU64 = AtomicU64::new(0);
static MAX_ENUM_WORK: AtomicU64 = AtomicU64::new(DEFAULT_ENUM_WORK);

/// A limit that the work would pass, with what asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitError(pub String);

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitError {}

/// Three quarters of the machine's memory (Linux: `MemTotal` in `/proc/meminfo`), else
/// [`FALLBACK_MEMORY`].
pub fn default_max_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    total.map_or(FALLBACK_MEMORY, |t| t / 4 * 3)
}

/// The memory budget in bytes: the one set, else [`default_max_memory`].
pub fn max_memory() -> u64 {
    match MAX_MEMORY.load(Ordering::Relaxed) {
        0 => default_max_memory(),
        n => n,
    }
}

/// Sets the memory budget (0: back to the default).
pub fn set_max_memory(bytes: u64) {
    MAX_MEMORY.store(bytes, Ordering::Relaxed);
}

/// The exact-enumeration cost limit.
pub fn max_enum_work() -> u64 {
    MAX_ENUM_WORK.load(Ordering::Relaxed)
}

/// Sets the exact-enumeration cost limit.
pub fn set_max_enum_work(work: u64) {
    MAX_ENUM_WORK.store(work, Ordering::Relaxed);
}

/// `bytes` in the largest binary unit that keeps it ≥ 1 (`1.5 GiB`).
pub fn human_bytes(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = bytes as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{x:.1} {}", units[u])
    }
}

/// Parses a size: bytes, or a number with a binary unit `K`, `M`, `G`, `T` (also `KiB`,
/// `MB`, …; all powers of 1024), as `--max-memory` takes it.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use K, M, G or T)")),
    };
    let x: f64 = num.trim().parse().map_err(|_| format!("'{s}' is not a size like 512M or 8G"))?;
    let bytes = x * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{s}' is not a size of at least 1 byte"));
    }
    Ok(bytes as u64)
}

/// The bytes available to this user on the file system holding `dir`, where the platform
/// says (Unix: `statvfs`).
pub fn free_disk_space(dir: &std::path::Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let st = rustix::fs::statvfs(dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Checks that `bytes` for `what` fit in the memory budget.
///
/// # Errors
/// A [`LimitError`] naming `what`, the size and the budget.
pub fn check_memory(what: &str, bytes: u128) -> Result<(), LimitError> {
    let budget = max_memory();
    if bytes <= u128::from(budget) {
        return Ok(());
    }
    Err(LimitError(format!(
        "{what} needs about {}, more than the memory budget of {} (--max-memory; by default \
         three quarters of this machine's memory)",
        human_bytes(bytes),
        human_bytes(u128::from(budget))
    )))
}

/// A vector of `n` zeros (default values), checked against the budget and allocated with
/// `try_reserve_exact`: running out of memory is an error, not an abort.
///
/// # Errors
/// The budget, or the allocator, refused.
pub fn zeroed<T: Clone + Default>(what: &str, n: usize) -> Result<Vec<T>, LimitError> {
    let bytes = (n as u128) * std::mem::size_of::<T>() as u128;
    check_memory(what, bytes)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        LimitError(format!("{what}: the allocation of {} failed", human_bytes(bytes)))
    })?;
    v.resize(n, T::default());
    Ok(v)
}

/// The cost of enumerating a `V × H` model exactly: `2^min(V,H) · max(V,H)` unit updates
/// (saturating).
pub fn enum_work(visible: usize, hidden: usize) -> u128 {
    let (small, large) = (visible.min(hidden), visible.max(hidden));
    if small >= 100 {
        return u128::MAX;
    }
    (1u128 << small).saturating_mul(large as u128)
}

/// Checks an exact enumeration's cost against [`max_enum_work`].
///
/// # Errors
/// A [`LimitError`] with the cost, the limit and the option that raises it.
pub fn check_enum_work(visible: usize, hidden: usize) -> Result<(), LimitError> {
    let work = enum_work(visible, hidden);
    let limit = max_enum_work();
    if work <= u128::from(limit) {
        return Ok(());
    }
    Err(LimitError(format!(
        "exact enumeration of V={visible}, H={hidden} costs 2^{} states x {} units = {:.2e} unit \
         updates, above the limit of {:.2e} (--max-enum-work raises it)",
        visible.min(hidden),
        visible.max(hidden),
        work as f64,
        limit as f64
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("8mb").unwrap(), 8 << 20);
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse_size("G").is_err());
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(100), "100 bytes");
    }

    #[test]
    fn budget_refuses_before_allocating() {
        // u128 sizes far past any budget are refused without touching the allocator.
        let e = check_memory("W", 1u128 << 100).unwrap_err();
        assert!(e.0.contains("W needs about") && e.0.contains("--max-memory"), "{e}");
        assert!(zeroed::<f32>("x", usize::MAX / 4).is_err());
        assert_eq!(zeroed::<f32>("x", 3).unwrap(), vec![0.0; 3]);
        assert!(default_max_memory() > 0);
        #[cfg(unix)]
        assert!(free_disk_space(std::path::Path::new(".")).is_some());
        assert!(free_disk_space(std::path::Path::new("/no/such/folder")).is_none());
    }

    #[test]
    fn enumeration_cost_is_two_to_the_smaller_side_times_the_larger() {
        assert_eq!(enum_work(16, 65_536), 1 << 32);
        assert_eq!(enum_work(1000, 16), 65_536_000);
        assert_eq!(enum_work(784, 1000), u128::MAX);
        let limit = max_enum_work();
        assert!(limit >= DEFAULT_ENUM_WORK || limit > 0);
        assert!(check_enum_work(16, 1000).is_ok());
        let e = check_enum_work(16, 65_536).unwrap_err();
        assert!(
            e.0.contains("2^16 states x 65536 units") && e.0.contains("--max-enum-work"),
            "{e}"
        );
    }
}
