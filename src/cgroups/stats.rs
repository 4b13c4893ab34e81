//! Typed resource usage of a container's cgroup (what `runc events --stats` reports).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{fsio, CgroupError};

/// Usage of the container's cgroup. A section is `None` when its controller is not available.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// The memory controller's counters.
    pub memory: Option<MemoryStats>,
    /// CPU time and throttling.
    pub cpu: Option<CpuStats>,
    /// Process count and limit.
    pub pids: Option<PidsStats>,
    /// Block I/O.
    pub blkio: Option<BlkioStats>,
    /// Keyed by page size as the kernel names it (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, HugetlbStats>,
    /// CPUs and memory nodes.
    pub cpuset: Option<CpusetStats>,
}

/// The CPUs and memory nodes the container may use, and the v1 cpuset flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpusetStats {
    /// v1 `cpuset.cpus`; v2 `cpuset.cpus.effective`.
    pub cpus: Vec<u16>,
    /// v1 `cpuset.mems`; v2 `cpuset.mems.effective`.
    pub mems: Vec<u16>,
    /// The v1 flag files (`cpu_exclusive`, `sched_load_balance`, ...) by name, without the
    /// `cpuset.` prefix; empty on v2.
    pub flags: BTreeMap<String, i64>,
}

/// One memory counter set. `limit` is the raw kernel value (v1 shows "unlimited" as a huge
/// number, v2's `max` is reported as `u64::MAX`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryUsage {
    /// Bytes in use.
    pub usage: u64,
    /// The highest usage seen (v1 `max_usage_in_bytes`, v2 `peak`).
    pub max_usage: u64,
    /// The limit in bytes.
    pub limit: u64,
    /// How many times the limit was hit.
    pub failcnt: u64,
}

/// The memory controller's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Memory (without swap).
    pub usage: MemoryUsage,
    /// v1: memory+swap counters (`memory.memsw.*`); v2: swap alone (`memory.swap.*`).
    pub swap: Option<MemoryUsage>,
    /// v1 only (`memory.kmem.*`).
    pub kernel: Option<MemoryUsage>,
    /// v1 only (`memory.kmem.tcp.*`).
    pub kernel_tcp: Option<MemoryUsage>,
    /// Page cache (v1 `total_cache`, v2 `file`).
    pub cache: u64,
    /// Processes killed by the OOM killer in this cgroup.
    pub oom_kill_count: u64,
    /// The whole `memory.stat`.
    pub raw: BTreeMap<String, u64>,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// All CPU time used.
    pub usage_total: u64,
    /// CPU time in user mode.
    pub usage_user: u64,
    /// CPU time in kernel mode.
    pub usage_system: u64,
    /// v1 only (`cpuacct.usage_percpu`).
    pub usage_per_cpu: Vec<u64>,
    /// v1 only (`cpuacct.usage_percpu_sys`).
    pub usage_per_cpu_system: Vec<u64>,
    /// v1 only (`cpuacct.usage_percpu_user`).
    pub usage_per_cpu_user: Vec<u64>,
    /// CFS enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Time spent throttled.
    pub throttled_time: u64,
}

/// The pids controller's count and limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Tasks in the cgroup now.
    pub current: u64,
    /// `None`: no limit.
    pub limit: Option<u64>,
}

/// One `major:minor op value` record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// The device's major number.
    pub major: u64,
    /// The device's minor number.
    pub minor: u64,
    /// `Read`, `Write`, ... as v1 names them (v2 values are mapped to `Read` / `Write`).
    pub op: String,
    /// Bytes or operations.
    pub value: u64,
}

/// Block I/O, per device and operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    /// Bytes transferred.
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations done.
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// Huge pages of one size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    /// Bytes in use.
    pub usage: u64,
    /// v1 only.
    pub max_usage: u64,
    /// How many times the limit was hit.
    pub failcnt: u64,
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// v1 memory, read with cgroups-rs (its readers report an unreadable file as 0; the directory
/// itself is checked first so a vanished cgroup is an error, not zeros).
pub fn memory_v1(dir: &Path, mount: &Path) -> Result<MemoryStats, CgroupError> {
    use cgroups_rs::fs::memory::MemController;
    fsio::read(&dir.join("memory.usage_in_bytes"))?;
    let controller = MemController::new(dir.to_path_buf(), mount.to_path_buf(), false);
    let memory = controller.memory_stat();
    let swap = controller.memswap();
    let kmem = controller.kmem_stat();
    let tcp = controller.kmem_tcp_stat();
    let raw = fsio::read_keyed(&dir.join("memory.stat"))?;
    Ok(MemoryStats {
        usage: MemoryUsage {
            usage: memory.usage_in_bytes,
            max_usage: memory.max_usage_in_bytes,
            limit: to_u64(memory.limit_in_bytes),
            failcnt: memory.fail_cnt,
        },
        swap: fsio::exists(dir, "memory.memsw.usage_in_bytes").then(|| MemoryUsage {
            usage: swap.usage_in_bytes,
            max_usage: swap.max_usage_in_bytes,
            limit: to_u64(swap.limit_in_bytes),
            failcnt: swap.fail_cnt,
        }),
        kernel: fsio::exists(dir, "memory.kmem.usage_in_bytes").then(|| MemoryUsage {
            usage: kmem.usage_in_bytes,
            max_usage: kmem.max_usage_in_bytes,
            limit: to_u64(kmem.limit_in_bytes),
            failcnt: kmem.fail_cnt,
        }),
        kernel_tcp: fsio::exists(dir, "memory.kmem.tcp.usage_in_bytes").then(|| MemoryUsage {
            usage: tcp.usage_in_bytes,
            max_usage: tcp.max_usage_in_bytes,
            limit: to_u64(tcp.limit_in_bytes),
            failcnt: tcp.fail_cnt,
        }),
        cache: raw.get("total_cache").copied().unwrap_or(0),
        oom_kill_count: memory.oom_control.oom_kill,
        raw,
    })
}

/// v2 memory. cgroups-rs's v2 reader reports `memory.max` = `max` as -1 and has no OOM kill
/// count, so the files are read here directly.
pub fn memory_v2(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let events = fsio::read_keyed(&dir.join("memory.events"))?;
    let raw = fsio::read_keyed(&dir.join("memory.stat"))?;
    let optional = |file: &str| -> Result<u64, CgroupError> {
        if fsio::exists(dir, file) {
            fsio::read_u64(&dir.join(file))
        } else {
            Ok(0)
        }
    };
    let swap = if fsio::exists(dir, "memory.swap.current") {
        let swap_events = fsio::read_keyed(&dir.join("memory.swap.events"))?;
        Some(MemoryUsage {
            usage: fsio::read_u64(&dir.join("memory.swap.current"))?,
            max_usage: optional("memory.swap.peak")?,
            limit: fsio::read_max(&dir.join("memory.swap.max"))?.unwrap_or(u64::MAX),
            failcnt: swap_events.get("fail").copied().unwrap_or(0),
        })
    } else {
        None
    };
    Ok(MemoryStats {
        usage: MemoryUsage {
            usage: fsio::read_u64(&dir.join("memory.current"))?,
            max_usage: optional("memory.peak")?,
            limit: fsio::read_max(&dir.join("memory.max"))?.unwrap_or(u64::MAX),
            failcnt: events.get("max").copied().unwrap_or(0),
        },
        swap,
        kernel: None,
        kernel_tcp: None,
        cache: raw.get("file").copied().unwrap_or(0),
        oom_kill_count: events.get("oom_kill").copied().unwrap_or(0),
        raw,
    })
}

/// v1 CPU: usage from the cpuacct hierarchy (through cgroups-rs), throttling from `cpu.stat`.
pub fn cpu_v1(
    cpuacct: Option<(&Path, &Path)>,
    cpu: Option<&Path>,
) -> Result<Option<CpuStats>, CgroupError> {
    use cgroups_rs::fs::cpuacct::CpuAcctController;
    if cpuacct.is_none() && cpu.is_none() {
        return Ok(None);
    }
    let mut stats = CpuStats::default();
    if let Some((dir, mount)) = cpuacct {
        fsio::read(&dir.join("cpuacct.usage"))?;
        let acct = CpuAcctController::new(dir.to_path_buf(), mount.to_path_buf()).cpuacct();
        stats.usage_total = acct.usage;
        stats.usage_user = acct.usage_user;
        stats.usage_system = acct.usage_sys;
        let numbers = |list: &str| {
            list.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        };
        stats.usage_per_cpu = numbers(&acct.usage_percpu);
        stats.usage_per_cpu_system = numbers(&acct.usage_percpu_sys);
        stats.usage_per_cpu_user = numbers(&acct.usage_percpu_user);
    }
    if let Some(dir) = cpu {
        let stat = fsio::read_keyed(&dir.join("cpu.stat"))?;
        stats.periods = stat.get("nr_periods").copied().unwrap_or(0);
        stats.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
        stats.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
    }
    Ok(Some(stats))
}

/// v2 CPU from `cpu.stat` (microseconds there, nanoseconds here). The usage lines exist even
/// without the cpu controller; the throttling ones only with it.
pub fn cpu_v2(dir: &Path) -> Result<CpuStats, CgroupError> {
    let stat = fsio::read_keyed(&dir.join("cpu.stat"))?;
    let usec = |key: &str| stat.get(key).copied().unwrap_or(0).saturating_mul(1000);
    Ok(CpuStats {
        usage_total: usec("usage_usec"),
        usage_user: usec("user_usec"),
        usage_system: usec("system_usec"),
        usage_per_cpu: Vec::new(),
        usage_per_cpu_system: Vec::new(),
        usage_per_cpu_user: Vec::new(),
        periods: stat.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: usec("throttled_usec"),
    })
}

/// Parses a kernel list such as `0-3,6` (empty for an empty file).
pub fn parse_list(path: &Path, content: &str) -> Result<Vec<u16>, CgroupError> {
    let bad = || CgroupError::Parse {
        path: path.to_path_buf(),
        content: content.to_owned(),
    };
    let mut out = Vec::new();
    for part in content.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last): (u16, u16) = match part.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let n = part.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if first > last {
            return Err(bad());
        }
        out.extend(first..=last);
    }
    Ok(out)
}

/// v1 cpuset: the configured lists and every flag file.
pub fn cpuset_v1(dir: &Path) -> Result<CpusetStats, CgroupError> {
    const FLAGS: &[&str] = &[
        "cpu_exclusive",
        "mem_exclusive",
        "mem_hardwall",
        "memory_migrate",
        "memory_pressure",
        "memory_spread_page",
        "memory_spread_slab",
        "sched_load_balance",
        "sched_relax_domain_level",
    ];
    let list = |file: &str| {
        let path = dir.join(file);
        parse_list(&path, &fsio::read(&path)?)
    };
    let mut flags = BTreeMap::new();
    for flag in FLAGS {
        let file = format!("cpuset.{flag}");
        if fsio::exists(dir, &file) {
            let path = dir.join(&file);
            let content = fsio::read(&path)?;
            let value = content.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                content: content.clone(),
            })?;
            flags.insert((*flag).to_owned(), value);
        }
    }
    Ok(CpusetStats {
        cpus: list("cpuset.cpus")?,
        mems: list("cpuset.mems")?,
        flags,
    })
}

/// v2 cpuset: what the cgroup effectively gets (its own files may be empty, meaning "inherit").
pub fn cpuset_v2(dir: &Path) -> Result<CpusetStats, CgroupError> {
    let list = |file: &str| {
        let path = dir.join(file);
        parse_list(&path, &fsio::read(&path)?)
    };
    Ok(CpusetStats {
        cpus: list("cpuset.cpus.effective")?,
        mems: list("cpuset.mems.effective")?,
        flags: BTreeMap::new(),
    })
}

/// `pids.current` / `pids.max` (same files on v1 and v2).
pub fn pids(dir: &Path) -> Result<PidsStats, CgroupError> {
    Ok(PidsStats {
        current: fsio::read_u64(&dir.join("pids.current"))?,
        limit: fsio::read_max(&dir.join("pids.max"))?,
    })
}

fn parse_device(path: &Path, device: &str) -> Result<(u64, u64), CgroupError> {
    device
        .split_once(':')
        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
        .ok_or_else(|| CgroupError::Parse {
            path: path.to_path_buf(),
            content: device.to_owned(),
        })
}

/// Parses v1 `blkio.*_recursive` files (`maj:min Op value` lines, plus a `Total` line).
fn blkio_v1_file(path: &Path) -> Result<Vec<BlkioEntry>, CgroupError> {
    let content = fsio::read(path)?;
    let mut entries = Vec::new();
    for line in content.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() != 3 {
            continue;
        }
        let (major, minor) = parse_device(path, words[0])?;
        entries.push(BlkioEntry {
            major,
            minor,
            op: words[1].to_owned(),
            value: words[2].parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: line.to_owned(),
            })?,
        });
    }
    Ok(entries)
}

/// v1 block I/O, as counted by the throttling policy (always present, unlike the CFQ/BFQ ones).
pub fn blkio_v1(dir: &Path) -> Result<BlkioStats, CgroupError> {
    Ok(BlkioStats {
        io_service_bytes_recursive: blkio_v1_file(
            &dir.join("blkio.throttle.io_service_bytes_recursive"),
        )?,
        io_serviced_recursive: blkio_v1_file(&dir.join("blkio.throttle.io_serviced_recursive"))?,
    })
}

/// v2 block I/O from `io.stat` (`maj:min rbytes=.. wbytes=.. rios=.. wios=..` lines).
pub fn blkio_v2(dir: &Path) -> Result<BlkioStats, CgroupError> {
    let path = dir.join("io.stat");
    let content = fsio::read(&path)?;
    let mut stats = BlkioStats::default();
    for line in content.lines() {
        let mut words = line.split_whitespace();
        let Some(device) = words.next() else { continue };
        let (major, minor) = parse_device(&path, device)?;
        for pair in words {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse() else { continue };
            let (list, op) = match key {
                "rbytes" => (&mut stats.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut stats.io_service_bytes_recursive, "Write"),
                "rios" => (&mut stats.io_serviced_recursive, "Read"),
                "wios" => (&mut stats.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            });
        }
    }
    Ok(stats)
}

/// Page sizes that have a `hugetlb.<size>.<suffix>` file in `dir`.
pub fn hugetlb_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>, CgroupError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut sizes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_owned())
        })
        .collect();
    sizes.sort();
    Ok(sizes)
}

pub fn hugetlb_v1(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut map = BTreeMap::new();
    for size in hugetlb_sizes(dir, ".limit_in_bytes")? {
        let file = |what: &str| dir.join(format!("hugetlb.{size}.{what}"));
        map.insert(
            size.clone(),
            HugetlbStats {
                usage: fsio::read_u64(&file("usage_in_bytes"))?,
                max_usage: fsio::read_u64(&file("max_usage_in_bytes"))?,
                failcnt: fsio::read_u64(&file("failcnt"))?,
            },
        );
    }
    Ok(map)
}

pub fn hugetlb_v2(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut map = BTreeMap::new();
    for size in hugetlb_sizes(dir, ".max")? {
        let file = |what: &str| dir.join(format!("hugetlb.{size}.{what}"));
        let events = fsio::read_keyed(&file("events"))?;
        map.insert(
            size.clone(),
            HugetlbStats {
                usage: fsio::read_u64(&file("current"))?,
                max_usage: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_lists() {
        let path = Path::new("cpuset.cpus");
        assert_eq!(parse_list(path, "0-2,5\n").unwrap(), [0, 1, 2, 5]);
        assert_eq!(parse_list(path, "7").unwrap(), [7]);
        assert!(parse_list(path, "\n").unwrap().is_empty());
        for bad in ["3-1", "a", "1-", "1,,x"] {
            assert!(parse_list(path, bad).is_err(), "{bad:?} accepted");
        }
    }
}
