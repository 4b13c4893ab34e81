//! `linux.resources` on cgroup v2 (one unified hierarchy).
//!
//! v1-style OCI values are converted as runc documents (see [`super::convert`]). cgroups-rs
//! covers few v2 files correctly (its v2 swappiness setter writes `memory.swap.max`, for one), so
//! most writes here are plain writes through [`fsio`]; cgroups-rs is used for `memory.max`,
//! `cpu.weight`, `cpuset.*`, `pids.max` and `hugetlb.*.max`. Devices: see [`super::devices_v2`].

use std::path::{Path, PathBuf};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::hugetlb::HugeTlbController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{convert, fsio, v1::rdma_max, CgroupError};

pub struct V2<'a> {
    pub dir: &'a Path,
}

impl V2<'_> {
    /// Fails with [`CgroupError::ControllerMissing`] unless `file` exists (a controller's files
    /// appear only once it is enabled in the parent's `cgroup.subtree_control`).
    fn need(&self, file: &str, controller: &str, field: &str) -> Result<PathBuf, CgroupError> {
        if fsio::exists(self.dir, file) {
            Ok(self.dir.to_path_buf())
        } else {
            Err(CgroupError::ControllerMissing {
                field: field.to_owned(),
                controller: controller.to_owned(),
            })
        }
    }

    fn write(&self, field: &str, file: &str, value: &str) -> Result<(), CgroupError> {
        fsio::write(field, self.dir, file, value)
    }

    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(memory) = resources.memory() {
            self.memory(memory)?;
        }
        if let Some(cpu) = resources.cpu() {
            self.cpu(cpu)?;
        }
        if let Some(pids) = resources.pids() {
            let limit = pids.limit();
            if limit != 0 {
                let field = "linux.resources.pids.limit";
                let dir = self.need("pids.max", "pids", field)?;
                let max = if limit > 0 {
                    MaxValue::Value(limit)
                } else {
                    MaxValue::Max
                };
                PidController::new(dir.clone(), PathBuf::new(), true)
                    .set_pid_max(max)
                    .map_err(|e| CgroupError::library(field, dir.join("pids.max"), e))?;
            }
        }
        if let Some(block_io) = resources.block_io() {
            self.block_io(block_io)?;
        }
        for limit in resources.hugepage_limits().iter().flatten() {
            let field = format!("linux.resources.hugepageLimits[{}]", limit.page_size());
            let file = format!("hugetlb.{}.max", limit.page_size());
            let dir = self.need(&file, "hugetlb", &field)?;
            match u64::try_from(limit.limit()) {
                Ok(bytes) => HugeTlbController::new(dir.clone(), PathBuf::new(), true)
                    .set_limit_in_bytes(limit.page_size(), bytes)
                    .map_err(|e| CgroupError::library(&field, dir.join(&file), e))?,
                Err(_) => self.write(&field, &file, "max")?,
            }
        }
        if let Some(network) = resources.network() {
            if network.class_id().is_some()
                || network.priorities().as_ref().is_some_and(|p| !p.is_empty())
            {
                return Err(CgroupError::Unsupported(
                    "linux.resources.network: cgroup v2 has no net_cls/net_prio controllers".into(),
                ));
            }
        }
        for (device, limit) in resources.rdma().iter().flatten() {
            let field = format!("linux.resources.rdma[{device}]");
            self.need("rdma.max", "rdma", &field)?;
            let value = rdma_max(device, limit.hca_handles(), limit.hca_objects());
            self.write(&field, "rdma.max", &value)?;
        }
        if let Some(devices) = resources.devices() {
            if !devices.is_empty() {
                super::devices_v2::apply(self.dir, devices)?;
            }
        }
        for (key, value) in resources.unified().iter().flatten() {
            let field = format!("linux.resources.unified[{key}]");
            let valid = !key.is_empty()
                && !key.contains('/')
                && key != "."
                && key != ".."
                && key.contains('.');
            if !valid {
                return Err(CgroupError::InvalidValue {
                    field,
                    reason: "not the name of a cgroup file".into(),
                });
            }
            if !fsio::exists(self.dir, key) {
                let controller = key.split('.').next().unwrap_or_default();
                return Err(CgroupError::ControllerMissing {
                    field,
                    controller: controller.to_owned(),
                });
            }
            self.write(&field, key, value)?;
        }
        Ok(())
    }

    fn memory(&self, memory: &LinuxMemory) -> Result<(), CgroupError> {
        let unsupported = |field: &str, why: &str| {
            Err(CgroupError::Unsupported(format!(
                "linux.resources.memory.{field}: {why}"
            )))
        };
        if memory.kernel().is_some() {
            return unsupported("kernel", "cgroup v2 has no kernel memory limit");
        }
        if memory.kernel_tcp().is_some() {
            return unsupported("kernelTCP", "cgroup v2 has no kernel TCP memory limit");
        }
        if memory.swappiness().is_some() {
            return unsupported("swappiness", "cgroup v2 has no per-cgroup swappiness");
        }
        if memory.disable_oom_killer() == Some(true) {
            return unsupported(
                "disableOOMKiller",
                "cgroup v2 cannot disable the OOM killer",
            );
        }
        if memory.use_hierarchy() == Some(false) {
            return unsupported("useHierarchy", "cgroup v2 is always hierarchical");
        }
        let swap = convert::memory_swap_to_v2(memory.swap(), memory.limit())?;
        if memory.limit().is_none() && memory.reservation().is_none() && swap.is_none() {
            return Ok(());
        }
        let dir = self.need("memory.max", "memory", "linux.resources.memory")?;
        if memory.check_before_update() == Some(true) {
            if let Some(limit) = memory.limit().filter(|l| *l > 0) {
                let usage = fsio::read_u64(&dir.join("memory.current"))?;
                if usage > limit.unsigned_abs() {
                    return Err(CgroupError::InvalidValue {
                        field: "linux.resources.memory.limit".into(),
                        reason: format!("{limit} is below the current usage {usage}"),
                    });
                }
            }
        }
        // Swap before memory: a lower memory.max with swap disabled could otherwise OOM-kill.
        if let Some(swap) = swap {
            let field = "linux.resources.memory.swap";
            if !fsio::exists(&dir, "memory.swap.max") {
                return Err(CgroupError::Unsupported(format!(
                    "{field}: the kernel does not account swap (memory.swap.max is missing)"
                )));
            }
            self.write(field, "memory.swap.max", &swap)?;
        }
        if let Some(limit) = memory.limit() {
            let limit = if limit < 0 { -1 } else { limit };
            MemController::new(dir.clone(), PathBuf::new(), true)
                .set_limit(limit)
                .map_err(|e| {
                    CgroupError::library("linux.resources.memory.limit", dir.join("memory.max"), e)
                })?;
        }
        if let Some(reservation) = memory.reservation() {
            self.write(
                "linux.resources.memory.reservation",
                "memory.low",
                &convert::limit_to_v2(reservation),
            )?;
        }
        Ok(())
    }

    fn cpu(&self, cpu: &LinuxCpu) -> Result<(), CgroupError> {
        if cpu.realtime_runtime().is_some_and(|r| r != 0)
            || cpu.realtime_period().is_some_and(|p| p != 0)
        {
            return Err(CgroupError::Unsupported(
                "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no \
                 realtime CPU scheduling limits"
                    .into(),
            ));
        }
        if cpu.cpus().is_some() || cpu.mems().is_some() {
            let dir = self.need("cpuset.cpus", "cpuset", "linux.resources.cpu.cpus/mems")?;
            let cpuset = CpuSetController::new(dir.clone(), PathBuf::new(), true);
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
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            let field = "linux.resources.cpu.shares";
            let dir = self.need("cpu.weight", "cpu", field)?;
            CpuController::new(dir.clone(), PathBuf::new(), true)
                .set_shares(convert::cpu_shares_to_weight(shares))
                .map_err(|e| CgroupError::library(field, dir.join("cpu.weight"), e))?;
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            let field = "linux.resources.cpu.quota/period";
            let dir = self.need("cpu.max", "cpu", field)?;
            let current = fsio::read(&dir.join("cpu.max"))?;
            let current_quota = current.split_whitespace().next().unwrap_or("max");
            if let Some(value) = convert::cpu_max(cpu.quota(), cpu.period(), current_quota) {
                self.write(field, "cpu.max", &value)?;
            }
        }
        if let Some(burst) = cpu.burst() {
            let field = "linux.resources.cpu.burst";
            self.need("cpu.max.burst", "cpu", field)?;
            self.write(field, "cpu.max.burst", &burst.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            let field = "linux.resources.cpu.idle";
            self.need("cpu.idle", "cpu", field)?;
            self.write(field, "cpu.idle", &idle.to_string())?;
        }
        Ok(())
    }

    fn block_io(&self, block_io: &LinuxBlockIo) -> Result<(), CgroupError> {
        if block_io.leaf_weight().is_some() {
            return Err(CgroupError::Unsupported(
                "linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights".into(),
            ));
        }
        // BFQ takes v1 weights unchanged; the generic io.weight takes the converted value.
        let weight_target = |field: &str| -> Result<(&'static str, bool), CgroupError> {
            if fsio::exists(self.dir, "io.bfq.weight") {
                Ok(("io.bfq.weight", false))
            } else if fsio::exists(self.dir, "io.weight") {
                Ok(("io.weight", true))
            } else {
                Err(CgroupError::ControllerMissing {
                    field: field.to_owned(),
                    controller: "io".into(),
                })
            }
        };
        if let Some(weight) = block_io.weight() {
            let field = "linux.resources.blockIO.weight";
            let (file, convert_weight) = weight_target(field)?;
            let value = if convert_weight {
                convert::blkio_weight_to_io_weight(field, weight)?
            } else {
                u64::from(weight)
            };
            self.write(field, file, &value.to_string())?;
        }
        for device in block_io.weight_device().iter().flatten() {
            let field = format!(
                "linux.resources.blockIO.weightDevice[{}:{}]",
                device.major(),
                device.minor()
            );
            if device.leaf_weight().is_some() {
                return Err(CgroupError::Unsupported(format!(
                    "{field}.leafWeight: cgroup v2 has no leaf weights"
                )));
            }
            if let Some(weight) = device.weight() {
                let (file, convert_weight) = weight_target(&field)?;
                let value = if convert_weight {
                    convert::blkio_weight_to_io_weight(&field, weight)?
                } else {
                    u64::from(weight)
                };
                let line = format!("{}:{} {}", device.major(), device.minor(), value);
                self.write(&field, file, &line)?;
            }
        }
        let throttles = [
            (
                "throttleReadBpsDevice",
                "rbps",
                block_io.throttle_read_bps_device(),
            ),
            (
                "throttleWriteBpsDevice",
                "wbps",
                block_io.throttle_write_bps_device(),
            ),
            (
                "throttleReadIOPSDevice",
                "riops",
                block_io.throttle_read_iops_device(),
            ),
            (
                "throttleWriteIOPSDevice",
                "wiops",
                block_io.throttle_write_iops_device(),
            ),
        ];
        for (name, key, list) in throttles {
            for device in list.iter().flatten() {
                let field = format!(
                    "linux.resources.blockIO.{name}[{}:{}]",
                    device.major(),
                    device.minor()
                );
                self.need("io.max", "io", &field)?;
                let line = format!(
                    "{}:{} {key}={}",
                    device.major(),
                    device.minor(),
                    convert::io_max_rate(device.rate())
                );
                self.write(&field, "io.max", &line)?;
            }
        }
        Ok(())
    }
}
