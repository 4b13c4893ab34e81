//! The systemd cgroup driver (runc's `--systemd-cgroup`): the container's cgroup is a transient
//! unit that systemd makes, and whose properties carry the resource limits.
//!
//! # Where the cgroup goes (`linux.cgroupsPath`)
//!
//! With this driver `linux.cgroupsPath` has runc's `slice:prefix:name` form (facts checked
//! against runc 1.1's documentation and sources' behaviour, no code taken):
//!
//! * the unit is `<prefix>-<name>.scope` (`<name>.scope` for an empty prefix), a child of
//!   `<slice>`; an empty slice means `system.slice`;
//! * a name ending in `.slice` makes a slice unit of that name instead (its parent given as
//!   `Wants=`), which systemd places where its dashed name says;
//! * no (or an empty) `cgroupsPath` is `system.slice:husk:<container id>`, as runc's is
//!   `system.slice:runc:<id>`: the prefix is the runtime's name;
//! * any other form is an error naming `linux.cgroupsPath`.
//!
//! A slice `a-b-c.slice` lives at `/sys/fs/cgroup/a.slice/a-b.slice/a-b-c.slice`
//! (`-.slice` is the root).
//!
//! # What happens when
//!
//! `create` only connects to the system bus and works out the properties: a scope cannot exist
//! without a process. The first process added (the init's first stage, before it has run
//! anything of the container's) goes in as the `PIDs` of `StartTransientUnit` (mode
//! `replace`), with `Delegate=yes`, `DefaultDependencies=no`, CPU, memory, IO and tasks
//! accounting, a `Description`, and the resources below; the call returns a job, and the
//! `JobRemoved` signal of that job, within [`JOB_TIMEOUT`], says whether it worked. Then every
//! resource is written to the delegated cgroup by the cgroupfs code too (as runc does): the
//! unit properties make systemd keep the limits it knows, the files cover the rest.
//! `update` does `SetUnitProperties` (runtime) and the same file writes; `destroy` does
//! `StopUnit` (waiting for its job), `ResetFailedUnit`, and removes whatever directory is left.
//!
//! # Resources as unit properties (runc 1.1's mapping, cgroup v2)
//!
//! | `linux.resources` | property |
//! |---|---|
//! | `memory.limit` | `MemoryMax` (-1: infinity) |
//! | `memory.reservation` | `MemoryLow` |
//! | `memory.swap` | `MemorySwapMax`, converted to the v2 meaning (swap alone) |
//! | `cpu.shares` | `CPUWeight`, converted as for `cpu.weight` |
//! | `cpu.quota`, `cpu.period` | `CPUQuotaPerSecUSec` (rounded up to 10 ms, systemd's unit), `CPUQuotaPeriodUSec` |
//! | `cpu.cpus`, `cpu.mems` | `AllowedCPUs`, `AllowedMemoryNodes` (bit masks) |
//! | `pids.limit` | `TasksMax` (-1: infinity) |
//! | `devices` | `DevicePolicy` and `DeviceAllow`, see [`device_properties`] |
//!
//! Annotations `org.systemd.property.<Name>` add properties of their own (see
//! [`annotation_properties`]), as runc allows.
//!
//! # What cgroups-rs provides and what it lacks
//!
//! cgroups-rs 0.5's `systemd` module is used for the bit masks of `AllowedCPUs` /
//! `AllowedMemoryNodes` and for slice path expansion. Its D-Bus client (`SystemdClient`) is not:
//! it opens a new bus connection for every call, does not wait for the jobs it starts or stops
//! (so a `create` would race systemd moving the process, and a `delete` systemd removing the
//! cgroup), keeps its manager proxy private (so the `JobRemoved` signal cannot be received
//! through it) and passes `Wants=` with the wrong D-Bus type. This module therefore talks to
//! systemd through zbus (the crate cgroups-rs itself uses) with one connection per manager.
//!
//! Only cgroup v2 hosts are supported: a hybrid or v1 host with systemd gets an error naming
//! that.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use serde::{Deserialize, Serialize};
use zbus::zvariant::{OwnedObjectPath, Value};

use super::CgroupError;

/// How long a job of systemd (start or stop of the unit) may take.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// The prefix of the scope's name when `linux.cgroupsPath` is empty (runc's is `runc`).
pub const DEFAULT_PREFIX: &str = "husk";

/// The slice a unit goes into when the path names none.
pub const DEFAULT_SLICE: &str = "system.slice";

/// Annotation prefix of extra unit properties (`org.systemd.property.TimeoutStopUSec`, ...).
pub const PROPERTY_ANNOTATION: &str = "org.systemd.property.";

const DESTINATION: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
const LOAD_FAILED: &str = "org.freedesktop.systemd1.LoadFailed";

/// The systemd side of a container's cgroup, kept in its state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SystemdUnit {
    /// The unit's name (`husk-<id>.scope`, ...).
    pub unit: String,
    /// The slice it was put in (for a scope), or the slice it wants (for a slice unit).
    pub slice: String,
}

/// A unit property: its name and its D-Bus value.
pub type Property = (String, Value<'static>);

/// Works out the unit and its cgroup path (as `/proc/<pid>/cgroup` shows it) from
/// `linux.cgroupsPath` in the `slice:prefix:name` form.
pub fn unit_for_path(
    cgroups_path: Option<&Path>,
    container_id: &str,
) -> Result<(SystemdUnit, PathBuf), CgroupError> {
    let raw = cgroups_path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let invalid = |reason: String| CgroupError::InvalidPath {
        path: PathBuf::from(&raw),
        reason,
    };
    let (slice, prefix, name) = if raw.is_empty() {
        (DEFAULT_SLICE, DEFAULT_PREFIX, container_id)
    } else {
        let parts: Vec<&str> = raw.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(invalid(
                "the systemd cgroup driver expects the form \"slice:prefix:name\" \
                 (e.g. \"system.slice:husk:ID\")"
                    .into(),
            ));
        };
        (slice, prefix, name)
    };
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let slice_path = expand_slice(slice).map_err(|reason| invalid(format!("slice: {reason}")))?;
    if name.is_empty() {
        return Err(invalid("the name (after the second ':') is empty".into()));
    }
    for (what, part) in [("prefix", prefix), ("name", name)] {
        if let Some(bad) = part.chars().find(|c| !unit_char(*c)) {
            return Err(invalid(format!(
                "{what} {part:?}: {bad:?} is not allowed in a systemd unit name"
            )));
        }
    }
    let (unit, path) = if name.ends_with(".slice") {
        let own = expand_slice(name).map_err(|reason| invalid(format!("name: {reason}")))?;
        (name.to_owned(), format!("/{own}"))
    } else {
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        let path = if slice_path.is_empty() {
            format!("/{unit}")
        } else {
            format!("/{slice_path}/{unit}")
        };
        (unit, path)
    };
    Ok((
        SystemdUnit {
            unit,
            slice: slice.to_owned(),
        },
        PathBuf::from(path),
    ))
}

/// Characters systemd allows in a unit name (besides the suffix's dot).
fn unit_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-' | '\\' | '@')
}

/// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice` (cgroups-rs's expansion), with a reason
/// when the name is not a slice.
fn expand_slice(slice: &str) -> Result<String, String> {
    if slice.starts_with('.') || slice.chars().any(|c| !unit_char(c)) {
        return Err(format!("{slice:?} is not a valid slice name"));
    }
    cgroups_rs::systemd::utils::expand_slice(slice)
        .map_err(|_| format!("{slice:?} is not a valid slice name (\"a-b.slice\")"))
}

/// The properties every unit gets: where it goes, delegation, accounting, a description.
pub fn base_properties(unit: &SystemdUnit, container_id: &str, pid: u32) -> Vec<Property> {
    let mut props: Vec<Property> = vec![
        (
            "Description".into(),
            Value::from(format!("husk container {container_id}")),
        ),
        ("DefaultDependencies".into(), Value::Bool(false)),
        ("CPUAccounting".into(), Value::Bool(true)),
        ("MemoryAccounting".into(), Value::Bool(true)),
        ("IOAccounting".into(), Value::Bool(true)),
        ("TasksAccounting".into(), Value::Bool(true)),
        ("PIDs".into(), Value::from(vec![pid])),
    ];
    if unit.unit.ends_with(".slice") {
        props.push(("Wants".into(), Value::from(vec![unit.slice.clone()])));
    } else {
        props.push(("Slice".into(), Value::from(unit.slice.clone())));
        props.push(("Delegate".into(), Value::Bool(true)));
    }
    props
}

/// `linux.resources` as unit properties (the table in the [module docs](self)). Unset fields
/// give no property, so `update` changes only what it names.
pub fn resource_properties(resources: &LinuxResources) -> Result<Vec<Property>, CgroupError> {
    let mut props: Vec<Property> = Vec::new();
    let mut push = |name: &str, value: Value<'static>| props.push((name.to_owned(), value));
    if let Some(memory) = resources.memory() {
        if let Some(limit) = memory.limit().filter(|l| *l != 0) {
            push("MemoryMax", Value::U64(limit_value(limit)));
        }
        if let Some(low) = memory.reservation().filter(|l| *l != 0) {
            push("MemoryLow", Value::U64(limit_value(low)));
        }
        match super::memory_swap_to_v2(memory.swap(), memory.limit())? {
            Some(max) if max == "max" => push("MemorySwapMax", Value::U64(u64::MAX)),
            Some(value) => {
                let swap = value.parse().map_err(|_| CgroupError::InvalidValue {
                    field: "linux.resources.memory.swap".into(),
                    reason: format!("{value} is not a number"),
                })?;
                push("MemorySwapMax", Value::U64(swap));
            }
            None => {}
        }
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            push("CPUWeight", Value::U64(super::cpu_shares_to_weight(shares)));
        }
        let period = cpu.period().filter(|p| *p != 0);
        let quota = cpu.quota().filter(|q| *q != 0);
        if let Some(period) = period {
            push("CPUQuotaPeriodUSec", Value::U64(period));
        }
        if quota.is_some() || period.is_some() {
            push(
                "CPUQuotaPerSecUSec",
                Value::U64(quota_per_sec(quota, period)),
            );
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            push("AllowedCPUs", Value::from(mask("cpu.cpus", cpus)?));
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            push("AllowedMemoryNodes", Value::from(mask("cpu.mems", mems)?));
        }
    }
    if let Some(pids) = resources.pids() {
        let limit = pids.limit();
        if limit > 0 || limit == -1 {
            push("TasksMax", Value::U64(limit_value(limit)));
        }
    }
    if let Some(devices) = resources.devices() {
        props.extend(device_properties(devices));
    }
    Ok(props)
}

/// A limit in bytes or tasks: -1 (or any negative) is systemd's infinity.
fn limit_value(limit: i64) -> u64 {
    u64::try_from(limit).unwrap_or(u64::MAX)
}

/// `CPUQuotaPerSecUSec`: infinity unless a positive quota is set; the period defaults to
/// 100 ms; systemd keeps it in units of 10 ms, so it is rounded up to the next one (runc's
/// rounding, so that the quota never gets smaller than asked).
fn quota_per_sec(quota: Option<i64>, period: Option<u64>) -> u64 {
    let Some(quota) = quota.and_then(|q| u64::try_from(q).ok()).filter(|q| *q > 0) else {
        return u64::MAX;
    };
    let period = period.unwrap_or(100_000);
    let per_sec = quota.saturating_mul(1_000_000) / period;
    if per_sec.is_multiple_of(10_000) {
        per_sec
    } else {
        (per_sec / 10_000 + 1) * 10_000
    }
}

/// A cpuset list (`0-2,4`) as systemd's byte mask (through cgroups-rs).
fn mask(field: &str, list: &str) -> Result<Vec<u8>, CgroupError> {
    cgroups_rs::systemd::cpuset::cpus(list.trim())
        .map(|(_, mask)| mask)
        .map_err(|_| CgroupError::InvalidValue {
            field: format!("linux.resources.{field}"),
            reason: format!("{list:?} is not a list of numbers and ranges"),
        })
}

/// The device rules as `DevicePolicy` / `DeviceAllow`. systemd can say "nothing but these"
/// (`strict` plus an allow list) but not "everything but these": when the rules end in a
/// default-allow state, the unit gets `DevicePolicy=auto` with no allow list (systemd then
/// filters nothing) and the eBPF filter husk attaches to the cgroup does all the work, as
/// with runc. In the default-deny case both filters apply the same list.
pub fn device_properties(rules: &[LinuxDeviceCgroup]) -> Vec<Property> {
    let is_all = |r: &LinuxDeviceCgroup| {
        matches!(r.typ(), None | Some(LinuxDeviceType::A))
            && r.major().is_none_or(|m| m < 0)
            && r.minor().is_none_or(|m| m < 0)
    };
    let last_all = rules.iter().rposition(is_all);
    let default_deny = last_all.is_some_and(|i| !rules[i].allow());
    let after = last_all.map_or(0, |i| i + 1);
    let tail = &rules[after..];
    if !default_deny || tail.iter().any(|r| !r.allow()) {
        return vec![
            ("DevicePolicy".into(), Value::from("auto")),
            (
                "DeviceAllow".into(),
                Value::from(Vec::<(String, String)>::new()),
            ),
        ];
    }
    let mut allow: Vec<(String, String)> = Vec::new();
    for rule in tail {
        let access = super::device_access(rule.access().as_deref());
        if access.is_empty() {
            continue;
        }
        let kind = match rule.typ() {
            Some(LinuxDeviceType::C | LinuxDeviceType::U) => "char",
            Some(LinuxDeviceType::B) => "block",
            _ => {
                // "a" with a major or minor: both kinds.
                for kind in ["char", "block"] {
                    if let Some(entry) = device_entry(kind, rule.major(), rule.minor()) {
                        allow.push((entry, access.clone()));
                    }
                }
                continue;
            }
        };
        if let Some(entry) = device_entry(kind, rule.major(), rule.minor()) {
            allow.push((entry, access));
        }
    }
    vec![
        ("DevicePolicy".into(), Value::from("strict")),
        ("DeviceAllow".into(), Value::from(allow)),
    ]
}

/// One `DeviceAllow` entry: `/dev/char/M:m` for one device, `char-<name>` (the major's name
/// in /proc/devices) for every minor of a major, `char-*` for all. A major with no name in
/// /proc/devices has no systemd form; it is left to the eBPF filter, with a warning.
fn device_entry(kind: &str, major: Option<i64>, minor: Option<i64>) -> Option<String> {
    let major = major.filter(|m| *m >= 0);
    let minor = minor.filter(|m| *m >= 0);
    match (major, minor) {
        (Some(major), Some(minor)) => Some(format!("/dev/{kind}/{major}:{minor}")),
        (None, _) => Some(format!("{kind}-*")),
        (Some(major), None) => {
            let name = major_name(kind, major);
            if name.is_none() {
                super::warn(&format!(
                    "systemd cgroup driver: {kind} major {major} has no name in /proc/devices; \
                     only the eBPF device filter allows it"
                ));
            }
            name.map(|n| format!("{kind}-{n}"))
        }
    }
}

/// The name /proc/devices gives major `major` of `kind` ("char" or "block").
fn major_name(kind: &str, major: i64) -> Option<String> {
    let content = std::fs::read_to_string("/proc/devices").ok()?;
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    let mut section = false;
    for line in content.lines() {
        if line.ends_with("devices:") {
            section = line == header;
            continue;
        }
        let mut fields = line.split_whitespace();
        if let (true, Some(number), Some(name)) = (section, fields.next(), fields.next()) {
            if number.parse::<i64>() == Ok(major) {
                return Some(name.to_owned());
            }
        }
    }
    None
}

/// `org.systemd.property.<Name>` annotations as properties. The values accepted are the
/// plain forms of runc's GVariant text: `true`/`false`, an unsigned number (optionally
/// written `uint64 N`), or a quoted string; a name ending in `Sec` takes a number of
/// microseconds, as in runc. Anything else is an error naming the annotation.
pub fn annotation_properties<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Property>, CgroupError> {
    let mut props = Vec::new();
    for (key, value) in annotations {
        let Some(name) = key.strip_prefix(PROPERTY_ANNOTATION) else {
            continue;
        };
        let bad = |reason: &str| CgroupError::InvalidValue {
            field: format!("annotation {key}"),
            reason: reason.to_owned(),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad("not a systemd property name"));
        }
        let text = value.trim();
        let number = text.strip_prefix("uint64 ").unwrap_or(text).trim();
        let parsed = if text == "true" || text == "false" {
            Value::Bool(text == "true")
        } else if let Ok(n) = number.parse::<u64>() {
            Value::U64(n)
        } else if text.len() >= 2
            && ((text.starts_with('\'') && text.ends_with('\''))
                || (text.starts_with('"') && text.ends_with('"')))
        {
            Value::from(text[1..text.len() - 1].to_owned())
        } else {
            return Err(bad(&format!(
                "{text:?}: expected true, false, a number or a quoted string"
            )));
        };
        if name.ends_with("Sec") && !matches!(parsed, Value::U64(_)) {
            return Err(bad("a ...Sec property takes a number of microseconds"));
        }
        props.push((name.to_owned(), parsed));
    }
    Ok(props)
}

/// A connection to systemd's manager on the system bus.
#[derive(Debug)]
pub struct Bus {
    proxy: zbus::blocking::Proxy<'static>,
}

fn bus_error(op: &str, unit: &str, e: zbus::Error) -> CgroupError {
    CgroupError::Systemd {
        op: op.to_owned(),
        unit: unit.to_owned(),
        reason: match e {
            zbus::Error::MethodError(name, detail, _) => match detail {
                Some(detail) => format!("{detail} ({name})"),
                None => name.to_string(),
            },
            other => other.to_string(),
        },
    }
}

fn is_no_such_unit(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(name, _, _)
        if name.as_str() == NO_SUCH_UNIT || name.as_str() == LOAD_FAILED)
}

impl Bus {
    /// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else
    /// `/run/dbus/system_bus_socket`).
    pub fn connect() -> Result<Bus, CgroupError> {
        let fail = |e: zbus::Error| CgroupError::Systemd {
            op: "connect to the system bus".into(),
            unit: String::new(),
            reason: e.to_string(),
        };
        let conn = zbus::blocking::Connection::system().map_err(fail)?;
        let proxy =
            zbus::blocking::Proxy::new_owned(conn, DESTINATION, MANAGER_PATH, MANAGER_INTERFACE)
                .map_err(fail)?;
        Ok(Bus { proxy })
    }

    /// Runs `call` (which starts a job and returns its path) and waits for that job's
    /// `JobRemoved`: its result must be `done`. The signal is listened for before the call, so
    /// a job that ends at once is not missed.
    fn job(
        &self,
        op: &str,
        unit: &str,
        call: impl FnOnce() -> zbus::Result<OwnedObjectPath>,
    ) -> Result<(), CgroupError> {
        // Subscribe: systemd sends its signals only to clients that asked (or to everyone
        // when one has). Failing is harmless: the wait below then times out with a message.
        let _: zbus::Result<()> = self.proxy.call("Subscribe", &());
        let signals = self
            .proxy
            .receive_signal("JobRemoved")
            .map_err(|e| bus_error(op, unit, e))?;
        // The blocking iterator has no timeout: a thread reads it and the caller waits on a
        // channel. The thread ends at the next signal after the receiver is gone (or when the
        // connection closes).
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("husk-jobremoved".into())
            .spawn(move || {
                for message in signals {
                    let body = message.body();
                    let Ok((_id, job, _unit, result)) =
                        body.deserialize::<(u32, OwnedObjectPath, String, String)>()
                    else {
                        continue;
                    };
                    if tx.send((job, result)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| CgroupError::Systemd {
                op: op.to_owned(),
                unit: unit.to_owned(),
                reason: format!("cannot start a thread: {e}"),
            })?;
        let job = call().map_err(|e| bus_error(op, unit, e))?;
        let deadline = std::time::Instant::now() + JOB_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok((done, result)) if done == job => {
                    return if result == "done" {
                        Ok(())
                    } else {
                        Err(CgroupError::Systemd {
                            op: op.to_owned(),
                            unit: unit.to_owned(),
                            reason: format!("job {} ended with result {result:?}", job.as_str()),
                        })
                    };
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(CgroupError::Systemd {
                        op: op.to_owned(),
                        unit: unit.to_owned(),
                        reason: format!(
                            "job {} did not finish within {} s",
                            job.as_str(),
                            JOB_TIMEOUT.as_secs()
                        ),
                    })
                }
            }
        }
    }

    /// `StartTransientUnit(unit, "replace", props)` and waits for its job.
    pub fn start_unit(&self, unit: &str, props: &[Property]) -> Result<(), CgroupError> {
        let props: Vec<(&str, &Value<'static>)> =
            props.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let aux: Vec<(&str, Vec<(&str, Value<'static>)>)> = Vec::new();
        self.job("start unit", unit, || {
            self.proxy
                .call("StartTransientUnit", &(unit, "replace", props, aux))
        })
    }

    /// `SetUnitProperties(unit, runtime=true, props)`.
    pub fn set_properties(&self, unit: &str, props: &[Property]) -> Result<(), CgroupError> {
        let props: Vec<(&str, &Value<'static>)> =
            props.iter().map(|(k, v)| (k.as_str(), v)).collect();
        self.proxy
            .call::<_, _, ()>("SetUnitProperties", &(unit, true, props))
            .map_err(|e| bus_error("set unit properties", unit, e))
    }

    /// `StopUnit(unit, "replace")`, waiting for its job, then `ResetFailedUnit` so that a
    /// unit whose processes were killed does not stay listed as failed. A unit that is gone
    /// already is fine.
    pub fn stop_unit(&self, unit: &str) -> Result<(), CgroupError> {
        let stopped = self.job("stop unit", unit, || {
            self.proxy.call("StopUnit", &(unit, "replace"))
        });
        match stopped {
            Err(CgroupError::Systemd { ref reason, .. })
                if reason.contains(NO_SUCH_UNIT) || reason.contains(LOAD_FAILED) => {}
            other => other?,
        }
        match self.proxy.call::<_, _, ()>("ResetFailedUnit", &(unit,)) {
            Ok(()) => Ok(()),
            Err(e) if is_no_such_unit(&e) => Ok(()),
            Err(e) => Err(bus_error("reset failed unit", unit, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Option<&Path> {
        Some(Path::new(p))
    }

    #[test]
    fn slice_prefix_name_forms() {
        let (unit, cg) = unit_for_path(None, "abc").unwrap();
        assert_eq!(unit.unit, "husk-abc.scope");
        assert_eq!(unit.slice, "system.slice");
        assert_eq!(cg, Path::new("/system.slice/husk-abc.scope"));
        let (unit, cg) = unit_for_path(path(":docker:1234"), "x").unwrap();
        assert_eq!(unit.unit, "docker-1234.scope");
        assert_eq!(cg, Path::new("/system.slice/docker-1234.scope"));
        let (unit, cg) = unit_for_path(path("a-b-c.slice::n"), "x").unwrap();
        assert_eq!(unit.unit, "n.scope");
        assert_eq!(unit.slice, "a-b-c.slice");
        assert_eq!(cg, Path::new("/a.slice/a-b.slice/a-b-c.slice/n.scope"));
        let (unit, cg) = unit_for_path(path("machine.slice:p:my-pod.slice"), "x").unwrap();
        assert_eq!(unit.unit, "my-pod.slice");
        assert_eq!(cg, Path::new("/my.slice/my-pod.slice"));
        let (_, cg) = unit_for_path(path("-.slice:p:n"), "x").unwrap();
        assert_eq!(cg, Path::new("/p-n.scope"));
        for bad in [
            "/a/b",
            "a:b",
            "a:b:c:d",
            "x.scope:p:n",
            "system.slice:p:",
            "s.slice:p:a/b",
        ] {
            let err = unit_for_path(path(bad), "x").unwrap_err().to_string();
            assert!(err.starts_with("linux.cgroupsPath"), "{bad}: {err}");
        }
    }

    #[test]
    fn quota_rounds_up_to_ten_milliseconds() {
        assert_eq!(quota_per_sec(Some(50_000), Some(100_000)), 500_000);
        assert_eq!(quota_per_sec(Some(12_345), None), 130_000);
        assert_eq!(quota_per_sec(None, Some(50_000)), u64::MAX);
        assert_eq!(quota_per_sec(Some(-1), None), u64::MAX);
    }

    #[test]
    fn device_rules_map_to_policy_and_allow_list() {
        let rule = |allow: bool, typ: Option<LinuxDeviceType>, major, minor, access: &str| {
            let mut r = LinuxDeviceCgroup::default();
            r.set_allow(allow)
                .set_typ(typ)
                .set_major(major)
                .set_minor(minor)
                .set_access(Some(access.into()));
            r
        };
        let props = device_properties(&[
            rule(true, None, None, None, "rwm"),
            rule(false, None, None, None, "rwm"),
            rule(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rw"),
            rule(true, Some(LinuxDeviceType::B), None, None, "m"),
        ]);
        assert_eq!(props[0].1, Value::from("strict"));
        let expected = Value::from(vec![
            ("/dev/char/1:3".to_owned(), "rw".to_owned()),
            ("block-*".to_owned(), "m".to_owned()),
        ]);
        assert_eq!(props[1].1, expected);
        // Default allow with a deny: only the eBPF filter can say that.
        let props = device_properties(&[rule(
            false,
            Some(LinuxDeviceType::C),
            Some(1),
            Some(3),
            "rwm",
        )]);
        assert_eq!(props[0].1, Value::from("auto"));
    }

    #[test]
    fn annotations_become_properties() {
        let a: std::collections::HashMap<String, String> = [
            ("org.systemd.property.TimeoutStopUSec", "uint64 5000000"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut props = annotation_properties(&a).unwrap();
        props.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            props[0],
            ("CollectMode".into(), Value::from("inactive-or-failed"))
        );
        assert_eq!(props[1], ("TimeoutStopUSec".into(), Value::U64(5_000_000)));
        let bad: std::collections::HashMap<String, String> = [(
            "org.systemd.property.TimeoutStopUSec".to_owned(),
            "'x'".to_owned(),
        )]
        .into();
        assert!(annotation_properties(&bad).is_err());
    }
}
