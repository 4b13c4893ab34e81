//! Stage 2: the container's PID 1, from namespaces to execve.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use crate::hooks::run_container_hooks;
use crate::procfs::Procfs;
use crate::proto::{Bootstrap, Channel, InitFailure, NamespaceKind, ProcessPlan, ToInit, ToParent};
use crate::{failure, rootfs, security, sys, Step};

pub(crate) fn run(
    channel: &Channel,
    boot: &Bootstrap,
    exec_fifo: Option<OwnedFd>,
    procfs: &Procfs,
    bind_sources: &rootfs::BindSources,
) -> Result<Infallible, InitFailure> {
    // Modes of created devices and directories must be exactly what the spec says.
    let inherited_umask = nix::sys::stat::umask(Mode::empty());
    nix::unistd::setsid().step(|| "setsid".into())?;
    if let Some(adj) = boot.process.oom_score_adj {
        procfs
            .write_self("oom_score_adj".as_ref(), adj.to_string().as_bytes())
            .step(|| format!("set oom_score_adj to {adj}"))?;
    }
    let state = if boot.exec {
        if !boot
            .namespaces
            .iter()
            .any(|ns| ns.kind == NamespaceKind::Mount)
        {
            // The container shares the caller's mount namespace and is only chrooted.
            nix::unistd::chroot(&boot.rootfs)
                .step(|| format!("chroot {}", boot.rootfs.display()))?;
        }
        String::new()
    } else {
        set_up_container(channel, boot, procfs, bind_sources)?
    };
    if boot.terminal {
        set_up_terminal(channel, boot)?;
    }

    let mut process = boot.process.clone();
    if let Some(value) = process.io_priority {
        sys::set_io_priority(value).step(|| "set io priority".into())?;
    }
    if let Some(plan) = &process.scheduler {
        sys::set_scheduler(plan).step(|| "set scheduler".into())?;
    }
    if !process.env.iter().any(|kv| kv.starts_with("HOME=")) {
        process.env.push(format!("HOME={}", home_dir(process.uid)));
    }
    let process = &process;
    for r in &process.rlimits {
        sys::set_rlimit(r.resource, r.soft, r.hard)
            .step(|| format!("set rlimit {}", r.resource))?;
    }
    if boot.new_session_keyring {
        // Some kernels or seccomp setups refuse keyrings; the container just shares ours then.
        let _ = sys::join_new_session_keyring();
    }
    let caps = process
        .capabilities
        .as_ref()
        .map(security::parse_capabilities)
        .transpose()
        .map_err(|e| security_failure("parse capabilities", &e))?
        .map(|mut caps| {
            let dropped = caps.drop_ungrantable();
            if !dropped.is_empty() {
                eprintln!(
                    "husk: warning: capabilities outside the runtime's own bounding set are not granted: {}",
                    dropped.join(", ")
                );
            }
            caps
        });
    let filter = boot.seccomp.clone();
    // Nothing of the runtime's may reach the container: only stdio and the preserved fds.
    // Marked before any filter is in force, since many profiles do not allow close_range;
    // every fd opened from here on is close-on-exec from the start.
    sys::cloexec_from(3 + boot.preserve_fds, || {
        procfs.open_self_dir("fd".as_ref())
    })
    .step(|| "mark descriptors close-on-exec".into())?;
    // Without no_new_privs the kernel takes a filter only from a task holding CAP_SYS_ADMIN,
    // so it goes in before the capabilities are dropped; with it, as late as possible: right
    // before the startContainer hooks, which run under it as in runc (or the exec).
    let mut late_filter = None;
    if let Some(f) = filter {
        if process.no_new_privileges {
            late_filter = Some(f);
        } else {
            load_filter(channel, f)?;
        }
    }
    if let Some(caps) = &caps {
        security::prepare_before_user_change(caps)
            .map_err(|e| security_failure("prepare capabilities", &e))?;
    }
    // Written while still root: /proc/self of a non-dumpable process belongs to root.
    apply_exec_labels(process, procfs)?;
    // The cwd is entered while still privileged, then again as the user (whose permissions
    // then apply; where the user may not search it, the first chdir stands, as in runc).
    nix::unistd::chdir(&process.cwd).step(|| format!("chdir to cwd {}", process.cwd.display()))?;
    change_user(process)?;
    if let Some(caps) = &caps {
        security::apply_after_user_change(caps)
            .map_err(|e| security_failure("apply capabilities", &e))?;
    }
    // Without process.user.umask the caller's umask stays, as the spec says.
    let umask = process
        .umask
        .map(|u| Mode::from_bits_truncate(u as _))
        .unwrap_or(inherited_umask);
    nix::sys::stat::umask(umask);
    match nix::unistd::chdir(&process.cwd) {
        Ok(()) | Err(nix::errno::Errno::EACCES) => {}
        Err(e) => return Err(e).step(|| format!("chdir to cwd {}", process.cwd.display())),
    }
    // A cwd reached through a descriptor that points outside the root (CVE-2024-21626) shows
    // up as an unreachable path: refuse it.
    let cwd = nix::unistd::getcwd().step(|| "getcwd".into())?;
    if !cwd.starts_with("/") {
        return Err(failure(
            format!("chdir to cwd {}", process.cwd.display()),
            "it resolves outside the container's root",
        ));
    }
    let executable = find_executable(process)?;
    if process.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().step(|| "set no_new_privs".into())?;
    }
    // A filter with SCMP_ACT_NOTIFY must be in place while the parent can still pass its
    // listener fd on to the seccomp agent.
    if let Some(f) = late_filter.take_if(|f| f.uses_notify()) {
        load_filter(channel, f)?;
    }

    channel
        .send(&ToParent::Ready, &[])
        .step(|| "report ready".into())?;
    let Some(fifo) = exec_fifo else {
        if let Some(f) = late_filter {
            load_filter(channel, f)?;
        }
        return exec_process(&executable, process);
    };
    wait_for_start(&fifo)?;
    let state = with_status(&state, "created");
    let failure = match start_process(channel, late_filter, boot, &state, &executable, process) {
        Err(f) => f,
        Ok(never) => match never {},
    };
    // `husk start` waits for the fifo to close: closed by execve it is a success; with our
    // words left in it, a failure it reports.
    let _ = nix::unistd::write(&fifo, failure.to_string().as_bytes());
    Err(failure)
}

/// The hooks' state JSON with another status (startContainer hooks run in a `created` container).
fn with_status(state: &str, status: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(state) {
        Ok(mut v) => {
            v["status"] = status.into();
            v.to_string()
        }
        Err(_) => state.to_string(),
    }
}

/// What `husk start` releases: the late seccomp filter, then the startContainer hooks under
/// it (runc runs them with the container's filter in force), then the exec. Returns only on
/// failure.
fn start_process(
    channel: &Channel,
    late_filter: Option<security::SeccompFilter>,
    boot: &Bootstrap,
    state: &str,
    executable: &Path,
    process: &ProcessPlan,
) -> Result<Infallible, InitFailure> {
    if let Some(f) = late_filter {
        load_filter(channel, f)?;
    }
    // A startContainer hook without env of its own gets the container process's, as in runc.
    let hooks: Vec<_> = boot
        .start_container_hooks
        .iter()
        .cloned()
        .map(|mut hook| {
            if hook.env.is_empty() {
                hook.env = process.env.clone();
            }
            hook
        })
        .collect();
    run_container_hooks(&hooks, state).map_err(|e| hook_failure("startContainer", &e))?;
    exec_process(executable, process)
}

/// Execs the process. Returns only on failure.
fn exec_process(executable: &Path, process: &ProcessPlan) -> Result<Infallible, InitFailure> {
    sys::reset_signal_state();
    if let Some(cpus) = &process.cpu_affinity_final {
        sys::set_cpu_affinity(cpus).step(|| "set final exec CPU affinity".into())?;
    }
    if let Some(persona) = process.personality {
        sys::set_personality(persona).step(|| format!("set personality {persona:#x}"))?;
    }
    let err = sys::execve(executable, &process.args, &process.env);
    Err(InitFailure {
        step: format!("exec {}", executable.display()),
        errno: err.raw_os_error(),
        detail: None,
    })
}

/// Everything a new container needs before its process: uts, loopback, the root filesystem and
/// the runtime and createContainer hooks. Returns the state JSON given to hooks.
fn set_up_container(
    channel: &Channel,
    boot: &Bootstrap,
    procfs: &Procfs,
    bind_sources: &rootfs::BindSources,
) -> Result<String, InitFailure> {
    let has = |kind| boot.namespaces.iter().any(|ns| ns.kind == kind);
    let new = |kind| {
        boot.namespaces
            .iter()
            .any(|ns| ns.kind == kind && ns.path.is_none())
    };
    if let Some(name) = &boot.hostname {
        nix::unistd::sethostname(name).step(|| format!("set hostname {name}"))?;
    }
    if let Some(name) = &boot.domainname {
        sys::set_domainname(name).step(|| format!("set domainname {name}"))?;
    }
    if new(NamespaceKind::Network) {
        sys::loopback_up().step(|| "bring up loopback".into())?;
    }
    let in_mount_ns = has(NamespaceKind::Mount);
    let prepared = if in_mount_ns {
        Some(rootfs::prepare(boot, procfs, bind_sources)?)
    } else {
        None
    };

    let needs_state = boot.has_runtime_hooks
        || !boot.create_container_hooks.is_empty()
        || !boot.start_container_hooks.is_empty();
    let mut state = String::new();
    if needs_state {
        channel
            .send(&ToParent::RunRuntimeHooks, &[])
            .step(|| "request runtime hooks".into())?;
        match channel
            .recv::<ToInit>()
            .step(|| "wait for runtime hooks".into())?
            .0
        {
            ToInit::HooksDone { state: s } => state = s,
            other => return Err(failure("wait for runtime hooks", format!("got {other:?}"))),
        }
    }
    if !boot.create_container_hooks.is_empty() {
        // As in runc, createContainer hooks start in the container's root directory.
        match &prepared {
            Some(prepared) => prepared.chdir_to_root(),
            None => nix::unistd::chdir(&boot.rootfs),
        }
        .step(|| format!("chdir {}", boot.rootfs.display()))?;
    }
    // Without an env of their own they get the container process's, as in runc.
    let hooks: Vec<_> = boot
        .create_container_hooks
        .iter()
        .cloned()
        .map(|mut hook| {
            if hook.env.is_empty() {
                hook.env = boot.process.env.clone();
            }
            hook
        })
        .collect();
    run_container_hooks(&hooks, &state).map_err(|e| hook_failure("createContainer", &e))?;

    if let Some(prepared) = &prepared {
        rootfs::enter(boot, prepared)?;
        rootfs::apply_sysctl(procfs, &boot.sysctl)?;
        rootfs::finish(boot)?;
    } else {
        let root = rootfs::open_validated_rootfs(boot)?;
        nix::unistd::fchdir(root.as_raw_fd())
            .and_then(|()| nix::unistd::chroot("."))
            .step(|| format!("chroot {}", boot.rootfs.display()))?;
        rootfs::apply_sysctl(procfs, &boot.sysctl)?;
    }
    Ok(state)
}

/// A pty from the container's devpts: the slave becomes stdio and controlling terminal (and
/// /dev/console for a new container), the master goes to the parent.
fn set_up_terminal(channel: &Channel, boot: &Bootstrap) -> Result<(), InitFailure> {
    let (master, slave, number) =
        sys::open_pty(Path::new("/dev/ptmx")).step(|| "open /dev/ptmx".into())?;
    let slave_path = format!("/dev/pts/{number}");
    if let Some((rows, cols)) = boot.console_size {
        sys::set_window_size(slave.as_fd(), rows, cols).step(|| "set console size".into())?;
    }
    channel
        .send(
            &ToParent::Console(slave_path.clone()),
            &[master.as_raw_fd()],
        )
        .step(|| "send console".into())?;
    drop(master);
    if !boot.exec {
        rootfs::mount_console(Path::new(&slave_path))?;
    }
    nix::unistd::fchown(
        slave.as_raw_fd(),
        Some(Uid::from_raw(boot.process.uid)),
        None,
    )
    .step(|| format!("chown {slave_path}"))?;
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target)
            .step(|| format!("dup {slave_path} to {target}"))?;
    }
    sys::set_controlling_tty(slave.as_fd())
        .step(|| format!("make {slave_path} the controlling tty"))?;
    Ok(())
}

/// Asks the LSMs to switch the process's profile or label at the coming execve.
fn apply_exec_labels(process: &ProcessPlan, procfs: &Procfs) -> Result<(), InitFailure> {
    if let Some(profile) = &process.apparmor_profile {
        let attr = if procfs.self_exists("attr/apparmor/exec".as_ref()) {
            "attr/apparmor/exec"
        } else {
            "attr/exec"
        };
        procfs
            .write_self(attr.as_ref(), format!("exec {profile}").as_bytes())
            .step(|| format!("set AppArmor profile {profile}"))?;
    }
    if let Some(label) = &process.selinux_label {
        procfs
            .write_self("attr/exec".as_ref(), label.as_bytes())
            .step(|| format!("set SELinux label {label}"))?;
    }
    Ok(())
}

/// Loads a seccomp filter. A filter with SCMP_ACT_NOTIFY is loaded before `Ready` only, and
/// its listener goes to the parent at once: until the agent has it, a notified syscall of
/// ours could never be answered (see `security::seccomp::NOTIFY_REFUSED_SYSCALLS`).
fn load_filter(channel: &Channel, f: security::SeccompFilter) -> Result<(), InitFailure> {
    let listener = f
        .load()
        .map_err(|e| security_failure("load seccomp filter", &e))?;
    if let Some(fd) = listener {
        channel
            .send(&ToParent::SeccompNotify, &[fd.as_raw_fd()])
            .step(|| "send seccomp notify fd".into())?;
    }
    Ok(())
}

fn security_failure(step: &str, e: &security::SecurityError) -> InitFailure {
    e.failure(step)
}

fn hook_failure(kind: &str, e: &crate::hooks::HookError) -> InitFailure {
    InitFailure {
        step: format!("{kind} hook"),
        errno: e.errno(),
        detail: Some(e.to_string()),
    }
}

fn change_user(process: &ProcessPlan) -> Result<(), InitFailure> {
    let gids: Vec<Gid> = process
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is refused in a user namespace whose setgroups file says deny; then there is
    // nothing to drop and the spec cannot have asked for extra groups.
    match nix::unistd::setgroups(&gids) {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM) if gids.is_empty() => {}
        Err(e) => return Err(e).step(|| "setgroups".into()),
    }
    let gid = Gid::from_raw(process.gid);
    nix::unistd::setresgid(gid, gid, gid).step(|| format!("setgid {}", process.gid))?;
    let uid = Uid::from_raw(process.uid);
    nix::unistd::setresuid(uid, uid, uid).step(|| format!("setuid {}", process.uid))?;
    Ok(())
}

/// The most husk reads of a file from the image (/etc/passwd): real ones are a few KiB.
const MAX_IMAGE_FILE_BYTES: u64 = 4 << 20;

/// The home directory of `uid` in the container's /etc/passwd, or `/` (also when the file is
/// no regular file or too large: see [`read_image_file`]).
fn home_dir(uid: u32) -> String {
    let passwd = read_image_file(Path::new("/etc/passwd")).unwrap_or_default();
    String::from_utf8_lossy(&passwd)
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// Reads a file of the image (the current root is the container's): hostile input, which may
/// be a symlink (to /dev/zero, a host path through /proc), a FIFO that blocks, a device or
/// endless. Resolved inside the root without magic links, not following a final symlink,
/// opened non-blocking, required to be a regular file, and read up to
/// [`MAX_IMAGE_FILE_BYTES`]; anything else is an error.
fn read_image_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: open returned a new descriptor that we own.
    let root = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(root) };
    let fd = sys::open_in_root(
        root.as_fd(),
        path,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    )?;
    let file = std::fs::File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut data = Vec::new();
    file.take(MAX_IMAGE_FILE_BYTES + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_IMAGE_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} is larger than {MAX_IMAGE_FILE_BYTES} bytes",
                path.display()
            ),
        ));
    }
    Ok(data)
}

/// Resolves `args[0]` the way execvp would, with the container's PATH, so that a missing
/// binary fails `create` instead of the container after `start`.
fn find_executable(process: &ProcessPlan) -> Result<PathBuf, InitFailure> {
    let arg0 = process
        .args
        .first()
        .ok_or_else(|| failure("find executable", "process.args is empty"))?;
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if arg0.contains('/') {
        let path = PathBuf::from(arg0);
        return if is_exec(&path) {
            Ok(path)
        } else {
            Err(failure(
                format!("exec: {arg0:?}"),
                "no such file or directory, or not executable",
            ))
        };
    }
    let path_var = process
        .env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path_var
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0))
        .find(|p| is_exec(p))
        .ok_or_else(|| {
            failure(
                format!("exec: {arg0:?}"),
                "executable file not found in $PATH",
            )
        })
}

/// Blocks until `husk start` writes to the exec fifo. Meanwhile SIGHUP, SIGINT, SIGTERM and
/// SIGQUIT end the init, as they end runc's (a Go program, whose runtime exits on them): as a pid
/// namespace's init it would otherwise ignore every signal it has no handler for, and `kill` of a
/// created container would leave it created.
fn wait_for_start(fifo: &OwnedFd) -> Result<(), InitFailure> {
    set_created_signal_handlers(true)?;
    let mut byte = [0u8; 1];
    let waited = loop {
        match nix::unistd::read(fifo.as_raw_fd(), &mut byte) {
            Ok(_) => break Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(e).step(|| "wait on exec fifo".into()),
        }
    };
    set_created_signal_handlers(false)?;
    waited
}

/// The signals that end a created container's init.
const CREATED_EXIT_SIGNALS: [nix::sys::signal::Signal; 4] = [
    nix::sys::signal::Signal::SIGHUP,
    nix::sys::signal::Signal::SIGINT,
    nix::sys::signal::Signal::SIGTERM,
    nix::sys::signal::Signal::SIGQUIT,
];

extern "C" fn exit_on_signal(signal: libc::c_int) {
    // SAFETY: _exit(2) is async-signal-safe and touches no state of this process.
    unsafe { libc::_exit(128 + signal) };
}

/// Installs (`exit`) or removes the handlers of [`CREATED_EXIT_SIGNALS`].
fn set_created_signal_handlers(exit: bool) -> Result<(), InitFailure> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet};
    let handler = if exit {
        SigHandler::Handler(exit_on_signal)
    } else {
        SigHandler::SigDfl
    };
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    for signal in CREATED_EXIT_SIGNALS {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        unsafe { nix::sys::signal::sigaction(signal, &action) }
            .step(|| format!("set the action of {signal} while created"))?;
    }
    Ok(())
}
