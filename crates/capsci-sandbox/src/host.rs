//! Host facts a rerun would need to match (kernel release, CPU model).

use capsci_core::{HostFacts, MemoryLimitBy};

/// The kernel release (`uname -r`), or `unknown`.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            nix::sys::utsname::uname()
                .ok()
                .map(|u| u.release().to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The CPU model name from `/proc/cpuinfo`, or `unknown`.
pub fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The host facts for the envelope, with the memory mechanism that held for the call.
pub fn host_facts(memory_limit_by: MemoryLimitBy) -> HostFacts {
    HostFacts {
        kernel: kernel_release(),
        cpu_model: cpu_model(),
        memory_limit_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts_name_this_kernel_and_cpu() {
        let facts = host_facts(MemoryLimitBy::CgroupV1);
        let uname = nix::sys::utsname::uname().expect("uname");
        assert_eq!(facts.kernel, uname.release().to_string_lossy());
        assert_ne!(facts.cpu_model, "");
        assert_eq!(facts.memory_limit_by, MemoryLimitBy::CgroupV1);
    }
}
