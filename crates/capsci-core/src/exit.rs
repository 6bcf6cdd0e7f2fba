//! How a sandboxed process ended, as one word on the wire (`exited(0)`, `timeout`, `signal(9)`).

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why the backend's process ended. Serialised as the single word DESIGN.md names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// The process exited by itself with this code.
    Exited(i32),
    /// The wall-clock limit was reached; the whole process tree was killed.
    Timeout,
    /// The CPU-time limit was reached.
    CpuLimit,
    /// The memory limit was reached (cgroup OOM kill or failed allocation under RLIMIT_AS).
    MemoryLimit,
    /// The process printed more than the output limit.
    OutputLimit,
    /// The process limit was reached (fork failed).
    PidsLimit,
    /// A file grew past the file-size limit.
    FileSizeLimit,
    /// The process was killed by this signal, for no limit capsci set.
    Signal(i32),
    /// A caller cancelled the job; the process tree was killed.
    Cancelled,
    /// The sandbox could not be set up; the tool never ran.
    SandboxError,
    /// No process ran (input refused by policy before any sandbox started, or the answer was
    /// computed by capsci itself).
    NotRun,
}

impl ExitReason {
    /// Parses the wire word; `None` for any other text.
    pub fn parse(word: &str) -> Option<Self> {
        let fixed = match word {
            "timeout" => Some(ExitReason::Timeout),
            "cpu_limit" => Some(ExitReason::CpuLimit),
            "memory_limit" => Some(ExitReason::MemoryLimit),
            "output_limit" => Some(ExitReason::OutputLimit),
            "pids_limit" => Some(ExitReason::PidsLimit),
            "file_size_limit" => Some(ExitReason::FileSizeLimit),
            "cancelled" => Some(ExitReason::Cancelled),
            "sandbox_error" => Some(ExitReason::SandboxError),
            "not_run" => Some(ExitReason::NotRun),
            _ => None,
        };
        if fixed.is_some() {
            return fixed;
        }
        let number = |prefix: &str| {
            word.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|n| n.parse::<i32>().ok())
        };
        if let Some(code) = number("exited(") {
            return Some(ExitReason::Exited(code));
        }
        number("signal(").map(ExitReason::Signal)
    }

    /// Whether the process ended because a limit capsci set was reached.
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            ExitReason::Timeout
                | ExitReason::CpuLimit
                | ExitReason::MemoryLimit
                | ExitReason::OutputLimit
                | ExitReason::PidsLimit
                | ExitReason::FileSizeLimit
        )
    }

    /// Whether the limit reached is one of time (wall or CPU), as opposed to space.
    pub fn is_time_limit(self) -> bool {
        matches!(self, ExitReason::Timeout | ExitReason::CpuLimit)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Exited(code) => write!(f, "exited({code})"),
            ExitReason::Timeout => f.write_str("timeout"),
            ExitReason::CpuLimit => f.write_str("cpu_limit"),
            ExitReason::MemoryLimit => f.write_str("memory_limit"),
            ExitReason::OutputLimit => f.write_str("output_limit"),
            ExitReason::PidsLimit => f.write_str("pids_limit"),
            ExitReason::FileSizeLimit => f.write_str("file_size_limit"),
            ExitReason::Signal(n) => write!(f, "signal({n})"),
            ExitReason::Cancelled => f.write_str("cancelled"),
            ExitReason::SandboxError => f.write_str("sandbox_error"),
            ExitReason::NotRun => f.write_str("not_run"),
        }
    }
}

impl Serialize for ExitReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExitReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        ExitReason::parse(&word)
            .ok_or_else(|| serde::de::Error::custom(format!("not an exit reason: {word:?}")))
    }
}

impl JsonSchema for ExitReason {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExitReason".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "How the backend's process ended.",
            "pattern": "^(exited\\(-?[0-9]+\\)|signal\\([0-9]+\\)|timeout|cpu_limit|memory_limit|output_limit|pids_limit|file_size_limit|cancelled|sandbox_error|not_run)$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_word() {
        let all = [
            ExitReason::Exited(0),
            ExitReason::Exited(-3),
            ExitReason::Timeout,
            ExitReason::CpuLimit,
            ExitReason::MemoryLimit,
            ExitReason::OutputLimit,
            ExitReason::PidsLimit,
            ExitReason::FileSizeLimit,
            ExitReason::Signal(9),
            ExitReason::Cancelled,
            ExitReason::SandboxError,
            ExitReason::NotRun,
        ];
        for reason in all {
            assert_eq!(ExitReason::parse(&reason.to_string()), Some(reason));
        }
        assert_eq!(ExitReason::parse("exited(x)"), None);
        assert_eq!(ExitReason::parse("exited(1"), None);
    }
}
