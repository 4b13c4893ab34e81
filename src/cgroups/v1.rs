//! `linux.resources` on cgroup v1 (one hierarchy per controller group).
//!
//! Writes go through the controllers of the `cgroups-rs` crate where it has a setter that reports
//! errors; the rest (marked "plain write") are files cgroups-rs has no setter for, or where its
//! setter hides a failure (it ignores EOPNOTSUPP for kernel memory, for one).

use std::path::{Path, PathBuf};

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use cgroups_rs::fs::hugetlb::HugeTlbController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::net_cls::NetClsController;
use cgroups_rs::fs::net_prio::NetPrioController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::rdma::RdmaController;
use cgroups_rs::fs::MaxValue;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources,
};

use super::{fsio, CgroupError, SavedHierarchy};

/// Page size the kernel rounds memory limits to.
fn page_size() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size
    } else {
        4096
    }
}

/// The v1 hierarchies of one container, looked up by controller.
pub struct V1<'a> {
    pub hierarchies: &'a [SavedHierarchy],
}

impl V1<'_> {
    /// Directory and mount point of `controller`, if its hierarchy is mounted.
    pub fn find(&self, controller: &str) -> Option<(&Path, &Path)> {
        self.hierarchies
            .iter()
            .find(|h| !h.unified && h.controllers.iter().any(|c| c == controller))
            .map(|h| (h.dir.as_path(), h.mount_point.as_path()))
    }

    fn need(&self, controller: &str, field: &str) -> Result<(PathBuf, PathBuf), CgroupError> {
        self.find(controller)
            .map(|(dir, mount)| (dir.to_path_buf(), mount.to_path_buf()))
            .ok_or_else(|| CgroupError::ControllerMissing {
                field: field.to_owned(),
                controller: controller.to_owned(),
            })
    }

    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(unified) = resources.unified() {
            if !unified.is_empty() {
                // "invalid configuration" is runc's wording, which tools match on.
                return Err(CgroupError::Unsupported(
                    "invalid configuration: linux.resources.unified needs cgroup v2; this host \
                     uses cgroup v1"
                        .into(),
                ));
            }
        }
        if let Some(memory) = resources.memory() {
            self.memory(memory)?;
        }
        if let Some(cpu) = resources.cpu() {
            self.cpu(cpu)?;
        }
        if let Some(pids) = resources.pids() {
            let limit = pids.limit();
            // 0 means "not set" (as in runc); negative means unlimited.
            if limit != 0 {
                let field = "linux.resources.pids.limit";
                let (dir, mount) = self.need("pids", field)?;
                let max = if limit > 0 {
                    MaxValue::Value(limit)
                } else {
                    MaxValue::Max
                };
                PidController::new(dir.clone(), mount, false)
                    .set_pid_max(max)
                    .map_err(|e| CgroupError::library(field, dir.join("pids.max"), e))?;
            }
        }
        if let Some(block_io) = resources.block_io() {
            self.block_io(block_io)?;
        }
        if let Some(limits) = resources.hugepage_limits() {
            for limit in limits {
                let field = format!("linux.resources.hugepageLimits[{}]", limit.page_size());
                let (dir, mount) = self.need("hugetlb", &field)?;
                let file = format!("hugetlb.{}.limit_in_bytes", limit.page_size());
                if !fsio::exists(&dir, &file) {
                    return Err(CgroupError::InvalidValue {
                        field,
                        reason: format!("page size not supported here ({} is missing)", file),
                    });
                }
                match u64::try_from(limit.limit()) {
                    Ok(bytes) => HugeTlbController::new(dir.clone(), mount, false)
                        .set_limit_in_bytes(limit.page_size(), bytes)
                        .map_err(|e| CgroupError::library(&field, dir.join(&file), e))?,
                    // Plain write: cgroups-rs takes only unsigned limits, v1 spells "none" -1.
                    Err(_) => fsio::write(&field, &dir, &file, "-1")?,
                }
            }
        }
        if let Some(network) = resources.network() {
            if let Some(class_id) = network.class_id() {
                let field = "linux.resources.network.classID";
                let (dir, mount) = self.need("net_cls", field)?;
                NetClsController::new(dir.clone(), mount)
                    .set_class(u64::from(class_id))
                    .map_err(|e| CgroupError::library(field, dir.join("net_cls.classid"), e))?;
            }
            for priority in network.priorities().iter().flatten() {
                let field = format!("linux.resources.network.priorities[{}]", priority.name());
                let (dir, mount) = self.need("net_prio", &field)?;
                NetPrioController::new(dir.clone(), mount)
                    .set_if_prio(priority.name(), u64::from(priority.priority()))
                    .map_err(|e| CgroupError::library(&field, dir.join("net_prio.ifpriomap"), e))?;
            }
        }
        if let Some(rdma) = resources.rdma() {
            for (device, limit) in rdma {
                let field = format!("linux.resources.rdma[{device}]");
                let (dir, mount) = self.need("rdma", &field)?;
                let value = rdma_max(device, limit.hca_handles(), limit.hca_objects());
                RdmaController::new(dir.clone(), mount)
                    .set_max(&value)
                    .map_err(|e| CgroupError::library(&field, dir.join("rdma.max"), e))?;
            }
        }
        if let Some(devices) = resources.devices() {
            if !devices.is_empty() {
                self.devices(devices)?;
            }
        }
        Ok(())
    }

    fn memory(&self, memory: &LinuxMemory) -> Result<(), CgroupError> {
        let any = memory.limit().is_some()
            || memory.reservation().is_some()
            || memory.swap().is_some()
            || memory.kernel().is_some()
            || memory.kernel_tcp().is_some()
            || memory.swappiness().is_some()
            || memory.disable_oom_killer().is_some()
            || memory.use_hierarchy().is_some();
        if !any {
            return Ok(());
        }
        let (dir, mount) = self.need("memory", "linux.resources.memory")?;
        let controller = MemController::new(dir.clone(), mount, false);
        let lib = |field: &str, file: &str| {
            let path = dir.join(file);
            let field = field.to_owned();
            move |e| CgroupError::library(field, path, e)
        };

        if memory.check_before_update() == Some(true) {
            if let Some(limit) = memory.limit().filter(|l| *l > 0) {
                let usage = fsio::read_u64(&dir.join("memory.usage_in_bytes"))?;
                if usage > limit.unsigned_abs() {
                    return Err(CgroupError::InvalidValue {
                        field: "linux.resources.memory.limit".into(),
                        reason: format!("{limit} is below the current usage {usage}"),
                    });
                }
            }
        }

        let has_memsw = fsio::exists(&dir, "memory.memsw.limit_in_bytes");
        // As on v1 runc: an unlimited memory with no swap given makes memory+swap unlimited
        // too, else the old memsw limit would still cap the memory.
        let swap = match (memory.limit(), memory.swap()) {
            (Some(-1), None | Some(0)) if has_memsw => Some(-1),
            (_, Some(0)) => None,
            (_, swap) => swap,
        };
        if swap.is_some() && !has_memsw {
            return Err(CgroupError::Unsupported(
                "linux.resources.memory.swap: the kernel does not account swap \
                 (memory.memsw.limit_in_bytes is missing; boot with swapaccount=1)"
                    .into(),
            ));
        }
        let set_limit = |limit: i64| {
            controller
                .set_limit(limit)
                .map_err(lib("linux.resources.memory.limit", "memory.limit_in_bytes"))
        };
        let set_swap = |swap: i64| {
            controller.set_memswap_limit(swap).map_err(lib(
                "linux.resources.memory.swap",
                "memory.memsw.limit_in_bytes",
            ))
        };
        match (memory.limit(), swap) {
            (Some(limit), Some(swap)) => {
                // The kernel keeps memsw >= memory at every step: raise memsw first when it
                // grows, lower memory first when it shrinks.
                let current = fsio::read(&dir.join("memory.memsw.limit_in_bytes"))?;
                let current: i64 = current.trim().parse().unwrap_or(i64::MAX);
                if swap == -1 || swap > current {
                    set_swap(swap)?;
                    set_limit(limit)?;
                } else {
                    set_limit(limit)?;
                    set_swap(swap)?;
                }
            }
            (Some(limit), None) => set_limit(limit)?,
            (None, Some(swap)) => set_swap(swap)?,
            (None, None) => {}
        }
        if let Some(reservation) = memory.reservation() {
            controller.set_soft_limit(reservation).map_err(lib(
                "linux.resources.memory.reservation",
                "memory.soft_limit_in_bytes",
            ))?;
        }
        if let Some(kernel) = memory.kernel() {
            // Plain write: cgroups-rs silently ignores EOPNOTSUPP here. Newer kernels also accept
            // the write and ignore it, so the value is read back.
            let field = "linux.resources.memory.kernel";
            let file = "memory.kmem.limit_in_bytes";
            if !fsio::exists(&dir, file) {
                return Err(CgroupError::Unsupported(format!(
                    "{field}: this kernel has no kernel memory accounting ({file} is missing)"
                )));
            }
            fsio::write(field, &dir, file, &kernel.to_string())?;
            if kernel >= 0 {
                let applied = fsio::read(&dir.join(file))?;
                let wanted = kernel / page_size() * page_size();
                if applied.trim().parse::<i64>().ok() != Some(wanted) {
                    return Err(CgroupError::Unsupported(format!(
                        "{field}: the kernel accepted {kernel} but left {file} at {}; kernel memory \
                         limits are no longer enforced by this kernel",
                        applied.trim()
                    )));
                }
            }
        }
        if let Some(tcp) = memory.kernel_tcp() {
            controller.set_tcp_limit(tcp).map_err(lib(
                "linux.resources.memory.kernelTCP",
                "memory.kmem.tcp.limit_in_bytes",
            ))?;
        }
        if let Some(swappiness) = memory.swappiness() {
            if swappiness > 100 {
                return Err(CgroupError::InvalidValue {
                    field: "linux.resources.memory.swappiness".into(),
                    reason: format!("{swappiness} is above 100"),
                });
            }
            controller.set_swappiness(swappiness).map_err(lib(
                "linux.resources.memory.swappiness",
                "memory.swappiness",
            ))?;
        }
        match memory.disable_oom_killer() {
            Some(true) => controller.disable_oom_killer().map_err(lib(
                "linux.resources.memory.disableOOMKiller",
                "memory.oom_control",
            ))?,
            // Plain write: cgroups-rs can only disable the OOM killer, not re-enable it.
            Some(false) => fsio::write(
                "linux.resources.memory.disableOOMKiller",
                &dir,
                "memory.oom_control",
                "0",
            )?,
            None => {}
        }
        if let Some(use_hierarchy) = memory.use_hierarchy() {
            // Plain write: no setter in cgroups-rs. Kernels since 5.16 refuse 0 (EINVAL).
            fsio::write(
                "linux.resources.memory.useHierarchy",
                &dir,
                "memory.use_hierarchy",
                if use_hierarchy { "1" } else { "0" },
            )?;
        }
        Ok(())
    }

    fn cpu(&self, cpu: &LinuxCpu) -> Result<(), CgroupError> {
        if cpu.cpus().is_some() || cpu.mems().is_some() {
            let (dir, mount) = self.need("cpuset", "linux.resources.cpu.cpus/mems")?;
            let cpuset = CpuSetController::new(dir.clone(), mount, false);
            if let Some(cpus) = cpu.cpus() {
                cpuset.set_cpus(cpus).map_err(|e| {
                    CgroupError::library("linux.resources.cpu.cpus", dir.join("cpuset.cpus"), e)
                })?;
            }
            if let Some(mems) = cpu.mems() {
                cpuset.set_mems(mems).map_err(|e| {
                    CgroupError::library("linux.resources.cpu.mems", dir.join("cpuset.mems"), e)
                })?;
            }
        }
        let any = cpu.shares().is_some_and(|s| s != 0)
            || cpu.quota().is_some()
            || cpu.period().is_some()
            || cpu.realtime_runtime().is_some()
            || cpu.realtime_period().is_some()
            || cpu.idle().is_some()
            || cpu.burst().is_some();
        if !any {
            return Ok(());
        }
        let (dir, mount) = self.need("cpu", "linux.resources.cpu")?;
        let controller = CpuController::new(dir.clone(), mount, false);
        let lib = |field: &str, file: &str| {
            let path = dir.join(file);
            let field = field.to_owned();
            move |e| CgroupError::library(field, path, e)
        };
        // 0 means "not set" (as in runc).
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            controller
                .set_shares(shares)
                .map_err(lib("linux.resources.cpu.shares", "cpu.shares"))?;
            // The kernel clamps out-of-range shares silently; report it instead.
            let applied = fsio::read_u64(&dir.join("cpu.shares"))?;
            if applied != shares {
                return Err(CgroupError::InvalidValue {
                    field: "linux.resources.cpu.shares".into(),
                    reason: format!("{shares} is out of range; the kernel set {applied}"),
                });
            }
        }
        // The kernel checks each write against the value of the other file in force (and the
        // quota/period ratio against the parent's): period first suits a larger period, quota
        // first a smaller one. Period first; on EINVAL, with a quota to write, the other order.
        let set_period = |period| {
            controller
                .set_cfs_period(period)
                .map_err(lib("linux.resources.cpu.period", "cpu.cfs_period_us"))
        };
        let set_quota = |quota: i64| {
            let quota = if quota > 0 { quota } else { -1 };
            controller
                .set_cfs_quota(quota)
                .map_err(lib("linux.resources.cpu.quota", "cpu.cfs_quota_us"))
        };
        let period_after_quota = match (cpu.period(), cpu.quota()) {
            (Some(period), quota) => match set_period(period) {
                Ok(()) => None,
                Err(e) if quota.is_some() && e.raw_os_error() == Some(libc::EINVAL) => Some(period),
                Err(e) => return Err(e),
            },
            (None, _) => None,
        };
        if let Some(quota) = cpu.quota() {
            set_quota(quota)?;
        }
        if let Some(period) = period_after_quota {
            set_period(period)?;
        }
        if let Some(burst) = cpu.burst() {
            // Plain write: cgroups-rs has no burst setter.
            fsio::write(
                "linux.resources.cpu.burst",
                &dir,
                "cpu.cfs_burst_us",
                &burst.to_string(),
            )?;
        }
        // Realtime period before runtime: the runtime must fit in the period.
        if let Some(period) = cpu.realtime_period() {
            controller.set_rt_period_us(period).map_err(lib(
                "linux.resources.cpu.realtimePeriod",
                "cpu.rt_period_us",
            ))?;
        }
        if let Some(runtime) = cpu.realtime_runtime() {
            controller.set_rt_runtime(runtime).map_err(lib(
                "linux.resources.cpu.realtimeRuntime",
                "cpu.rt_runtime_us",
            ))?;
        }
        if let Some(idle) = cpu.idle() {
            // Plain write: cgroups-rs has no idle setter.
            fsio::write(
                "linux.resources.cpu.idle",
                &dir,
                "cpu.idle",
                &idle.to_string(),
            )?;
        }
        Ok(())
    }

    fn block_io(&self, block_io: &LinuxBlockIo) -> Result<(), CgroupError> {
        let weight_devices = block_io.weight_device().as_deref().unwrap_or_default();
        let throttles = [
            ("throttleReadBpsDevice", block_io.throttle_read_bps_device()),
            (
                "throttleWriteBpsDevice",
                block_io.throttle_write_bps_device(),
            ),
            (
                "throttleReadIOPSDevice",
                block_io.throttle_read_iops_device(),
            ),
            (
                "throttleWriteIOPSDevice",
                block_io.throttle_write_iops_device(),
            ),
        ];
        let any = block_io.weight().is_some()
            || block_io.leaf_weight().is_some()
            || !weight_devices.is_empty()
            || throttles
                .iter()
                .any(|(_, list)| list.as_ref().is_some_and(|l| !l.is_empty()));
        if !any {
            return Ok(());
        }
        let (dir, mount) = self.need("blkio", "linux.resources.blockIO")?;
        let controller = BlkIoController::new(dir.clone(), mount, false);
        // Plain writes for weights: cgroups-rs only knows `blkio.weight`, which kernels without
        // CFQ lack; BFQ's `blkio.bfq.weight` takes the same values (runc falls back the same way).
        let weight_file = |plain: &'static str, bfq: &'static str| {
            if fsio::exists(&dir, plain) {
                Some(plain)
            } else if fsio::exists(&dir, bfq) {
                Some(bfq)
            } else {
                None
            }
        };
        let missing = |field: &str, file: &str| {
            CgroupError::Unsupported(format!(
                "{field}: this kernel has no {file} (no CFQ/BFQ weight support)"
            ))
        };
        if let Some(weight) = block_io.weight() {
            let field = "linux.resources.blockIO.weight";
            let file = weight_file("blkio.weight", "blkio.bfq.weight")
                .ok_or_else(|| missing(field, "blkio.weight"))?;
            fsio::write(field, &dir, file, &weight.to_string())?;
        }
        if let Some(leaf_weight) = block_io.leaf_weight() {
            let field = "linux.resources.blockIO.leafWeight";
            if !fsio::exists(&dir, "blkio.leaf_weight") {
                return Err(missing(field, "blkio.leaf_weight"));
            }
            controller
                .set_leaf_weight(u64::from(leaf_weight))
                .map_err(|e| CgroupError::library(field, dir.join("blkio.leaf_weight"), e))?;
        }
        for device in weight_devices {
            let field = format!(
                "linux.resources.blockIO.weightDevice[{}:{}]",
                device.major(),
                device.minor()
            );
            if let Some(weight) = device.weight() {
                let file = weight_file("blkio.weight_device", "blkio.bfq.weight_device")
                    .ok_or_else(|| missing(&field, "blkio.weight_device"))?;
                let value = format!("{}:{} {}", device.major(), device.minor(), weight);
                fsio::write(&field, &dir, file, &value)?;
            }
            if let Some(leaf_weight) = device.leaf_weight() {
                if !fsio::exists(&dir, "blkio.leaf_weight_device") {
                    return Err(missing(&field, "blkio.leaf_weight_device"));
                }
                let (major, minor) = device_numbers(&field, device.major(), device.minor())?;
                controller
                    .set_leaf_weight_for_device(major, minor, u64::from(leaf_weight))
                    .map_err(|e| {
                        CgroupError::library(&field, dir.join("blkio.leaf_weight_device"), e)
                    })?;
            }
        }
        for (name, list) in throttles {
            for device in list.iter().flatten() {
                let field = format!(
                    "linux.resources.blockIO.{name}[{}:{}]",
                    device.major(),
                    device.minor()
                );
                let (major, minor) = device_numbers(&field, device.major(), device.minor())?;
                let rate = device.rate();
                let (result, file) = match name {
                    "throttleReadBpsDevice" => (
                        controller.throttle_read_bps_for_device(major, minor, rate),
                        "blkio.throttle.read_bps_device",
                    ),
                    "throttleWriteBpsDevice" => (
                        controller.throttle_write_bps_for_device(major, minor, rate),
                        "blkio.throttle.write_bps_device",
                    ),
                    "throttleReadIOPSDevice" => (
                        controller.throttle_read_iops_for_device(major, minor, rate),
                        "blkio.throttle.read_iops_device",
                    ),
                    _ => (
                        controller.throttle_write_iops_for_device(major, minor, rate),
                        "blkio.throttle.write_iops_device",
                    ),
                };
                result.map_err(|e| CgroupError::library(&field, dir.join(file), e))?;
            }
        }
        Ok(())
    }

    /// Applies the device rules in order on top of the cgroup's current list.
    ///
    /// A rule of type `a` is a reset of the whole list (the kernel reads any rule starting with
    /// `a` that way), so the usual spec, which begins with "deny all", starts from an empty list.
    fn devices(&self, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
        let (dir, mount) = self.need("devices", "linux.resources.devices")?;
        let controller = DevicesController::new(dir.clone(), mount);
        for (index, rule) in rules.iter().enumerate() {
            let field = format!("linux.resources.devices[{index}]");
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            let typ = match rule.typ().unwrap_or_default() {
                LinuxDeviceType::A => {
                    // Plain write: the reset rule is the bare "a".
                    fsio::write(&field, &dir, file, "a")?;
                    continue;
                }
                LinuxDeviceType::B => DeviceType::Block,
                LinuxDeviceType::C | LinuxDeviceType::U => DeviceType::Char,
                LinuxDeviceType::P => {
                    return Err(CgroupError::InvalidValue {
                        field,
                        reason: "FIFO devices (type p) cannot be controlled by the devices cgroup"
                            .into(),
                    })
                }
            };
            let access = super::device_access(rule.access().as_deref());
            if access.is_empty() {
                continue; // only unknown letters: a rule about no access at all
            }
            let permissions =
                DevicePermissions::from_str(&access).map_err(|_| CgroupError::InvalidValue {
                    field: field.clone(),
                    reason: format!("access {access:?} is not a combination of r, w and m"),
                })?;
            let major = rule.major().unwrap_or(-1);
            let minor = rule.minor().unwrap_or(-1);
            let result = if rule.allow() {
                controller.allow_device(typ, major, minor, &permissions)
            } else {
                controller.deny_device(typ, major, minor, &permissions)
            };
            result.map_err(|e| CgroupError::library(&field, dir.join(file), e))?;
        }
        Ok(())
    }
}

fn device_numbers(field: &str, major: i64, minor: i64) -> Result<(u64, u64), CgroupError> {
    match (u64::try_from(major), u64::try_from(minor)) {
        (Ok(major), Ok(minor)) => Ok((major, minor)),
        _ => Err(CgroupError::InvalidValue {
            field: field.to_owned(),
            reason: format!("device {major}:{minor} has a negative number"),
        }),
    }
}

/// `rdma.max` line: `<device> hca_handle=<n|max> hca_object=<n|max>`.
pub fn rdma_max(device: &str, handles: Option<u32>, objects: Option<u32>) -> String {
    let show = |v: Option<u32>| v.map_or_else(|| "max".to_owned(), |v| v.to_string());
    format!(
        "{device} hca_handle={} hca_object={}",
        show(handles),
        show(objects)
    )
}
