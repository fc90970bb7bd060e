//! Describes the machine a run happened on, so numbers can be compared honestly.

use serde::Serialize;

/// Hardware and kernel facts, read from /proc.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// Total memory in KiB, if /proc/meminfo was readable.
    pub memory_total_kib: Option<u64>,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Total memory as GiB for humans.
    pub fn memory_display(&self) -> String {
        match self.memory_total_kib {
            Some(kib) => format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)),
            None => "unknown".to_owned(),
        }
    }
}

/// Reads what /proc tells; anything unreadable becomes "unknown" rather than failing the run.
pub fn detect() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    Machine {
        cpu_model: cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".to_owned()),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        memory_total_kib: mem_total_kib(&read("/proc/meminfo")),
        kernel: Some(read("/proc/sys/kernel/osrelease").trim().to_owned())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "unknown".to_owned()),
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(
            mem_total_kib("MemTotal:       25165824 kB\nMemFree: 1 kB\n"),
            Some(25_165_824)
        );
        assert_eq!(cpu_model(""), None);
    }
}
