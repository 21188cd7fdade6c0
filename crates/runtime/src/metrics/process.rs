//! The standard `process_*` metrics (CPU time, memory, file descriptors, threads, start
//! time), read from `/proc/self` at every scrape. prometheus-client has no process
//! collector; the names and meanings follow the Prometheus client libraries' so that stock
//! dashboards and alerts work. On systems without `/proc` nothing is exposed.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Linux reports times in `/proc` in USER_HZ, which is 100 on every architecture the
/// kernel's user ABI knows (sysconf(_SC_CLK_TCK) would need `unsafe`).
const TICKS_PER_SECOND: f64 = 100.0;

/// The families the collector encodes, as PromQL names them, and their types.
pub const FAMILIES: &[(&str, &str)] = &[
    ("process_cpu_seconds_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_virtual_memory_bytes", "gauge"),
    ("process_threads", "gauge"),
    ("process_start_time_seconds", "gauge"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
];

/// A registry without prefix holding the process collector.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ProcessCollector));
    registry
}

/// What `/proc` says about this process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessFacts {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub threads: f64,
    /// Seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

/// Reads `/proc/self/stat` (CPU time, start time in ticks after boot, threads) and
/// `/proc/self/status` (memory in kB), with the boot time from `/proc/stat`.
pub fn read() -> Option<ProcessFacts> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let mut facts = parse(&stat, &status)?;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| boot_time(&s));
    if let (Some(boot), Some(ticks)) = (boot, start_ticks(&stat)) {
        facts.start_time_seconds = Some(boot + ticks / TICKS_PER_SECOND);
    }
    facts.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    facts.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| max_open_files(&l));
    Some(facts)
}

/// The fields after the command name of `/proc/self/stat`: the name is in parentheses and
/// may hold spaces and parentheses itself, so split after the last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// Field 22 (starttime), the 20th after the command name.
fn start_ticks(stat: &str) -> Option<f64> {
    stat_fields(stat)?.get(19)?.parse().ok()
}

/// CPU time (utime + stime, fields 14 and 15), threads (field 20), memory (VmRSS, VmSize).
pub fn parse(stat: &str, status: &str) -> Option<ProcessFacts> {
    let fields = stat_fields(stat)?;
    // Fields counted from 1 in proc(5); index 0 here is field 3 (state).
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let kb = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let value: f64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
        Some(value * 1024.0)
    };
    Some(ProcessFacts {
        cpu_seconds: (field(14)? + field(15)?) / TICKS_PER_SECOND,
        threads: field(20)?,
        resident_bytes: kb("VmRSS:").unwrap_or(0.0),
        virtual_bytes: kb("VmSize:").unwrap_or(0.0),
        start_time_seconds: None,
        open_fds: None,
        max_fds: None,
    })
}

/// `btime` of `/proc/stat`: the boot time in seconds since the epoch.
fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(facts) = read() else {
            return Ok(());
        };
        let counter = ConstCounter::new(facts.cpu_seconds);
        counter.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            counter.metric_type(),
        )?)?;
        let mut gauge = |name: &str, help: &str, value: f64| {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
        };
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            facts.resident_bytes,
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            facts.virtual_bytes,
        )?;
        gauge("process_threads", "Number of OS threads", facts.threads)?;
        if let Some(start) = facts.start_time_seconds {
            gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                start,
            )?;
        }
        if let Some(open) = facts.open_fds {
            gauge("process_open_fds", "Number of open file descriptors", open)?;
        }
        if let Some(max) = facts.max_fds {
            gauge(
                "process_max_fds",
                "Maximum number of open file descriptors",
                max,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A command name with a space and a parenthesis, as the kernel writes it.
    const STAT: &str = "4242 (edge plane)) S 1 4242 4242 0 -1 4194560 1500 0 3 0 250 75 0 0 20 0 7 0 123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
    const STATUS: &str =
        "Name:\tedgeplane\nVmSize:\t  102400 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n";

    #[test]
    fn stat_and_status_parse() {
        let facts = parse(STAT, STATUS).expect("parses");
        assert_eq!(facts.cpu_seconds, 3.25);
        assert_eq!(facts.threads, 7.0);
        assert_eq!(facts.resident_bytes, 10240.0 * 1024.0);
        assert_eq!(facts.virtual_bytes, 102400.0 * 1024.0);
        assert_eq!(start_ticks(STAT), Some(123456.0));
        assert_eq!(parse("no parenthesis", STATUS), None);
        assert_eq!(parse("1 (x) S 1", STATUS), None, "too few fields");
    }

    #[test]
    fn boot_time_and_fd_limit_parse() {
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000.0)
        );
        assert_eq!(boot_time("cpu 1 2 3\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(max_open_files("Max processes 10 10"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn every_family_listed_is_encoded_and_no_other() {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry()).expect("encodes");
        let mut encoded: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_string)
            .collect();
        encoded.sort();
        let mut listed: Vec<String> = FAMILIES.iter().map(|(f, _)| f.to_string()).collect();
        listed.sort();
        assert_eq!(encoded, listed, "{text}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read() {
        let facts = read().expect("/proc/self is readable on Linux");
        assert!(facts.threads >= 1.0, "{facts:?}");
        assert!(facts.resident_bytes > 0.0, "{facts:?}");
        assert!(facts.open_fds.is_some_and(|n| n >= 1.0), "{facts:?}");
        let start = facts.start_time_seconds.expect("start time");
        // After 2020-01-01: the boot time and the ticks were combined, not one alone.
        assert!(start > 1_577_836_800.0, "{facts:?}");
    }
}
