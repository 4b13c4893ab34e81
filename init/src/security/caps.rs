//! Capabilities of the container process (`process.capabilities` in the spec).
//!
//! The caps crate supplies the capability names, numbers and read access. The few
//! calls that change the kernel state are made here directly, because the caps crate
//! turns failures into strings and loses errno. Capabilities are per thread: all of
//! this acts on the calling thread, which in init is the only one.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use ::caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities as OciCapabilities, LinuxCapabilities};

use super::SecurityError;

/// The five capability sets named by the OCI spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapabilitySet {
    Bounding,
    Effective,
    Permitted,
    Inheritable,
    Ambient,
}

impl fmt::Display for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bounding => "bounding",
            Self::Effective => "effective",
            Self::Permitted => "permitted",
            Self::Inheritable => "inheritable",
            Self::Ambient => "ambient",
        })
    }
}

/// Capability sets from the spec, validated. A set the spec leaves out is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedCapabilities {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

impl ParsedCapabilities {
    /// Drops what the runtime itself cannot grant (outside its own bounding set) and returns the
    /// names dropped. The runtime spec asks for a warning there, not a failure.
    pub fn drop_ungrantable(&mut self) -> Vec<String> {
        let Ok(ours) = ::caps::read(None, ::caps::CapSet::Bounding) else {
            return Vec::new();
        };
        let mut dropped: Vec<String> = Vec::new();
        for set in [
            &mut self.bounding,
            &mut self.effective,
            &mut self.permitted,
            &mut self.inheritable,
            &mut self.ambient,
        ] {
            set.retain(|cap| {
                let keep = ours.contains(cap);
                if !keep && !dropped.contains(&cap.to_string()) {
                    dropped.push(cap.to_string());
                }
                keep
            });
        }
        dropped.sort();
        dropped
    }

    pub fn set(&self, which: CapabilitySet) -> &CapsHashSet {
        match which {
            CapabilitySet::Bounding => &self.bounding,
            CapabilitySet::Effective => &self.effective,
            CapabilitySet::Permitted => &self.permitted,
            CapabilitySet::Inheritable => &self.inheritable,
            CapabilitySet::Ambient => &self.ambient,
        }
    }

    /// Builds the sets from capability names ("CAP_NET_RAW"), as they appear in JSON.
    pub fn from_names<S: AsRef<str>>(
        bounding: &[S],
        effective: &[S],
        permitted: &[S],
        inheritable: &[S],
        ambient: &[S],
    ) -> Result<Self, SecurityError> {
        let parse = |set, names: &[S]| {
            names
                .iter()
                .map(|name| parse_capability_name(set, name.as_ref()))
                .collect::<Result<CapsHashSet, _>>()
        };
        Ok(Self {
            bounding: parse(CapabilitySet::Bounding, bounding)?,
            effective: parse(CapabilitySet::Effective, effective)?,
            permitted: parse(CapabilitySet::Permitted, permitted)?,
            inheritable: parse(CapabilitySet::Inheritable, inheritable)?,
            ambient: parse(CapabilitySet::Ambient, ambient)?,
        })
    }

    /// Names of requested capabilities the running kernel does not know (newer than the
    /// kernel). They are left out when applying, so the caller may want to log them.
    pub fn unsupported_by_kernel(&self) -> Vec<String> {
        let supported = ::caps::runtime::thread_all_supported();
        let requested: BTreeSet<String> = [
            &self.bounding,
            &self.effective,
            &self.permitted,
            &self.inheritable,
            &self.ambient,
        ]
        .into_iter()
        .flatten()
        .filter(|cap| !supported.contains(cap))
        .map(|cap| cap.to_string())
        .collect();
        requested.into_iter().collect()
    }
}

/// Every name [`parse_capability_name`] accepts, sorted (`husk features` lists these).
pub fn known_capability_names() -> Vec<String> {
    let mut names: Vec<String> = ::caps::all().iter().map(|c| c.to_string()).collect();
    names.sort();
    names
}

/// Parses one capability name in the spec's form ("CAP_NET_RAW").
pub fn parse_capability_name(set: CapabilitySet, name: &str) -> Result<Capability, SecurityError> {
    Capability::from_str(name).map_err(|_| SecurityError::UnknownCapability {
        set,
        name: name.to_owned(),
    })
}

/// Validate capability names from the spec; an unknown name is an error naming it.
/// Pure (no syscalls), so the host can call it before forking.
pub fn parse_capabilities(c: &LinuxCapabilities) -> Result<ParsedCapabilities, SecurityError> {
    let parse = |set, caps: &Option<OciCapabilities>| {
        caps.iter()
            .flatten()
            // oci-spec prints its capabilities without the "CAP_" prefix.
            .map(|cap| parse_capability_name(set, &format!("CAP_{cap}")))
            .collect::<Result<CapsHashSet, _>>()
    };
    Ok(ParsedCapabilities {
        bounding: parse(CapabilitySet::Bounding, c.bounding())?,
        effective: parse(CapabilitySet::Effective, c.effective())?,
        permitted: parse(CapabilitySet::Permitted, c.permitted())?,
        inheritable: parse(CapabilitySet::Inheritable, c.inheritable())?,
        ambient: parse(CapabilitySet::Ambient, c.ambient())?,
    })
}

/// Before the uid/gid change: keep capabilities across setuid (PR_SET_KEEPCAPS) and drop
/// the bounding set to what the spec allows. Dropping needs CAP_SETPCAP in the
/// effective set; capabilities already outside the bounding set are not touched, so a
/// bounding set that already matches needs no privilege.
pub fn prepare_before_user_change(p: &ParsedCapabilities) -> Result<(), SecurityError> {
    nix::sys::prctl::set_keepcaps(true).map_err(|errno| SecurityError::KeepCapabilities {
        enable: true,
        errno,
    })?;
    // The caps crate reads a capability the kernel does not know as absent, and has no
    // failure today; should it fail, trying every capability the kernel knows still gives
    // the right result.
    let current_bounding = ::caps::read(None, CapSet::Bounding)
        .unwrap_or_else(|_| ::caps::runtime::thread_all_supported());
    let mut to_drop: Vec<Capability> = current_bounding
        .into_iter()
        .filter(|cap| !p.bounding.contains(cap))
        .collect();
    to_drop.sort_by_key(|cap| cap.index());
    for cap in to_drop {
        sys::drop_bounding(cap).map_err(|errno| SecurityError::DropBounding {
            capability: cap.to_string(),
            errno,
        })?;
    }
    Ok(())
}

/// After setuid/setgid: set effective, permitted and inheritable in one capset, then the
/// ambient set (only capabilities that are also permitted and inheritable), then clear
/// KEEPCAPS. Capabilities the running kernel does not know are left out.
pub fn apply_after_user_change(p: &ParsedCapabilities) -> Result<(), SecurityError> {
    let supported = ::caps::runtime::thread_all_supported();
    let mask = |set: &CapsHashSet| {
        set.iter()
            .filter(|cap| supported.contains(cap))
            .fold(0u64, |mask, cap| mask | cap.bitmask())
    };
    let (effective, permitted, inheritable) =
        (mask(&p.effective), mask(&p.permitted), mask(&p.inheritable));
    sys::capset(effective, permitted, inheritable).map_err(|errno| {
        SecurityError::SetCapabilities {
            effective: names(&p.effective),
            permitted: names(&p.permitted),
            inheritable: names(&p.inheritable),
            errno,
        }
    })?;

    sys::clear_ambient().map_err(|errno| SecurityError::ClearAmbient { errno })?;
    let mut ambient: Vec<Capability> = p
        .ambient
        .iter()
        .copied()
        .filter(|cap| supported.contains(cap))
        // The kernel only lets a capability that is both permitted and inheritable be ambient.
        // Specs commonly list ambient capabilities without inheritable ones (runc's default
        // spec does); like runc, such entries are left out rather than failing the container.
        .filter(|cap| p.permitted.contains(cap) && p.inheritable.contains(cap))
        .collect();
    ambient.sort_by_key(|cap| cap.index());
    for cap in ambient {
        sys::raise_ambient(cap).map_err(|errno| SecurityError::RaiseAmbient {
            capability: cap.to_string(),
            errno,
        })?;
    }

    nix::sys::prctl::set_keepcaps(false).map_err(|errno| SecurityError::KeepCapabilities {
        enable: false,
        errno,
    })
}

/// "[CAP_A,CAP_B]" in capability-number order, for error messages.
fn names(set: &CapsHashSet) -> String {
    let mut caps: Vec<Capability> = set.iter().copied().collect();
    caps.sort_by_key(|cap| cap.index());
    let names: Vec<String> = caps.iter().map(|cap| cap.to_string()).collect();
    format!("[{}]", names.join(","))
}

/// Thin syscall wrappers that keep errno.
mod sys {
    use ::caps::Capability;
    use nix::errno::Errno;

    pub(super) fn drop_bounding(cap: Capability) -> Result<(), Errno> {
        // SAFETY: PR_CAPBSET_DROP takes an integer and touches no memory of ours.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap.index()),
                0,
                0,
                0,
            )
        };
        Errno::result(rc).map(drop)
    }

    pub(super) fn clear_ambient() -> Result<(), Errno> {
        // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integers only and touches no memory of ours.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
        };
        Errno::result(rc).map(drop)
    }

    pub(super) fn raise_ambient(cap: Capability) -> Result<(), Errno> {
        // SAFETY: PR_CAP_AMBIENT_RAISE takes integers only and touches no memory of ours.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                libc::c_ulong::from(cap.index()),
                0,
                0,
            )
        };
        Errno::result(rc).map(drop)
    }

    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

    #[repr(C)]
    struct CapUserHeader {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct CapUserData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    /// Sets the three base sets of the calling thread at once, so that the kernel checks
    /// the new sets against each other rather than against half-updated ones.
    pub(super) fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
        let header = CapUserHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        // Version 3 splits each 64-bit set into two 32-bit words, low word first.
        let data = [0, 32].map(|shift| CapUserData {
            effective: (effective >> shift) as u32,
            permitted: (permitted >> shift) as u32,
            inheritable: (inheritable >> shift) as u32,
        });
        // SAFETY: header and data are live, correctly laid out for version 3 (one header,
        // two data words) and only read by the kernel.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_capset,
                &header as *const CapUserHeader,
                data.as_ptr(),
            )
        };
        Errno::result(rc).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::test_support::{fork_child, in_child, proc_status_mask, require_root};
    use nix::errno::Errno;

    fn caps_set(caps: &[Capability]) -> CapsHashSet {
        caps.iter().copied().collect()
    }

    fn mask_of(caps: &CapsHashSet) -> u64 {
        caps.iter().fold(0, |mask, cap| mask | cap.bitmask())
    }

    /// Every capability oci-spec can deserialize maps to the same kernel capability.
    #[test]
    fn every_oci_capability_parses() {
        for cap in ::caps::all() {
            let spec: LinuxCapabilities =
                serde_json::from_value(serde_json::json!({ "bounding": [cap.to_string()] }))
                    .unwrap();
            let parsed = parse_capabilities(&spec).unwrap();
            assert_eq!(parsed.bounding, caps_set(&[cap]), "{cap}");
            assert!(parsed.effective.is_empty());
        }
    }

    #[test]
    fn capabilities_newer_than_the_kernel_are_reported() {
        let last_cap: u8 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut want: Vec<Capability> = ::caps::all()
            .into_iter()
            .filter(|cap| cap.index() > last_cap)
            .collect();
        want.sort_by_key(|cap| cap.index());
        let want: Vec<String> = want.iter().map(|cap| cap.to_string()).collect();
        let parsed = ParsedCapabilities {
            ambient: ::caps::all(),
            effective: caps_set(&[Capability::CAP_CHOWN]),
            ..Default::default()
        };
        assert_eq!(parsed.unsupported_by_kernel(), want);
        assert!(ParsedCapabilities::default()
            .unsupported_by_kernel()
            .is_empty());
    }

    #[test]
    fn unknown_capability_name_is_an_error_naming_it() {
        let err = ParsedCapabilities::from_names(
            &["CAP_CHOWN"],
            &[],
            &["CAP_CHOWN", "CAP_FLY_TO_THE_MOON"],
            &[],
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(&err, SecurityError::UnknownCapability { set: CapabilitySet::Permitted, name } if name == "CAP_FLY_TO_THE_MOON"),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("CAP_FLY_TO_THE_MOON"), "{message}");
        assert!(message.contains("permitted"), "{message}");
        assert_eq!(err.errno(), None);

        // Only the exact spec spelling is accepted by the name parser.
        assert!(parse_capability_name(CapabilitySet::Ambient, "NET_RAW").is_err());
        assert_eq!(
            parse_capability_name(CapabilitySet::Ambient, "CAP_NET_RAW").unwrap(),
            Capability::CAP_NET_RAW
        );
    }

    #[test]
    fn bounding_drop_is_visible_in_capbnd() {
        require_root();
        let keep = caps_set(&[
            Capability::CAP_CHOWN,
            Capability::CAP_KILL,
            Capability::CAP_SETPCAP,
            Capability::CAP_NET_BIND_SERVICE,
        ]);
        let parsed = ParsedCapabilities {
            bounding: keep.clone(),
            ..Default::default()
        };
        in_child(|| {
            let before = proc_status_mask("CapBnd")?;
            if before & Capability::CAP_NET_RAW.bitmask() == 0 {
                return Err(format!(
                    "CAP_NET_RAW already missing from CapBnd {before:016x}; test cannot show a drop"
                ));
            }
            prepare_before_user_change(&parsed).map_err(|e| e.to_string())?;
            let after = proc_status_mask("CapBnd")?;
            let want = mask_of(&keep);
            if after != want {
                return Err(format!("CapBnd {after:016x}, want {want:016x}"));
            }
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn dropping_net_raw_makes_raw_socket_fail_with_eperm() {
        require_root();
        // Start from what this process holds (this host's bounding set lacks some caps).
        let mut all_but_raw = ::caps::read(None, CapSet::Permitted).unwrap();
        all_but_raw.remove(&Capability::CAP_NET_RAW);
        let parsed = ParsedCapabilities {
            bounding: all_but_raw.clone(),
            effective: all_but_raw.clone(),
            permitted: all_but_raw.clone(),
            inheritable: CapsHashSet::new(),
            ambient: CapsHashSet::new(),
        };
        let open_raw_socket = || {
            nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet,
                nix::sys::socket::SockType::Raw,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                nix::sys::socket::SockProtocol::Icmp,
            )
        };
        in_child(|| {
            // Control: with CAP_NET_RAW the socket opens, so the EPERM below is the drop's doing.
            open_raw_socket().map_err(|e| format!("raw socket before the drop: {e}"))?;
            prepare_before_user_change(&parsed).map_err(|e| e.to_string())?;
            apply_after_user_change(&parsed).map_err(|e| e.to_string())?;
            match open_raw_socket() {
                Err(Errno::EPERM) => {}
                other => return Err(format!("raw socket after the drop: {other:?}, want EPERM")),
            }
            let effective = proc_status_mask("CapEff")?;
            if effective != mask_of(&all_but_raw) {
                return Err(format!("CapEff {effective:016x}"));
            }
            Ok(())
        })
        .unwrap();
    }

    /// A non-root user keeps an ambient capability across setuid and execve.
    #[test]
    fn ambient_capability_survives_setuid_and_exec() {
        require_root();
        let net_bind = caps_set(&[Capability::CAP_NET_BIND_SERVICE]);
        let mut bounding = net_bind.clone();
        bounding.insert(Capability::CAP_KILL);
        let parsed = ParsedCapabilities {
            bounding,
            effective: net_bind.clone(),
            permitted: net_bind.clone(),
            inheritable: net_bind.clone(),
            ambient: net_bind.clone(),
        };
        let outcome = fork_child(|report| {
            use std::os::fd::AsRawFd;
            prepare_before_user_change(&parsed).map_err(|e| e.to_string())?;
            let id = 1000;
            nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
            nix::unistd::setresgid(id.into(), id.into(), id.into())
                .map_err(|e| format!("setresgid: {e}"))?;
            nix::unistd::setresuid(id.into(), id.into(), id.into())
                .map_err(|e| format!("setresuid: {e}"))?;
            apply_after_user_change(&parsed).map_err(|e| e.to_string())?;
            nix::unistd::dup2(report.as_raw_fd(), libc::STDOUT_FILENO)
                .map_err(|e| format!("dup2: {e}"))?;
            let sh = c"/bin/sh";
            let err = nix::unistd::execv(sh, &[sh, c"-c", c"id -u; grep '^Cap' /proc/self/status"])
                .unwrap_err();
            Err(format!("execv /bin/sh: {err}"))
        });
        let output = outcome.expect_success();
        let mut lines = output.lines();
        assert_eq!(lines.next(), Some("1000"), "output: {output}");
        let field = |name: &str| {
            output
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}:\t")))
                .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
                .unwrap_or_else(|| panic!("no {name} in {output}"))
        };
        let want = Capability::CAP_NET_BIND_SERVICE.bitmask();
        assert_eq!(field("CapAmb"), want, "{output}");
        assert_eq!(field("CapEff"), want, "{output}");
        assert_eq!(field("CapPrm"), want, "{output}");
        assert_eq!(field("CapInh"), want, "{output}");
        assert_eq!(
            field("CapBnd"),
            want | Capability::CAP_KILL.bitmask(),
            "{output}"
        );
    }

    /// Without KEEPCAPS the permitted set would be gone after setuid and the capset
    /// would fail; this checks the error carries the step and errno.
    #[test]
    fn capset_beyond_permitted_reports_errno() {
        require_root();
        let parsed = ParsedCapabilities {
            bounding: ::caps::runtime::thread_all_supported(),
            effective: caps_set(&[Capability::CAP_CHOWN]),
            permitted: caps_set(&[Capability::CAP_CHOWN]),
            ..Default::default()
        };
        in_child(|| {
            nix::unistd::setresuid(1000.into(), 1000.into(), 1000.into())
                .map_err(|e| format!("setresuid: {e}"))?;
            match apply_after_user_change(&parsed) {
                Err(err @ SecurityError::SetCapabilities { .. })
                    if err.errno() == Some(libc::EPERM)
                        && err.to_string().contains("CAP_CHOWN") =>
                {
                    Ok(())
                }
                other => Err(format!(
                    "apply after losing caps: {other:?}, want capset EPERM"
                )),
            }
        })
        .unwrap();
    }
}
