//! How much memory this process has used at most.

/// Peak resident set size of this process (VmHWM from /proc/self/status), in bytes;
/// `None` where /proc is not available. It is process-wide and never decreases.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
