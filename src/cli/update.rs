//! `husk update`: change a container's resource limits, from a JSON file (`linux.resources`
//! format) or from runc's individual options.

use std::path::{Path, PathBuf};

use clap::Args;
use husk::oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// File with the resources to update (`linux.resources` JSON), `-` for stdin. All other
    /// options are ignored then.
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Block IO weight, 10 to 1000.
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: none).
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", visible_alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period in microseconds.
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds per period.
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to use (e.g. `0-2,4`).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g, ...; -1: none).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit in bytes.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes (-1: unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit in bytes (cgroup v1; most kernels no longer enforce it).
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit in bytes (cgroup v1).
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported).
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported).
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

pub fn run(root: &Path, a: UpdateArgs) -> CmdResult {
    let container = runtime(root).load(&a.id)?;
    let resources = match &a.resources {
        Some(path) => read_resources(path)?,
        None => resources_from_options(&a)?,
    };
    container.update(&resources)?;
    Ok(0)
}

fn read_resources(path: &Path) -> Result<LinuxResources, String> {
    let text = if path == Path::new("-") {
        super::read_bounded(std::io::stdin().lock())
            .map_err(|e| format!("read resources from stdin: {e}"))?
    } else {
        super::read_option_file(path)
            .map_err(|e| format!("read resources from {}: {e}", path.display()))?
    };
    serde_json::from_slice(&text).map_err(|e| format!("resources: {e}"))
}

/// Bytes from `123`, `64k`, `1.5g`, `10MiB`, ... (binary multiples, as runc takes them); `-1`
/// stays -1.
fn parse_size(flag: &str, value: &str) -> Result<i64, String> {
    let invalid = || format!("invalid value for {flag}: invalid size: {value:?}");
    let text = value.trim();
    if text == "-1" {
        return Ok(-1);
    }
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(invalid()),
    };
    let bytes = number * 1024f64.powi(power);
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as i64)
}

/// The `linux.resources` subset that the individual options ask for.
fn resources_from_options(a: &UpdateArgs) -> Result<LinuxResources, String> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by husk".into());
    }
    let mut memory = Map::new();
    let sizes = [
        ("memory", "limit", &a.memory),
        ("memory-reservation", "reservation", &a.memory_reservation),
        ("memory-swap", "swap", &a.memory_swap),
        ("kernel-memory", "kernel", &a.kernel_memory),
        ("kernel-memory-tcp", "kernelTCP", &a.kernel_memory_tcp),
    ];
    for (flag, field, value) in sizes {
        if let Some(value) = value {
            memory.insert(field.into(), json!(parse_size(flag, value)?));
        }
    }
    let mut cpu = Map::new();
    let mut put = |field: &str, value: Option<Value>| {
        if let Some(value) = value {
            cpu.insert(field.into(), value);
        }
    };
    put("shares", a.cpu_share.map(|v| json!(v)));
    put("quota", a.cpu_quota.map(|v| json!(v)));
    put("period", a.cpu_period.map(|v| json!(v)));
    put("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    put("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    put("cpus", a.cpuset_cpus.as_ref().map(|v| json!(v)));
    put("mems", a.cpuset_mems.as_ref().map(|v| json!(v)));
    let mut resources = Map::new();
    if !memory.is_empty() {
        resources.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        resources.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(limit) = a.pids_limit {
        resources.insert("pids".into(), json!({ "limit": limit }));
    }
    if let Some(weight) = a.blkio_weight {
        resources.insert("blockIO".into(), json!({ "weight": weight }));
    }
    serde_json::from_value(Value::Object(resources)).map_err(|e| format!("resources: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        update: UpdateArgs,
    }

    fn options(args: &[&str]) -> Result<LinuxResources, String> {
        let cli = Cli::try_parse_from(std::iter::once("update").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        resources_from_options(&cli.update)
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("memory", "123"), Ok(123));
        assert_eq!(parse_size("memory", "64k"), Ok(65536));
        assert_eq!(parse_size("memory", "32M"), Ok(32 << 20));
        assert_eq!(parse_size("memory", "1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("memory", "10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("memory", "10 mb"), Ok(10 << 20));
        assert_eq!(parse_size("memory-swap", "-1"), Ok(-1));
        for bad in ["1x", "", "m", "-2", "1..2k", "99999999999p"] {
            assert!(parse_size("memory", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn options_become_resources() {
        let r = options(&[
            "--memory",
            "32m",
            "--memory-swap",
            "-1",
            "--cpu-share",
            "512",
            "--cpu-quota",
            "-1",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "20",
            "--blkio-weight",
            "300",
            "c1",
        ])
        .unwrap();
        let memory = r.memory().as_ref().unwrap();
        assert_eq!(memory.limit(), Some(32 << 20));
        assert_eq!(memory.swap(), Some(-1));
        assert_eq!(memory.reservation(), None);
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(-1));
        assert_eq!(cpu.period(), None);
        assert_eq!(cpu.cpus().as_deref(), Some("0"));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
    }

    #[test]
    fn no_options_change_nothing() {
        let r = options(&["c1"]).unwrap();
        assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
        assert!(r.block_io().is_none());
    }

    #[test]
    fn cpu_shares_alias_and_rdt_error() {
        let r = options(&["--cpu-shares", "100", "c1"]).unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(100));
        let err = options(&["--l3-cache-schema", "L3:0=f", "c1"]).unwrap_err();
        assert!(err.contains("Intel RDT"), "{err}");
    }
}
