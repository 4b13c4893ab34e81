//! The seccomp filter of the container process (`linux.seccomp` in the spec), built
//! with libseccomp and loaded with seccomp(2).
//!
//! # Syscalls newer than the profile fail with ENOSYS
//!
//! A profile names syscalls; every syscall it does not name gets its default action. When
//! that action denies (EPERM, say), a syscall added to the kernel after the profile was
//! written is denied with the profile's errno, while libcs only fall back to an older call on
//! ENOSYS: glibc's `posix_spawn` tries `clone3` and uses `clone` only after ENOSYS, and so do
//! its `fchmodat2`, `close_range` and `faccessat2` paths. So, for a profile whose default
//! action denies (`SCMP_ACT_ERRNO`, `SCMP_ACT_KILL*`, `SCMP_ACT_TRAP`), a syscall numbered
//! above the highest syscall the profile names fails with ENOSYS, as if the kernel did not
//! have it. An older syscall the profile does not name keeps the default action: the profile's
//! author knew it and left it out.
//!
//! - "The profile names": every name of every rule, whatever the rule's action, that this
//!   libseccomp can resolve. A name it cannot resolve is newer than this libseccomp and, like
//!   any newer syscall, gets ENOSYS when numbered above the bound.
//! - Each ABI has its own numbering, hence its own bound: the native architecture (always in
//!   the filter) and each one in `architectures`. x86_64 and x32 share `AUDIT_ARCH_X86_64` and
//!   differ by bit 30 of the number (`__X32_SYSCALL_BIT`), so the x86_64 bound applies to
//!   numbers without that bit and the x32 bound (which includes the bit) to numbers with it.
//!   An ABI the profile names nothing for gets no bound; an ABI that is not in the filter at
//!   all gets libseccomp's bad-architecture action, as before.
//! - `SCMP_ACT_ALLOW` and `SCMP_ACT_LOG` defaults let unknown syscalls through already;
//!   with `SCMP_ACT_TRACE` the tracer decides (it can answer ENOSYS itself); a default
//!   `SCMP_ACT_NOTIFY` is refused (see below).
//! - The bound compares numbers, not kernel versions: a syscall numbered below the bound but
//!   added later (numbers are not always handed out in order) keeps the default action.
//!
//! libseccomp cannot match a range of syscall numbers, so the program it generates is
//! exported (`seccomp_export_bpf`) and a short cBPF prologue goes in front of it: per ABI,
//! "number above the bound: return ERRNO(ENOSYS)", otherwise on into libseccomp's program
//! with the accumulator reset. A second, separate filter could not do this: the kernel runs
//! every installed filter and keeps the result of highest precedence (a KILL default beats
//! ERRNO), and between two ERRNO results the most recently installed filter's errno wins.
//! The program is then loaded with seccomp(2) directly, with the flags libseccomp would pass.
//!
//! runc 1.1.5 applies the same rule to the architectures listed in `architectures` only, so
//! a profile without that list gets no ENOSYS there; husk always bounds the native ABI.
//!
//! # SCMP_ACT_NOTIFY and the runtime's own syscalls
//!
//! A filter with `SCMP_ACT_NOTIFY` applies to the init that loads it, and the agent can only
//! answer once husk has handed it the listener fd, which the init sends right after loading
//! (see [`NOTIFY_REFUSED_SYSCALLS`]). A notification for a syscall the init makes before that
//! would wait forever, and `husk create` with it: [`refuse_notify_deadlocks`] refuses such a
//! profile at create, naming the field.

use std::fmt;
use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion,
};
use nix::errno::Errno;
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

/// Syscalls the init makes between loading a filter with `SCMP_ACT_NOTIFY` and the moment
/// the agent holds the listener fd, so a notification for one of them is never answered:
/// `sendmsg` carries the fd to husk, and `write` is how the init reports a failure when the
/// socket is gone (runc refuses `write` too, so profiles written for runc already avoid it).
/// A default action of `SCMP_ACT_NOTIFY` would cover both, and is refused as well.
pub const NOTIFY_REFUSED_SYSCALLS: &[&str] = &["sendmsg", "write"];

/// A `linux.seccomp` setting refused because it would hang the runtime (see
/// [`refuse_notify_deadlocks`]): `field` is the config path, `reason` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRefusal {
    pub field: String,
    pub reason: String,
}

/// Refuses `SCMP_ACT_NOTIFY` where its notification could not be answered: as the default
/// action, or on one of [`NOTIFY_REFUSED_SYSCALLS`].
pub fn refuse_notify_deadlocks(s: &LinuxSeccomp) -> Result<(), NotifyRefusal> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(NotifyRefusal {
            field: "linux.seccomp.defaultAction".into(),
            reason: format!(
                "SCMP_ACT_NOTIFY cannot be the default action: the runtime's own {} would wait \
                 for a seccomp agent that does not have the listener yet",
                NOTIFY_REFUSED_SYSCALLS.join(" and ")
            ),
        });
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        if rule.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        if let Some(name) = rule
            .names()
            .iter()
            .find(|name| NOTIFY_REFUSED_SYSCALLS.contains(&name.as_str()))
        {
            return Err(NotifyRefusal {
                field: format!("linux.seccomp.syscalls[{i}]"),
                reason: format!(
                    "SCMP_ACT_NOTIFY cannot be used for {name}: the runtime calls {name} itself \
                     before the seccomp agent has the listener, and would wait forever"
                ),
            });
        }
    }
    Ok(())
}

/// A filter built from the spec, not yet loaded.
///
/// Built by the runtime on the host (and cached there: the build with libseccomp takes about a
/// millisecond) and sent to the init in the bootstrap, which only loads it. Over the wire it
/// is the program, its flags and whether it yields a listener; the bounds and the skipped
/// names stay with the builder, which reports them.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(into = "FilterWire", from = "FilterWire")]
pub struct SeccompFilter {
    /// The program to load: the ENOSYS prologue, then libseccomp's program.
    program: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* asked for by the spec's `flags`.
    flags: libc::c_ulong,
    /// The per-ABI bounds of the ENOSYS prologue (empty: no prologue).
    newer_than_profile: Vec<AbiBound>,
    uses_notify: bool,
    skipped_syscalls: Vec<String>,
}

/// What of a [`SeccompFilter`] crosses to the init: the program as `(code, jt, jf, k)`.
#[derive(serde::Serialize, serde::Deserialize)]
struct FilterWire {
    program: Vec<(u16, u8, u8, u32)>,
    flags: libc::c_ulong,
    uses_notify: bool,
}

impl From<SeccompFilter> for FilterWire {
    fn from(f: SeccompFilter) -> Self {
        FilterWire {
            program: f
                .program
                .iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect(),
            flags: f.flags,
            uses_notify: f.uses_notify,
        }
    }
}

impl From<FilterWire> for SeccompFilter {
    fn from(w: FilterWire) -> Self {
        SeccompFilter {
            program: w
                .program
                .into_iter()
                .map(|(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
                .collect(),
            flags: w.flags,
            newer_than_profile: Vec::new(),
            uses_notify: w.uses_notify,
            skipped_syscalls: Vec::new(),
        }
    }
}

impl fmt::Debug for SeccompFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeccompFilter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .field("newer_than_profile", &self.newer_than_profile)
            .field("uses_notify", &self.uses_notify)
            .field("skipped_syscalls", &self.skipped_syscalls)
            .finish()
    }
}

/// Build a libseccomp filter from `linux.seccomp`.
///
/// Syscall names this libseccomp does not know are skipped and recorded (see
/// `skipped_syscalls`), so one spec works across kernels and libseccomp versions. A rule
/// whose action equals the default action is skipped, since it changes nothing and
/// libseccomp rejects it. With a denying default action, syscalls newer than the profile
/// fail with ENOSYS (see the module documentation).
///
/// The filter does not set no_new_privs on load: that is the spec's
/// `process.noNewPrivileges`, applied by the caller.
pub fn build_filter(s: &LinuxSeccomp) -> Result<SeccompFilter, SecurityError> {
    refuse_notify_deadlocks(s).map_err(|refusal| SecurityError::SeccompNotifyRefused {
        field: refusal.field,
        reason: refusal.reason,
    })?;
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
    // Report libseccomp's failures with the kernel's errno, not ECANCELED.
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

    let mut flags = 0;
    for flag in s.flags().iter().flatten() {
        flags |= set_flag(&mut context, *flag)?;
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

    let newer_than_profile = if denies(default_action) {
        newer_syscall_bounds(s)
    } else {
        Vec::new()
    };
    let mut program = enosys_prologue(&newer_than_profile)?;
    program.extend(export_program(&context)?);
    if program.len() > libc::BPF_MAXINSNS as usize {
        return Err(SecurityError::SeccompProgramTooLong {
            instructions: program.len(),
            max: libc::BPF_MAXINSNS as usize,
        });
    }
    Ok(SeccompFilter {
        program,
        flags,
        newer_than_profile,
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

    /// The highest syscall number the profile names for `arch` (as the kernel sees it: x32
    /// numbers with bit 30 set). Syscalls of that ABI numbered above it fail with ENOSYS.
    /// `None`: no such bound, because the default action does not deny, or the profile names
    /// nothing this libseccomp knows for that ABI, or the ABI is not in the filter.
    pub fn newer_than_profile_above(&self, arch: Arch) -> Option<u32> {
        let arch = match to_scmp_arch(arch) {
            ScmpArch::Native => ScmpArch::native(),
            other => other,
        };
        self.newer_than_profile
            .iter()
            .find(|bound| bound.arch == arch)
            .map(|bound| bound.highest)
    }

    /// Load into the kernel for the calling thread (all threads with the TSYNC flag). If
    /// the filter uses SCMP_ACT_NOTIFY, returns the notify listener fd (close-on-exec).
    ///
    /// The kernel accepts the filter only with no_new_privs set or CAP_SYS_ADMIN held.
    pub fn load(self) -> Result<Option<OwnedFd>, SecurityError> {
        let mut flags = self.flags;
        if self.uses_notify {
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            // TSYNC reports a thread it could not synchronise by its id, which would be
            // ambiguous with the listener fd; TSYNC_ESRCH makes that an ESRCH error.
            if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
                flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
            }
        } else {
            // The kernel takes WAIT_KILLABLE_RECV only with a listener; without one it
            // changes nothing.
            flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        }
        let ret = set_mode_filter(&self.program, flags)
            .map_err(|errno| SecurityError::SeccompLoad { errno })?;
        if self.uses_notify {
            // SAFETY: with NEW_LISTENER the kernel returns a new listener fd (close-on-exec)
            // that nothing else refers to.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret) }));
        }
        if ret != 0 {
            // TSYNC without a listener: `ret` is a thread that kept its old filters.
            return Err(SecurityError::SeccompLoad {
                errno: Errno::ESRCH,
            });
        }
        Ok(None)
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, program): the kernel's return value, which is
/// the listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER.
fn set_mode_filter(program: &[libc::sock_filter], flags: libc::c_ulong) -> Result<i32, Errno> {
    let len = libc::c_ushort::try_from(program.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `len` instructions that outlive the call; the kernel only
    // reads them (it copies the program) and keeps no pointer to our memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    Errno::result(ret).map(|fd| fd as i32)
}

/// Whether a default action refuses the syscalls the profile does not name, so that the
/// newer ones should get ENOSYS instead (see the module documentation).
fn denies(default_action: ScmpAction) -> bool {
    matches!(
        default_action,
        ScmpAction::Errno(_) | ScmpAction::KillThread | ScmpAction::KillProcess | ScmpAction::Trap
    )
}

/// The bits x32 sets in its syscall numbers (`__X32_SYSCALL_BIT`); its syscalls otherwise
/// arrive as x86_64's (`AUDIT_ARCH_X86_64`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `AUDIT_ARCH_*` (linux/audit.h), the architecture a filter sees in `seccomp_data.arch`,
/// for the architectures a filter on a little-endian host can hold. x32 has no value of its
/// own: it shares x86_64's.
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    const ARCH_64BIT: u32 = 0x8000_0000;
    const ARCH_LE: u32 = 0x4000_0000;
    const MIPS64_N32: u32 = 0x2000_0000;
    // ELF machine numbers (linux/elf-em.h).
    const EM_386: u32 = 3;
    const EM_MIPS: u32 = 8;
    const EM_PPC64: u32 = 21;
    const EM_ARM: u32 = 40;
    const EM_X86_64: u32 = 62;
    const EM_AARCH64: u32 = 183;
    const EM_RISCV: u32 = 243;
    const EM_LOONGARCH: u32 = 258;
    Some(match arch {
        ScmpArch::X86 => EM_386 | ARCH_LE,
        ScmpArch::X8664 | ScmpArch::X32 => EM_X86_64 | ARCH_64BIT | ARCH_LE,
        ScmpArch::Arm => EM_ARM | ARCH_LE,
        ScmpArch::Aarch64 => EM_AARCH64 | ARCH_64BIT | ARCH_LE,
        ScmpArch::Mipsel => EM_MIPS | ARCH_LE,
        ScmpArch::Mipsel64 => EM_MIPS | ARCH_64BIT | ARCH_LE,
        ScmpArch::Mipsel64N32 => EM_MIPS | ARCH_64BIT | ARCH_LE | MIPS64_N32,
        ScmpArch::Ppc64Le => EM_PPC64 | ARCH_64BIT | ARCH_LE,
        ScmpArch::Riscv64 => EM_RISCV | ARCH_64BIT | ARCH_LE,
        ScmpArch::Loongarch64 => EM_LOONGARCH | ARCH_64BIT | ARCH_LE,
        _ => return None,
    })
}

/// One ABI's bound: its syscalls numbered above `highest` are newer than the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AbiBound {
    arch: ScmpArch,
    audit_arch: u32,
    /// The highest number among the profile's syscalls for this ABI (for x32, with
    /// `X32_SYSCALL_BIT` set, as the kernel sees it).
    highest: u32,
}

/// The bound of each ABI in the filter that the profile names at least one syscall for.
fn newer_syscall_bounds(s: &LinuxSeccomp) -> Vec<AbiBound> {
    let native = ScmpArch::native();
    let mut arches = vec![native];
    for arch in s.architectures().iter().flatten() {
        let arch = match to_scmp_arch(*arch) {
            ScmpArch::Native => native,
            other => other,
        };
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    let names: Vec<&str> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|rule| rule.names())
        .map(String::as_str)
        .collect();
    arches
        .into_iter()
        .filter_map(|arch| {
            let audit_arch = audit_arch(arch)?;
            // Negative numbers are libseccomp's stand-ins for syscalls this ABI lacks.
            let highest = names
                .iter()
                .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch).ok())
                .filter_map(|syscall| u32::try_from(i32::from(syscall)).ok())
                .max()?;
            Some(AbiBound {
                arch,
                audit_arch,
                highest,
            })
        })
        .collect()
}

/// Offsets into `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

fn statement(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | code | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// The cBPF that answers syscalls above each ABI's bound with ERRNO(ENOSYS) and lets the
/// rest on into the program that follows it (with the accumulator reset, as at the start of
/// a program). Empty without bounds.
///
/// Layout: one block per `AUDIT_ARCH` value (load the arch once, then per block: arch equal?
/// load the number, compare), then `ja reset`, `ret ENOSYS`, `reset: ld #0`. For x86_64 the
/// block first tests the x32 bit and compares with the x32 bound or the x86_64 bound; the
/// half without a bound goes straight on to the filter.
fn enosys_prologue(bounds: &[AbiBound]) -> Result<Vec<libc::sock_filter>, SecurityError> {
    if bounds.is_empty() {
        return Ok(Vec::new());
    }
    /// The bounds of one value of `seccomp_data.arch`: x86_64 and x32 share one.
    struct ArchBlock {
        audit_arch: u32,
        highest: Option<u32>,
        highest_x32: Option<u32>,
    }
    impl ArchBlock {
        /// With x32 sharing the arch: test its bit, then one comparison for each half.
        fn splits_x32(&self) -> bool {
            audit_arch(ScmpArch::X8664) == Some(self.audit_arch)
        }
        fn len(&self) -> usize {
            if self.splits_x32() {
                5
            } else {
                3
            }
        }
    }
    let mut blocks: Vec<ArchBlock> = Vec::new();
    for bound in bounds {
        let index = match blocks.iter().position(|b| b.audit_arch == bound.audit_arch) {
            Some(i) => i,
            None => {
                blocks.push(ArchBlock {
                    audit_arch: bound.audit_arch,
                    highest: None,
                    highest_x32: None,
                });
                blocks.len() - 1
            }
        };
        if bound.arch == ScmpArch::X32 {
            blocks[index].highest_x32 = Some(bound.highest);
        } else {
            blocks[index].highest = Some(bound.highest);
        }
    }
    let blocks_end = 1 + blocks.iter().map(ArchBlock::len).sum::<usize>();
    let enosys = blocks_end + 1;
    let reset = blocks_end + 2;
    // Forward distance from the instruction at `pc` to `target`. Conditional jumps reach 255
    // instructions; the prologue of the at most eleven ABIs a filter holds is far shorter.
    let skip = |pc: usize, target: usize| -> Result<u8, SecurityError> {
        u8::try_from(target - pc - 1).map_err(|_| SecurityError::SeccompProgramTooLong {
            instructions: target,
            max: usize::from(u8::MAX),
        })
    };
    let compare = |pc: usize, highest: Option<u32>| -> Result<libc::sock_filter, SecurityError> {
        Ok(match highest {
            Some(highest) => jump(libc::BPF_JGT, highest, skip(pc, enosys)?, skip(pc, reset)?),
            None => statement(libc::BPF_JMP | libc::BPF_JA, (reset - pc - 1) as u32),
        })
    };

    let mut program = vec![statement(
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        DATA_ARCH,
    )];
    for block in &blocks {
        let pc = program.len();
        // Not this architecture: on to the next block, with the arch still in A.
        let next = skip(pc, pc + block.len())?;
        program.push(jump(libc::BPF_JEQ, block.audit_arch, 0, next));
        program.push(statement(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            DATA_NR,
        ));
        if block.splits_x32() {
            program.push(jump(libc::BPF_JSET, X32_SYSCALL_BIT, 1, 0));
            program.push(compare(pc + 3, block.highest)?);
            program.push(compare(pc + 4, block.highest_x32)?);
        } else {
            program.push(compare(pc + 2, block.highest)?);
        }
    }
    debug_assert_eq!(program.len(), blocks_end);
    program.push(statement(libc::BPF_JMP | libc::BPF_JA, 1));
    program.push(statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    program.push(statement(libc::BPF_LD | libc::BPF_IMM, 0));
    Ok(program)
}

/// The program libseccomp generated for `context`, as it would load it.
fn export_program(context: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SecurityError> {
    let export_error =
        |step: &'static str| move |errno| SecurityError::SeccompExport { step, errno };
    let memfd = nix::sys::memfd::memfd_create(
        c"husk-seccomp-bpf",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(export_error("memfd_create"))?;
    context
        .export_bpf(&memfd)
        .map_err(|source| SecurityError::SeccompExportBpf { source })?;
    let mut file = std::fs::File::from(memfd);
    let io_errno = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    file.rewind()
        .map_err(|e| export_error("rewind")(io_errno(e)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| export_error("read")(io_errno(e)))?;
    const INSTRUCTION: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.len() % INSTRUCTION != 0 {
        return Err(export_error("read")(Errno::EINVAL));
    }
    Ok(bytes
        .chunks_exact(INSTRUCTION)
        .map(|raw| libc::sock_filter {
            code: u16::from_ne_bytes([raw[0], raw[1]]),
            jt: raw[2],
            jf: raw[3],
            k: u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
        })
        .collect())
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

/// Sets the libseccomp attribute for `flag` (which checks that this libseccomp has it) and
/// returns the SECCOMP_FILTER_FLAG_* bit to load the filter with.
fn set_flag(
    context: &mut ScmpFilterContext,
    flag: LinuxSeccompFilterFlag,
) -> Result<libc::c_ulong, SecurityError> {
    let name = flag.to_string();
    let (result, bit) = match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
            (context.set_ctl_log(true), libc::SECCOMP_FILTER_FLAG_LOG)
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
            (context.set_ctl_tsync(true), libc::SECCOMP_FILTER_FLAG_TSYNC)
        }
        // libseccomp's "speculative store bypass" attribute maps to SPEC_ALLOW.
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => (
            context.set_ctl_ssb(true),
            libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        ),
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
            (
                context.set_ctl_waitkill(true),
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
            )
        }
    };
    result
        .map(|_| bit)
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
    fn flags_set_the_kernel_load_flags() {
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": [
                "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                "SECCOMP_FILTER_FLAG_TSYNC"
            ]
        })))
        .unwrap();
        assert_eq!(
            filter.flags,
            libc::SECCOMP_FILTER_FLAG_LOG
                | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                | libc::SECCOMP_FILTER_FLAG_TSYNC
        );
        let plain = build_filter(&spec(json!({ "defaultAction": "SCMP_ACT_ALLOW" }))).unwrap();
        assert_eq!(plain.flags, 0);
    }

    /// TSYNC and TSYNC with a listener (which needs TSYNC_ESRCH) both load.
    #[test]
    fn tsync_loads_with_and_without_a_listener() {
        require_root();
        for action in ["SCMP_ACT_ERRNO", "SCMP_ACT_NOTIFY"] {
            let filter = build_filter(&spec(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
                "syscalls": [{ "names": ["getcwd"], "action": action }]
            })))
            .unwrap();
            let notify = filter.uses_notify();
            in_child(|| match load(filter)? {
                Some(_) if notify => Ok(()),
                None if !notify => expect_errno("getcwd", getcwd(), libc::EPERM),
                other => Err(format!("listener {other:?} with notify {notify}")),
            })
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        }
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
            let flags = result.unwrap().flags;
            assert_ne!(flags & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, 0);
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

    /// A syscall through the i386 ABI (`int 0x80` works from a 64-bit process): the raw
    /// return value, a negative errno on failure. Only for calls that take no pointers or
    /// that the filter stops before they run.
    #[cfg(target_arch = "x86_64")]
    fn i386_syscall(nr: u32) -> i32 {
        let mut eax = nr;
        // SAFETY: `int 0x80` clobbers only eax (the result) and, on return to 64-bit code,
        // r8-r11; the registers carrying the arguments are left as they are.
        unsafe {
            std::arch::asm!(
                "int 0x80",
                inout("eax") eax,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
            );
        }
        eax as i32
    }

    #[cfg(target_arch = "x86_64")]
    fn expect_i386_errno(what: &str, nr: u32, want: i32) -> Result<(), String> {
        match i386_syscall(nr) {
            ret if ret == -want => Ok(()),
            ret => Err(format!("i386 {what} ({nr}): {ret}, want -{want}")),
        }
    }

    /// x32's getcwd: x86_64's number with the x32 bit.
    const X32_GETCWD: i64 = X32_SYSCALL_BIT as i64 | libc::SYS_getcwd;
    /// i386's getcwd.
    const I386_GETCWD: u32 = 183;

    #[test]
    fn architectures_are_added() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9 }]
        })))
        .unwrap();
        in_child(|| {
            load(filter)?;
            expect_errno("getcwd", getcwd(), 9)?;
            // Without its architecture in the filter, each of these would be killed.
            #[cfg(target_arch = "x86_64")]
            {
                expect_i386_errno("getcwd", I386_GETCWD, 9)?;
                expect_errno("x32 getcwd", syscall3(X32_GETCWD, 0, 0, 0), 9)?;
            }
            Ok(())
        })
        .unwrap();
    }

    /// The highest x86_64 number among `names`.
    fn highest_native(names: &[&str]) -> i64 {
        names
            .iter()
            .map(|n| i64::from(i32::from(ScmpSyscall::from_name(n).unwrap())))
            .max()
            .unwrap()
    }

    /// A syscall numbered above every syscall the profile names gets ENOSYS, one below that
    /// the profile does not name gets the default errno, on each ABI in the filter.
    #[test]
    fn syscalls_newer_than_the_profile_fail_with_enosys() {
        require_root();
        let highest = highest_native(&CHILD_NEEDS);
        assert!(
            libc::SYS_getcwd < highest,
            "getcwd must be older than the list"
        );
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 99,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{ "names": CHILD_NEEDS, "action": "SCMP_ACT_ALLOW" }]
        })))
        .unwrap();
        assert_eq!(
            filter
                .newer_than_profile
                .iter()
                .map(|b| b.arch)
                .collect::<Vec<_>>(),
            [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32]
        );
        in_child(|| {
            load(filter)?;
            expect_errno("getcwd (older, not named)", getcwd(), 99)?;
            // A real syscall (epoll_wait after exit_group on x86_64), newer than the list.
            expect_errno(
                "the syscall after the highest named",
                syscall3(highest + 1, 0, 0, 0),
                libc::ENOSYS,
            )?;
            expect_errno("syscall(1000)", syscall3(1000, 0, 0, 0), libc::ENOSYS)?;
            // Just below x32's numbers: still x86_64's, and above its bound.
            expect_errno(
                "syscall(0x3fffffff)",
                syscall3(0x3fff_ffff, 0, 0, 0),
                libc::ENOSYS,
            )?;
            #[cfg(target_arch = "x86_64")]
            {
                expect_i386_errno("getcwd", I386_GETCWD, 99)?;
                expect_i386_errno("1000", 1000, libc::ENOSYS)?;
                expect_errno("x32 getcwd", syscall3(X32_GETCWD, 0, 0, 0), 99)?;
                let x32_1000 = i64::from(X32_SYSCALL_BIT) | 1000;
                expect_errno("x32 1000", syscall3(x32_1000, 0, 0, 0), libc::ENOSYS)?;
            }
            Ok(())
        })
        .unwrap();
    }

    /// Without `architectures`, the native ABI is bounded (runc bounds none then).
    #[test]
    fn the_native_abi_is_bounded_without_architectures() {
        require_root();
        let filter = build_filter(&spec(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{ "names": CHILD_NEEDS, "action": "SCMP_ACT_ALLOW" }]
        })))
        .unwrap();
        in_child(|| {
            load(filter)?;
            expect_errno("getcwd", getcwd(), libc::EPERM)?;
            expect_errno("syscall(1000)", syscall3(1000, 0, 0, 0), libc::ENOSYS)
        })
        .unwrap();
    }

    /// Under a killing default, a newer syscall fails with ENOSYS and the process lives on;
    /// an older one the profile does not name still kills.
    #[test]
    fn a_killing_default_answers_newer_syscalls_with_enosys() {
        require_root();
        for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
            let filter = build_filter(&spec(json!({
                "defaultAction": action,
                "syscalls": [{ "names": CHILD_NEEDS, "action": "SCMP_ACT_ALLOW" }]
            })))
            .unwrap();
            let outcome = fork_child(|report| {
                load(filter)?;
                expect_errno("syscall(1000)", syscall3(1000, 0, 0, 0), libc::ENOSYS)?;
                nix::unistd::write(report, b"survived 1000;").map_err(|e| e.to_string())?;
                let result = getcwd();
                Err(format!("getcwd survived {action}: {result:?}"))
            });
            assert!(
                matches!(outcome.status, WaitStatus::Signaled(_, Signal::SIGSYS, _))
                    && outcome.output == "survived 1000;",
                "{action}: {:?} {}",
                outcome.status,
                outcome.output
            );
        }
    }

    /// Defaults that let unknown syscalls through, or leave them to a tracer, get no bound.
    #[test]
    fn only_denying_defaults_get_the_enosys_bound() {
        for (action, bounded) in [
            ("SCMP_ACT_ALLOW", false),
            ("SCMP_ACT_LOG", false),
            ("SCMP_ACT_TRACE", false),
            ("SCMP_ACT_ERRNO", true),
            ("SCMP_ACT_TRAP", true),
            ("SCMP_ACT_KILL_THREAD", true),
            ("SCMP_ACT_KILL_PROCESS", true),
        ] {
            let filter = build_filter(&spec(json!({
                "defaultAction": action,
                "syscalls": [{ "names": ["getcwd"], "action": "SCMP_ACT_KILL" }]
            })))
            .unwrap();
            assert_eq!(
                !filter.newer_than_profile.is_empty(),
                bounded,
                "{action}: {filter:?}"
            );
        }
        // A profile naming nothing has no bound either: every syscall gets the default.
        let empty = build_filter(&spec(json!({ "defaultAction": "SCMP_ACT_ERRNO" }))).unwrap();
        assert!(empty.newer_than_profile.is_empty(), "{empty:?}");
    }

    #[test]
    fn notify_on_the_runtimes_own_syscalls_is_refused() {
        for name in NOTIFY_REFUSED_SYSCALLS {
            let s = spec(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "/run/agent.sock",
                "syscalls": [
                    { "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" },
                    { "names": ["getcwd", name], "action": "SCMP_ACT_NOTIFY" }
                ]
            }));
            let refusal = refuse_notify_deadlocks(&s).unwrap_err();
            assert_eq!(refusal.field, "linux.seccomp.syscalls[1]", "{refusal:?}");
            assert!(refusal.reason.contains(name), "{refusal:?}");
            let err = build_filter(&s).unwrap_err();
            assert!(
                matches!(&err, SecurityError::SeccompNotifyRefused { field, .. }
                    if field == "linux.seccomp.syscalls[1]"),
                "{err:?}"
            );
            // The same syscall with another action is fine.
            let other = spec(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": [name], "action": "SCMP_ACT_ERRNO" }]
            }));
            refuse_notify_deadlocks(&other).unwrap();
        }
        let default_notify = spec(json!({
            "defaultAction": "SCMP_ACT_NOTIFY",
            "listenerPath": "/run/agent.sock"
        }));
        let refusal = refuse_notify_deadlocks(&default_notify).unwrap_err();
        assert_eq!(refusal.field, "linux.seccomp.defaultAction");
        let ordinary = spec(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
        }));
        refuse_notify_deadlocks(&ordinary).unwrap();
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
