//! What a load report says about the machine it ran on: cores, OS, CPU model, and the
//! process's peak resident set size. Reads `/proc` on Linux and reports "unavailable"
//! elsewhere; never fails a run.

use serde::Serialize;

/// The machine a run happened on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// Cores available to the process (`std::thread::available_parallelism`).
    pub cores: usize,
    /// OS and architecture (`linux x86_64`), with the kernel release when readable.
    pub os: String,
    /// CPU model name from `/proc/cpuinfo`, when readable.
    pub cpu: Option<String>,
}

impl Machine {
    /// Describe this machine.
    pub fn detect() -> Self {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_owned());
        let os = match kernel {
            Some(k) => format!(
                "{} {} (kernel {k})",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            None => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        };
        let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        });
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os,
            cpu,
        }
    }
}

/// Peak resident set size of this process in bytes (`VmHWM` of `/proc/self/status`), or
/// `None` where it cannot be read (not Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm(&status)
}

/// The `VmHWM` line of a `/proc/<pid>/status` text, in bytes.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmHWM:\t   2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(vm_hwm(status), Some(2048 * 1024));
        assert_eq!(vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn the_machine_has_at_least_one_core() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(m.os.contains(std::env::consts::OS));
    }
}
