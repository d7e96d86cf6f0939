//! What this machine offers the local farm by default (`farm render --workers`).

/// CPUs per Blender process when `--workers` is not given.
pub const CPUS_PER_WORKER: usize = 4;

/// Default `--workers`: one Blender per [`CPUS_PER_WORKER`] CPUs, at least one. On the 2-CPU
/// benchmark machine one Blender with both threads beat two with one each, because Blender's
/// start-up is paid per process (see the `farm render` section of BENCHMARKS.md).
pub fn default_workers() -> u16 {
    let workers = (renderer::config::available_cpus() / CPUS_PER_WORKER).max(1);
    u16::try_from(workers).unwrap_or(u16::MAX)
}
