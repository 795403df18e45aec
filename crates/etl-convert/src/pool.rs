//! One bound on parsing work for the whole process: as many chunks decode at once as the
//! container may use CPUs (its cgroup quota), however many conversions run side by side,
//! at a priority below the pipeline's serial stages.

use std::sync::{Condvar, Mutex, OnceLock};

/// The CPUs this process may use: the cgroup's CPU quota (v2 `cpu.max`, else v1
/// `cpu.cfs_quota_us`), capped by the CPUs it may run on; at least 1.
pub fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let quota = quota_cpus(
            read("/sys/fs/cgroup/cpu.max").as_deref(),
            read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
                .or_else(|| read("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"))
                .as_deref(),
            read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
                .or_else(|| read("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"))
                .as_deref(),
        );
        let online = std::thread::available_parallelism().map_or(1, usize::from);
        quota.map_or(online, |q| q.min(online)).max(1)
    })
}

/// CPUs granted by a cgroup quota, rounded up; `None` when unlimited or unknown.
fn quota_cpus(v2: Option<&str>, v1_quota: Option<&str>, v1_period: Option<&str>) -> Option<usize> {
    let ratio = |quota: &str, period: &str| -> Option<usize> {
        let quota: i64 = quota.trim().parse().ok()?;
        let period: i64 = period.trim().parse().ok()?;
        (quota > 0 && period > 0)
            .then(|| (quota + period - 1) / period)?
            .try_into()
            .ok()
    };
    if let Some(line) = v2 {
        let mut parts = line.split_whitespace();
        return match (parts.next(), parts.next()) {
            (Some("max"), _) | (None, _) => None,
            (Some(quota), period) => ratio(quota, period.unwrap_or("100000")),
        };
    }
    ratio(v1_quota?, v1_period?)
}

struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| Slots {
        free: Mutex::new(cpus()),
        freed: Condvar::new(),
    })
}

/// Held while decoding one chunk; waits while every CPU's slot is taken.
pub(crate) struct Slot(());

pub(crate) fn slot() -> Slot {
    let slots = slots();
    let mut free = slots.free.lock().unwrap_or_else(|e| e.into_inner());
    while *free == 0 {
        free = slots.freed.wait(free).unwrap_or_else(|e| e.into_inner());
    }
    *free -= 1;
    Slot(())
}

impl Drop for Slot {
    fn drop(&mut self) {
        let slots = slots();
        let mut free = slots.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        slots.freed.notify_one();
    }
}

/// How far below the rest of the process the parsing threads run, in `nice` steps: when
/// they compete for a CPU with a serial stage, the stage gets about nine tenths of it.
const PARSER_NICENESS: i32 = 10;

/// Lowers the calling parsing thread's priority below the threads that cannot be split:
/// the reader (which also decompresses), the writer and each column's encoder. Parsing
/// scales over every CPU, they do not, and at equal priority the scheduler gives a stage
/// that is the pipeline's bottleneck only its fair share among them (a 50,000-name text
/// column's dictionary encoding got about three quarters of a CPU on 2 CPUs while the
/// parsers waited for it). Within a container's cgroup it orders only this process's threads.
/// Best effort: where the system refuses, the thread keeps its priority.
pub(crate) fn yield_to_serial_stages() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let thread = rustix::thread::gettid();
        let lowered = getpriority_process(Some(thread))
            .and_then(|nice| setpriority_process(Some(thread), (nice + PARSER_NICENESS).min(19)));
        if let Err(error) = lowered {
            tracing::debug!(%error, "parsing runs at the same priority as the serial stages");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_of_both_cgroup_versions() {
        assert_eq!(quota_cpus(Some("max 100000\n"), None, None), None);
        assert_eq!(quota_cpus(Some("200000 100000\n"), None, None), Some(2));
        assert_eq!(quota_cpus(Some("150000 100000"), None, None), Some(2));
        assert_eq!(quota_cpus(Some("50000 100000"), None, None), Some(1));
        assert_eq!(quota_cpus(None, Some("-1\n"), Some("100000\n")), None);
        assert_eq!(
            quota_cpus(None, Some("400000\n"), Some("100000\n")),
            Some(4)
        );
        assert_eq!(quota_cpus(None, None, None), None);
        assert!(cpus() >= 1);
    }

    #[test]
    fn slots_never_exceed_the_cpus() {
        let busy = std::sync::atomic::AtomicUsize::new(0);
        let peak = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 * cpus() + 2 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let _slot = slot();
                        let now = busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        std::thread::yield_now();
                        busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(peak >= 1 && peak <= cpus(), "peak {peak}");
    }

    /// The thread's nice value, as the kernel reports it (field 19 of its `stat`).
    #[cfg(target_os = "linux")]
    fn nice_of_this_thread() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name, in parentheses, may hold spaces: count fields after it.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_parsing_thread_runs_below_the_others_and_only_it() {
        let before = nice_of_this_thread();
        let parser = std::thread::spawn(|| {
            yield_to_serial_stages();
            nice_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(parser, (before + PARSER_NICENESS).min(19));
        assert_eq!(nice_of_this_thread(), before);
        let sibling = std::thread::spawn(nice_of_this_thread).join().unwrap();
        assert_eq!(sibling, before);
    }
}
