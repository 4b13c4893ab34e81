//! `husk events`: the container's stats and OOM events as JSON lines, in the shape runc prints
//! (`{"type":"stats","id":...,"data":{...}}`, `{"type":"oom","id":...}`), which containerd's and
//! other clients' parsers expect: the same field names, and zero values left out where runc
//! leaves them out.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use husk::cgroups::{BlkioEntry, CgroupMode, MemoryUsage};
use husk::{Event, Stats, Status};
use serde_json::{json, Map, Value};

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// How often to report stats (Go duration syntax: 500ms, 5s, 1m30s, ...).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Print the stats once and exit.
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

pub fn run(root: &Path, a: EventsArgs) -> CmdResult {
    let container = runtime(root).load(&a.id)?;
    if container.status() == Status::Stopped {
        return Err(format!("container with id {} is not running", a.id).into());
    }
    let mode = container.cgroup_mode().unwrap_or(CgroupMode::Hybrid);
    if a.stats {
        print_event(&a.id, "stats", Some(stats_json(&container.stats()?, mode)));
        return Ok(0);
    }
    if a.interval.is_zero() {
        return Err("duration interval must be greater than 0".into());
    }
    for event in container.events(a.interval)? {
        match event? {
            Event::Stats(stats) => print_event(&a.id, "stats", Some(stats_json(&stats, mode))),
            Event::Oom => print_event(&a.id, "oom", None),
            // runc prints only these two kinds; a kind added later is not shown.
            _ => {}
        }
    }
    Ok(0)
}

/// One event line, its keys in runc's order `type`, `id`, `data` (serde_json's maps sort keys, and
/// scripts compare these lines as text).
fn event_line(id: &str, kind: &str, data: Option<&Value>) -> String {
    let mut line = format!("{{\"type\":{},\"id\":{}", json!(kind), json!(id));
    if let Some(data) = data {
        line.push_str(&format!(",\"data\":{data}"));
    }
    line.push('}');
    line
}

fn print_event(id: &str, kind: &str, data: Option<Value>) {
    println!("{}", event_line(id, kind, data.as_ref()));
}

/// Parses a Go duration: a sequence of decimal numbers with units (ns, us, µs, ms, s, m, h).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| invalid())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// Inserts `value` unless it is zero / empty (Go's `omitempty`).
fn put_nonzero(map: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Null => true,
        Value::Bool(b) => !b,
    };
    if !empty {
        map.insert(key.into(), value);
    }
}

fn memory_entry(usage: Option<&MemoryUsage>) -> Value {
    let usage = usage.cloned().unwrap_or_default();
    let mut entry = Map::new();
    entry.insert("limit".into(), json!(usage.limit));
    put_nonzero(&mut entry, "usage", json!(usage.usage));
    put_nonzero(&mut entry, "max", json!(usage.max_usage));
    entry.insert("failcnt".into(), json!(usage.failcnt));
    Value::Object(entry)
}

fn blkio_entries(entries: &[BlkioEntry]) -> Value {
    entries
        .iter()
        .map(|e| {
            let mut entry = Map::new();
            put_nonzero(&mut entry, "major", json!(e.major));
            put_nonzero(&mut entry, "minor", json!(e.minor));
            put_nonzero(&mut entry, "op", json!(e.op));
            put_nonzero(&mut entry, "value", json!(e.value));
            Value::Object(entry)
        })
        .collect()
}

/// runc's stats layout. On cgroup v2 runc reports swap like v1's memory+swap counters, so the
/// memory usage is added to the swap figures there.
fn stats_json(stats: &Stats, mode: CgroupMode) -> Value {
    let cpu = stats.cpu.clone().unwrap_or_default();
    let mut usage = Map::new();
    put_nonzero(&mut usage, "total", json!(cpu.usage_total));
    put_nonzero(&mut usage, "percpu", json!(cpu.usage_per_cpu));
    put_nonzero(&mut usage, "percpu_kernel", json!(cpu.usage_per_cpu_system));
    put_nonzero(&mut usage, "percpu_user", json!(cpu.usage_per_cpu_user));
    usage.insert("kernel".into(), json!(cpu.usage_system));
    usage.insert("user".into(), json!(cpu.usage_user));
    let mut throttling = Map::new();
    put_nonzero(&mut throttling, "periods", json!(cpu.periods));
    put_nonzero(
        &mut throttling,
        "throttledPeriods",
        json!(cpu.throttled_periods),
    );
    put_nonzero(&mut throttling, "throttledTime", json!(cpu.throttled_time));

    let mut cpuset = Map::new();
    if let Some(set) = &stats.cpuset {
        put_nonzero(&mut cpuset, "cpus", json!(set.cpus));
        put_nonzero(&mut cpuset, "mems", json!(set.mems));
        for (flag, value) in &set.flags {
            cpuset.insert(flag.clone(), json!(value));
        }
    }

    let memory = stats.memory.clone().unwrap_or_default();
    let swap = match (&memory.swap, mode) {
        (Some(swap), CgroupMode::Unified) => Some(MemoryUsage {
            usage: swap.usage.saturating_add(memory.usage.usage),
            limit: swap.limit.saturating_add(memory.usage.limit),
            ..swap.clone()
        }),
        (swap, _) => swap.clone(),
    };
    let mut memory_json = Map::new();
    // runc's `cache` is the cgroup's own page cache: v1 `cache`, v2 `file`.
    let cache = memory.raw.get("cache").copied().unwrap_or(memory.cache);
    put_nonzero(&mut memory_json, "cache", json!(cache));
    memory_json.insert("usage".into(), memory_entry(Some(&memory.usage)));
    memory_json.insert("swap".into(), memory_entry(swap.as_ref()));
    memory_json.insert("kernel".into(), memory_entry(memory.kernel.as_ref()));
    memory_json.insert("kernelTCP".into(), memory_entry(memory.kernel_tcp.as_ref()));
    put_nonzero(&mut memory_json, "raw", json!(memory.raw));

    let mut pids = Map::new();
    if let Some(p) = &stats.pids {
        put_nonzero(&mut pids, "current", json!(p.current));
        put_nonzero(&mut pids, "limit", json!(p.limit.unwrap_or(0)));
    }

    let mut blkio = Map::new();
    if let Some(b) = &stats.blkio {
        put_nonzero(
            &mut blkio,
            "ioServiceBytesRecursive",
            blkio_entries(&b.io_service_bytes_recursive),
        );
        put_nonzero(
            &mut blkio,
            "ioServicedRecursive",
            blkio_entries(&b.io_serviced_recursive),
        );
    }

    let hugetlb: Map<String, Value> = stats
        .hugetlb
        .iter()
        .map(|(size, h)| {
            let mut entry = Map::new();
            put_nonzero(&mut entry, "usage", json!(h.usage));
            put_nonzero(&mut entry, "max", json!(h.max_usage));
            entry.insert("failcnt".into(), json!(h.failcnt));
            (size.clone(), Value::Object(entry))
        })
        .collect();

    json!({
        "cpu": { "usage": usage, "throttling": throttling },
        "cpuset": cpuset,
        "memory": memory_json,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use husk::cgroups::{CpuStats, MemoryStats, PidsStats};

    #[test]
    fn event_keys_in_runc_order() {
        assert_eq!(event_line("c1", "oom", None), r#"{"type":"oom","id":"c1"}"#);
        assert_eq!(
            event_line("c1", "stats", Some(&json!({"b": 1, "a": 2}))),
            r#"{"type":"stats","id":"c1","data":{"a":2,"b":1}}"#
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "s", "5x", "-1s", "1s2"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn sample() -> Stats {
        Stats {
            memory: Some(MemoryStats {
                usage: MemoryUsage {
                    usage: 100,
                    max_usage: 0,
                    limit: 1000,
                    failcnt: 3,
                },
                swap: Some(MemoryUsage {
                    usage: 10,
                    max_usage: 20,
                    limit: 2000,
                    failcnt: 0,
                }),
                ..Default::default()
            }),
            cpu: Some(CpuStats {
                usage_total: 5,
                usage_per_cpu: vec![2, 3],
                throttled_periods: 4,
                ..Default::default()
            }),
            pids: Some(PidsStats {
                current: 2,
                limit: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn runc_field_names_and_omissions() {
        let v = stats_json(&sample(), CgroupMode::Hybrid);
        assert_eq!(v["cpu"]["usage"]["total"], 5);
        assert_eq!(v["cpu"]["usage"]["percpu"], json!([2, 3]));
        assert_eq!(v["cpu"]["usage"]["kernel"], 0, "kernel is always present");
        assert!(v["cpu"]["usage"].get("percpu_kernel").is_none());
        assert_eq!(v["cpu"]["throttling"], json!({"throttledPeriods": 4}));
        assert_eq!(
            v["memory"]["usage"],
            json!({"limit": 1000, "usage": 100, "failcnt": 3})
        );
        assert_eq!(
            v["memory"]["swap"]["usage"], 10,
            "v1 swap is memory+swap already"
        );
        assert_eq!(v["memory"]["kernel"], json!({"limit": 0, "failcnt": 0}));
        assert_eq!(v["pids"], json!({"current": 2}), "no limit is left out");
        assert_eq!(v["blkio"], json!({}));
        assert_eq!(v["hugetlb"], json!({}));
        assert!(v["network_interfaces"].is_null());
    }

    #[test]
    fn v2_swap_is_reported_as_memory_plus_swap() {
        let v = stats_json(&sample(), CgroupMode::Unified);
        assert_eq!(v["memory"]["swap"]["usage"], 110);
        assert_eq!(v["memory"]["swap"]["limit"], 3000);
    }
}
