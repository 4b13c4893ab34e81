//! `linux.resources.devices` on cgroup v2.
//!
//! cgroup v2 has no devices files: access is decided by a `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! attached to the cgroup, and cgroups-rs has no support for it.

use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use super::CgroupError;

/// TODO: build and attach the eBPF device filter. Until then a device list on v2 is refused
/// loudly rather than ignored, since ignoring it would give the container every device.
pub fn apply(_dir: &Path, _rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    Err(CgroupError::Unsupported(
        "linux.resources.devices on cgroup v2 needs an eBPF device filter, not implemented yet"
            .into(),
    ))
}
