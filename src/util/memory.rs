//! Memory estimates made before an allocation, so that a setting too large for the machine is a
//! clear error naming it, never an out-of-memory kill (SPEC's reliability rules).

use crate::error::{Error, Result};

/// Bytes of memory the OS says are available now (Linux `MemAvailable`); `None` where unknown.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `bytes` in GiB with two decimals.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Fails when `needed` bytes (an estimate for `what`) exceed `available` (when known), naming
/// the settings that drive it in `hint`.
pub fn check_fits(what: &str, needed: u64, available: Option<u64>, hint: &str) -> Result<()> {
    match available {
        Some(avail) if needed > avail => Err(Error::Unusable(format!(
            "{what} needs about {} of memory, more than the {} available — {hint}",
            gib(needed),
            gib(avail)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_over_the_available_memory_is_an_error_naming_the_settings() {
        check_fits("x", 10, Some(11), "lower y").unwrap();
        check_fits("x", 10, None, "lower y").unwrap();
        let err = check_fits("training", 3 << 30, Some(1 << 30), "lower --batch")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("3.00 GiB") && err.contains("1.00 GiB"),
            "{err}"
        );
        assert!(err.contains("lower --batch"), "{err}");
        assert!(available_bytes().is_none_or(|b| b > 0));
    }
}
