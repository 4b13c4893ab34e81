//! The seccomp filter of the container process (`linux.seccomp` in the spec), built
//! with libseccomp.

use std::fmt;
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use super::SecurityError;

/// Errno returned by SCMP_ACT_ERRNO (and the SCMP_ACT_TRACE message) when the spec gives
/// no value: EPERM, as runc does.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// The kernel's seccomp filters take at most six syscall arguments.
const MAX_ARGUMENT_INDEX: usize = 5;

/// A filter built from the spec, not yet loaded.
pub struct SeccompFilter {
    context: ScmpFilterContext,
    uses_notify: bool,
    skipped_syscalls: Vec<String>,
}

impl fmt::Debug for SeccompFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeccompFilter")
            .field("uses_notify", &self.uses_notify)
            .field("skipped_syscalls", &self.skipped_syscalls)
            .finish_non_exhaustive()
    }
}

/// Build a libseccomp filter from `linux.seccomp`.
///
/// Syscall names this libseccomp does not know are skipped and recorded (see
/// `skipped_syscalls`), so one spec works across kernels and libseccomp versions. A rule
/// whose action equals the default action is skipped, since it changes nothing and
/// libseccomp rejects it.
///
/// The filter does not set no_new_privs on load: that is the spec's
/// `process.noNewPrivileges`, applied by the caller.
pub fn build_filter(s: &LinuxSeccomp) -> Result<SeccompFilter, SecurityError> {
    let default_action = to_scmp_action(
        s.default_action(),
        s.default_errno_ret(),
        "the default action",
    )?;
    let mut context = ScmpFilterContext::new(default_action).map_err(|source| {
        SecurityError::SeccompDefaultAction {
            action: describe(default_action),
            source,
        }
    })?;
    let flag_error = |flag: &str| {
        let flag = flag.to_string();
        move |source| SecurityError::SeccompFlag { flag, source }
    };
    context
        .set_ctl_nnp(false)
        .map_err(flag_error("SCMP_FLTATR_CTL_NNP"))?;
    // Report the kernel's own errno when loading fails, not libseccomp's ECANCELED.
    context
        .set_api_sysrawrc(true)
        .map_err(flag_error("SCMP_FLTATR_API_SYSRAWRC"))?;

    for arch in s.architectures().iter().flatten() {
        context.add_arch(to_scmp_arch(*arch)).map_err(|source| {
            SecurityError::SeccompArchitecture {
                arch: arch.to_string(),
                source,
            }
        })?;
    }

    for flag in s.flags().iter().flatten() {
        set_flag(&mut context, *flag)?;
    }

    let mut uses_notify = default_action == ScmpAction::Notify;
    let mut skipped_syscalls = Vec::new();
    for rule in s.syscalls().iter().flatten() {
        let context_name = format!("syscalls {:?}", rule.names());
        let action = to_scmp_action(rule.action(), rule.errno_ret(), &context_name)?;
        if action == default_action {
            continue;
        }
        let conditions = rule
            .args()
            .iter()
            .flatten()
            .map(|arg| to_scmp_condition(rule, arg))
            .collect::<Result<Vec<_>, _>>()?;
        let mut indices: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
        indices.sort_unstable();
        indices.dedup();
        let one_rule_per_condition = indices.len() != conditions.len();
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                skipped_syscalls.push(name.clone());
                continue;
            };
            add_rule(
                &mut context,
                name,
                syscall,
                action,
                &conditions,
                one_rule_per_condition,
            )?;
            uses_notify |= action == ScmpAction::Notify;
        }
    }

    Ok(SeccompFilter {
        context,
        uses_notify,
        skipped_syscalls,
    })
}

impl SeccompFilter {
    /// Whether the filter contains SCMP_ACT_NOTIFY, so loading it yields a listener fd.
    pub fn uses_notify(&self) -> bool {
        self.uses_notify
    }

    /// Syscall names from the spec this libseccomp does not know; they are not filtered.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped_syscalls
    }

    /// Load into the kernel for the calling thread (all threads with the TSYNC flag). If
    /// the filter uses SCMP_ACT_NOTIFY, returns the notify listener fd (close-on-exec).
    ///
    /// The kernel accepts the filter only with no_new_privs set or CAP_SYS_ADMIN held.
    pub fn load(self) -> Result<Option<OwnedFd>, SecurityError> {
        self.context
            .load()
            .map_err(|source| SecurityError::SeccompLoad { source })?;
        if !self.uses_notify {
            return Ok(None);
        }
        let fd = self
            .context
            .get_notify_fd()
            .map_err(|source| SecurityError::SeccompNotifyFd { source })?;
        // SAFETY: the kernel created this listener fd while loading the filter just now;
        // libseccomp only remembers its number and never closes it, so it is ours to own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

fn add_rule(
    context: &mut ScmpFilterContext,
    name: &str,
    syscall: ScmpSyscall,
    action: ScmpAction,
    conditions: &[ScmpArgCompare],
    one_rule_per_condition: bool,
) -> Result<(), SecurityError> {
    let rule_error = |source| SecurityError::SeccompRule {
        syscall: name.to_string(),
        action: describe(action),
        source,
    };
    // Conditions on different arguments must all hold (one rule). libseccomp cannot put
    // two conditions on the same argument in one rule, so when the spec does, each
    // condition becomes its own rule and any of them matching is enough.
    if !one_rule_per_condition {
        context
            .add_rule_conditional(action, syscall, conditions)
            .map_err(rule_error)?;
    } else {
        for condition in conditions {
            context
                .add_rule_conditional(action, syscall, std::slice::from_ref(condition))
                .map_err(rule_error)?;
        }
    }
    Ok(())
}

/// Every `linux.seccomp` action this build applies (`husk features` lists these).
pub const ACTIONS: &[LinuxSeccompAction] = &[
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActTrap,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActAllow,
];

/// Every argument comparison operator.
pub const OPERATORS: &[LinuxSeccompOperator] = &[
    LinuxSeccompOperator::ScmpCmpNe,
    LinuxSeccompOperator::ScmpCmpLt,
    LinuxSeccompOperator::ScmpCmpLe,
    LinuxSeccompOperator::ScmpCmpEq,
    LinuxSeccompOperator::ScmpCmpGe,
    LinuxSeccompOperator::ScmpCmpGt,
    LinuxSeccompOperator::ScmpCmpMaskedEq,
];

/// Architectures this libseccomp can add to a filter on this (little-endian) host; the unit
/// tests add each one. Big-endian ABIs cannot share a filter with the native one.
pub const ARCHES: &[Arch] = &[
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchX32,
    Arch::ScmpArchArm,
    Arch::ScmpArchAarch64,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchRiscv64,
];

/// Filter flags this libseccomp supports (WAIT_KILLABLE_RECV needs libseccomp 2.6).
pub fn supported_flags() -> Vec<LinuxSeccompFilterFlag> {
    let mut flags = vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    ];
    if ScmpVersion::current().is_ok_and(|v| (v.major, v.minor) >= (2, 6)) {
        flags.push(LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv);
    }
    flags
}

fn set_flag(
    context: &mut ScmpFilterContext,
    flag: LinuxSeccompFilterFlag,
) -> Result<(), SecurityError> {
    let name = flag.to_string();
    let result = match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => context.set_ctl_log(true),
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => context.set_ctl_tsync(true),
        // libseccomp's "speculative store bypass" attribute maps to SPEC_ALLOW.
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => context.set_ctl_ssb(true),
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            let found = ScmpVersion::current().map_err(|source| SecurityError::SeccompFlag {
                flag: name.clone(),
                source,
            })?;
            if (found.major, found.minor) < (2, 6) {
                return Err(SecurityError::SeccompFlagUnsupported {
                    flag: name,
                    needed: "2.6.0",
                    found: found.to_string(),
                });
            }
            context.set_ctl_waitkill(true)
        }
    };
    result
        .map(drop)
        .map_err(|source| SecurityError::SeccompFlag { flag: name, source })
}

fn to_scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    context: &str,
) -> Result<ScmpAction, SecurityError> {
    let data = || {
        let value = errno_ret.unwrap_or(DEFAULT_ERRNO);
        u16::try_from(value).map_err(|_| SecurityError::SeccompErrnoOutOfRange {
            context: context.to_string(),
            value,
        })
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(data()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data()?),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

fn to_scmp_condition(
    rule: &LinuxSyscall,
    arg: &LinuxSeccompArg,
) -> Result<ScmpArgCompare, SecurityError> {
    let index = arg.index();
    if index > MAX_ARGUMENT_INDEX {
        return Err(SecurityError::SeccompArgumentIndex {
            syscall: rule.names().join(","),
            index,
        });
    }
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // The spec's `value` is the mask and `valueTwo` the expected masked result.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(index as u32, op, datum))
}

fn to_scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The spec's spelling of an action, for error messages.
fn describe(action: ScmpAction) -> String {
    match action {
        ScmpAction::KillProcess => "SCMP_ACT_KILL_PROCESS".into(),
        ScmpAction::KillThread => "SCMP_ACT_KILL_THREAD".into(),
        ScmpAction::Trap => "SCMP_ACT_TRAP".into(),
        ScmpAction::Notify => "SCMP_ACT_NOTIFY".into(),
        ScmpAction::Errno(errno) => format!("SCMP_ACT_ERRNO({errno})"),
        ScmpAction::Trace(message) => format!("SCMP_ACT_TRACE({message})"),
        ScmpAction::Log => "SCMP_ACT_LOG".into(),
        ScmpAction::Allow => "SCMP_ACT_ALLOW".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::test_support::{fork_child, in_child, require_root};
    use nix::errno::Errno;
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;
    use serde_json::json;

    /// What a test child still needs under a default-deny filter: report, allocate, exit.
    const CHILD_NEEDS: [&str; 13] = [
        "write",
        "exit_group",
        "exit",
        "brk",
        "mmap",
        "munmap",
        "mremap",
        "madvise",
        "futex",
        "rt_sigreturn",
        "rt_sigprocmask",
        "sigaltstack",
        "getpid",
    ];

    fn spec(value: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(value).expect("seccomp spec")
    }

    /// A raw syscall with up to three arguments, errno kept.
    fn syscall3(nr: libc::c_long, a: u64, b: u64, c: u64) -> Result<i64, Errno> {
        // SAFETY: only used with syscalls whose arguments are integers or the pointer to
        // a live buffer passed by the caller.
        let rc = unsafe { libc::syscall(nr, a, b, c) };
        Errno::result(rc)
    }

    fn getcwd() -> Result<i64, Errno> {
        let mut buf = [0u8; libc::PATH_MAX as usize];
        syscall3(
            libc::SYS_getcwd,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            0,
        )
    }

    fn expect_errno(what: &str, result: Result<i64, Errno>, want: i32) -> Result<(), String> {
        match result {
            Err(errno) if errno as i32 == want => Ok(()),
            other => Err(format!("{what}: {other:?}, want errno {want}")),
        }
    }

    fn load(filter: SeccompFilter) -> Result<Option<OwnedFd>, String> {
        filter.load().map_err(|e| format!("load: {e}"))
    }

    #[test]
    fn errno_rule_fails_syscall_with_given_errno() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 123 }]
        })))
        .unwrap();
        assert!(!filter.uses_notify());
        in_child(|| {
            getcwd().map_err(|e| format!("getcwd before the filter: {e}"))?;
            assert_eq!(load(filter)?.map(drop), None);
            expect_errno("getcwd", getcwd(), 123)?;
            syscall3(libc::SYS_getpid, 0, 0, 0).map_err(|e| format!("getpid: {e}"))?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn errno_rule_without_errno_ret_uses_eperm() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }]
        })))
        .unwrap();
        in_child(|| {
            load(filter)?;
            expect_errno("getcwd", getcwd(), libc::EPERM)
        })
        .unwrap();
    }

    #[test]
    fn default_errno_action_uses_default_errno_ret() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 99,
            "syscalls": [
                { "names": CHILD_NEEDS, "action": "SCMP_ACT_ALLOW" },
                // Same action as the default: skipped instead of failing the build.
                { "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99 }
            ]
        })))
        .unwrap();
        in_child(|| {
            load(filter)?;
            expect_errno("getcwd", getcwd(), 99)?;
            expect_errno("getppid", syscall3(libc::SYS_getppid, 0, 0, 0), 99)?;
            let pid = syscall3(libc::SYS_getpid, 0, 0, 0).map_err(|e| format!("getpid: {e}"))?;
            if pid <= 0 {
                return Err(format!("getpid returned {pid}"));
            }
            Ok(())
        })
        .unwrap();
    }

    /// SOCK_CLOEXEC/SOCK_NONBLOCK share arg 1 with the socket type; the mask picks the type.
    #[test]
    fn masked_eq_condition_matches_under_the_mask() {
        require_root();
        let sock_type_mask = 0xf;
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["socket"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": libc::EPROTO,
                "args": [
                    { "index": 0, "value": libc::AF_UNIX, "op": "SCMP_CMP_EQ" },
                    { "index": 1, "value": sock_type_mask, "valueTwo": libc::SOCK_DGRAM, "op": "SCMP_CMP_MASKED_EQ" }
                ]
            }]
        })))
        .unwrap();
        let socket = |domain: i32, kind: i32| {
            let fd = syscall3(libc::SYS_socket, domain as u64, kind as u64, 0)?;
            // SAFETY: fd was just returned by socket() and is closed once.
            unsafe { libc::close(fd as i32) };
            Ok(fd)
        };
        in_child(|| {
            load(filter)?;
            let dgram = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
            expect_errno(
                "unix dgram socket",
                socket(libc::AF_UNIX, dgram),
                libc::EPROTO,
            )?;
            let stream = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
            socket(libc::AF_UNIX, stream).map_err(|e| format!("unix stream socket: {e}"))?;
            // Both conditions must hold: the same type in another family passes.
            socket(libc::AF_INET, dgram).map_err(|e| format!("inet dgram socket: {e}"))?;
            Ok(())
        })
        .unwrap();
    }

    /// Each operator, tried on umask(2) (harmless, always succeeds unfiltered) with one
    /// value it must block and one it must let through.
    #[test]
    fn every_operator_compares_as_the_spec_says() {
        require_root();
        let cases = [
            ("SCMP_CMP_NE", 0o22, None, 0o27, 0o22),
            ("SCMP_CMP_LT", 0o22, None, 0o21, 0o22),
            ("SCMP_CMP_LE", 0o22, None, 0o22, 0o23),
            ("SCMP_CMP_EQ", 0o22, None, 0o22, 0o23),
            ("SCMP_CMP_GE", 0o22, None, 0o22, 0o21),
            ("SCMP_CMP_GT", 0o22, None, 0o23, 0o22),
            ("SCMP_CMP_MASKED_EQ", 0o7, Some(0o2), 0o772, 0o773),
        ];
        for (op, value, value_two, blocked, passed) in cases {
            let mut arg = json!({ "index": 0, "value": value, "op": op });
            if let Some(value_two) = value_two {
                arg["valueTwo"] = json!(value_two);
            }
            let filter = build_filter(&spec(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{
                    "names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42, "args": [arg]
                }]
            })))
            .unwrap();
            in_child(|| {
                load(filter)?;
                expect_errno(
                    &format!("umask({blocked:o})"),
                    syscall3(libc::SYS_umask, blocked, 0, 0),
                    42,
                )?;
                syscall3(libc::SYS_umask, passed, 0, 0)
                    .map_err(|e| format!("umask({passed:o}): {e}"))?;
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        }
    }

    /// Two conditions on the same argument: either one matching blocks the call.
    #[test]
    fn conditions_on_the_same_argument_are_alternatives() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42,
                "args": [
                    { "index": 0, "value": 0o11, "op": "SCMP_CMP_EQ" },
                    { "index": 0, "value": 0o33, "op": "SCMP_CMP_EQ" }
                ]
            }]
        })))
        .unwrap();
        in_child(|| {
            load(filter)?;
            expect_errno("umask(011)", syscall3(libc::SYS_umask, 0o11, 0, 0), 42)?;
            expect_errno("umask(033)", syscall3(libc::SYS_umask, 0o33, 0, 0), 42)?;
            syscall3(libc::SYS_umask, 0o22, 0, 0).map_err(|e| format!("umask(022): {e}"))?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn unknown_syscall_names_are_skipped_and_recorded() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                { "names": ["husk_no_such_syscall", "getcwd", "another_made_up_call"],
                  "action": "SCMP_ACT_ERRNO", "errnoRet": 77 }
            ]
        })))
        .unwrap();
        assert_eq!(
            filter.skipped_syscalls(),
            ["husk_no_such_syscall", "another_made_up_call"]
        );
        in_child(|| {
            load(filter)?;
            expect_errno("getcwd", getcwd(), 77)
        })
        .unwrap();
    }

    /// A listener thread answers the notification with an error the caller then sees.
    #[test]
    fn notify_filter_returns_a_listener_fd_that_answers() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_NOTIFY" }]
        })))
        .unwrap();
        assert!(filter.uses_notify());
        in_child(|| {
            use std::os::fd::AsRawFd;
            let listener = load(filter)?.ok_or("notify filter returned no listener fd")?;
            let flags = nix::fcntl::fcntl(listener.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD)
                .map_err(|e| format!("F_GETFD: {e}"))?;
            if flags & libc::FD_CLOEXEC == 0 {
                return Err("listener fd is not close-on-exec".into());
            }
            let answering = std::thread::spawn(move || -> Result<(u32, ScmpSyscall), String> {
                let fd = listener.as_raw_fd();
                let request =
                    libseccomp::ScmpNotifReq::receive(fd).map_err(|e| format!("receive: {e}"))?;
                libseccomp::ScmpNotifResp::new_error(
                    request.id,
                    -libc::EHOSTDOWN,
                    libseccomp::ScmpNotifRespFlags::empty(),
                )
                .respond(fd)
                .map_err(|e| format!("respond: {e}"))?;
                Ok((request.pid, request.data.syscall))
            });
            expect_errno("notified getcwd", getcwd(), libc::EHOSTDOWN)?;
            let (pid, syscall) = answering.join().map_err(|_| "listener thread panicked")??;
            if pid != std::process::id() {
                return Err(format!("notification from pid {pid}, not the child"));
            }
            if syscall != ScmpSyscall::from_name("getcwd").unwrap() {
                return Err(format!("notification for {:?}", syscall.get_name()));
            }
            Ok(())
        })
        .unwrap();
    }

    /// The kill, trap, trace and log actions, each checked by its effect on a child.
    #[test]
    fn every_action_has_its_kernel_effect() {
        require_root();
        let signalled_sigsys =
            |status: WaitStatus| matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _));
        for action in [
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP",
        ] {
            let filter = build_filter(&spec(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["getcwd"], "action": action }]
            })))
            .unwrap();
            let outcome = fork_child(|_| {
                load(filter)?;
                let result = getcwd();
                Err(format!("getcwd survived {action}: {result:?}"))
            });
            assert!(
                signalled_sigsys(outcome.status),
                "{action}: {:?} {}",
                outcome.status,
                outcome.output
            );
        }

        // With no tracer attached the kernel fails a traced syscall with ENOSYS.
        let trace = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_TRACE", "errnoRet": 5 }]
        })))
        .unwrap();
        in_child(|| {
            load(trace)?;
            expect_errno("traced getcwd", getcwd(), libc::ENOSYS)
        })
        .unwrap();

        // LOG lets the call through where the default action would fail it.
        let log = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 3,
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                { "names": CHILD_NEEDS, "action": "SCMP_ACT_ALLOW" },
                { "names": ["getcwd"], "action": "SCMP_ACT_LOG" }
            ]
        })))
        .unwrap();
        in_child(|| {
            load(log)?;
            getcwd().map_err(|e| format!("logged getcwd: {e}"))?;
            expect_errno("getppid", syscall3(libc::SYS_getppid, 0, 0, 0), 3)
        })
        .unwrap();
    }

    #[test]
    fn flags_set_the_libseccomp_attributes() {
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": [
                "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                "SECCOMP_FILTER_FLAG_TSYNC"
            ]
        })))
        .unwrap();
        assert!(filter.context.get_ctl_log().unwrap());
        assert!(filter.context.get_ctl_ssb().unwrap());
        assert!(filter.context.get_ctl_tsync().unwrap());
        // no_new_privs is the spec's process.noNewPrivileges, not the filter's business.
        assert!(!filter.context.get_ctl_nnp().unwrap());

        let plain = build_filter(&spec(json!({ "defaultAction": "SCMP_ACT_ALLOW" }))).unwrap();
        assert!(!plain.context.get_ctl_log().unwrap());
        assert!(!plain.context.get_ctl_ssb().unwrap());
    }

    #[test]
    fn wait_killable_recv_needs_libseccomp_2_6() {
        let result = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        })));
        let version = ScmpVersion::current().unwrap();
        if (version.major, version.minor) < (2, 6) {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, SecurityError::SeccompFlagUnsupported { flag, needed: "2.6.0", .. }
                    if flag == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
                "{err:?}"
            );
            assert!(err.to_string().contains(&version.to_string()), "{err}");
        } else {
            assert!(result.unwrap().context.get_ctl_waitkill().unwrap());
        }
    }

    #[test]
    fn advertised_tables_are_accepted() {
        for arch in ARCHES {
            let s = spec(
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}),
            );
            build_filter(&s).unwrap_or_else(|e| panic!("{arch:?}: {e}"));
        }
        for action in ACTIONS {
            let s = spec(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["getcwd"], "action": action}]}));
            build_filter(&s).unwrap_or_else(|e| panic!("{action:?}: {e}"));
        }
        for op in OPERATORS {
            let s = spec(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["umask"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]}]}));
            build_filter(&s).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        }
        for flag in supported_flags() {
            let s = spec(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]}));
            build_filter(&s).unwrap_or_else(|e| panic!("{flag:?}: {e}"));
        }
    }

    #[test]
    fn architectures_are_added() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9 }]
        })))
        .unwrap();
        for arch in [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32] {
            assert!(filter.context.is_arch_present(arch).unwrap(), "{arch:?}");
        }
        in_child(|| {
            load(filter)?;
            expect_errno("getcwd", getcwd(), 9)
        })
        .unwrap();
    }

    #[test]
    fn invalid_specs_are_errors_naming_the_thing() {
        let err = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000 }]
        })))
        .unwrap_err();
        assert!(
            matches!(
                err,
                SecurityError::SeccompErrnoOutOfRange { value: 70000, .. }
            ),
            "{err:?}"
        );

        let err = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO",
                           "args": [{ "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }]
        })))
        .unwrap_err();
        assert!(
            matches!(&err, SecurityError::SeccompArgumentIndex { syscall, index: 6 } if syscall == "read"),
            "{err:?}"
        );

        // LoongArch came with libseccomp 2.6; older ones refuse it by name.
        let result = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_LOONGARCH64"]
        })));
        let version = ScmpVersion::current().unwrap();
        if (version.major, version.minor) < (2, 6) {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, SecurityError::SeccompArchitecture { arch, .. } if arch == "SCMP_ARCH_LOONGARCH64"),
                "{err:?}"
            );
            assert_eq!(err.errno(), Some(libc::EINVAL), "{err:?}");
        } else {
            result.unwrap();
        }
    }

    /// Without no_new_privs and without CAP_SYS_ADMIN the kernel refuses the filter;
    /// the error keeps the kernel's errno.
    #[test]
    fn load_failure_keeps_the_kernel_errno() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO" }]
        })))
        .unwrap();
        in_child(|| {
            nix::unistd::setresuid(1000.into(), 1000.into(), 1000.into())
                .map_err(|e| format!("setresuid: {e}"))?;
            match filter.load() {
                Err(err @ SecurityError::SeccompLoad { .. })
                    if err.errno() == Some(libc::EACCES) =>
                {
                    Ok(())
                }
                other => Err(format!("load without privilege: {other:?}, want EACCES")),
            }
        })
        .unwrap();
    }
}
