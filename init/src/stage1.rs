//! Stage 1: namespaces. Runs single-threaded right after the re-exec.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sched::{setns, unshare, CloneFlags};

use crate::procfs::Procfs;
use crate::proto::{
    Bootstrap, Channel, InitFailure, NamespaceKind, ToInit, ToParent, PROTOCOL_VERSION,
};
use crate::rootfs::BindSources;
use crate::sys::{fork_as_sibling, Forked};
use crate::{failure, stage2, Step};

pub(crate) fn run(channel: &Channel) -> Result<Infallible, InitFailure> {
    // Until the container's process replaces it, nobody without CAP_SYS_PTRACE on the host
    // may reach this process's /proc files, its exe (the runtime binary) above all.
    nix::sys::prctl::set_dumpable(false).step(|| "make the init non-dumpable".into())?;
    let (msg, mut fds) = channel
        .recv::<ToInit>()
        .step(|| "receive bootstrap".into())?;
    let ToInit::Bootstrap(boot) = msg else {
        return Err(failure("receive bootstrap", "unexpected message"));
    };
    if boot.version != PROTOCOL_VERSION {
        return Err(failure(
            "receive bootstrap",
            format!(
                "protocol {} from the parent, {PROTOCOL_VERSION} here",
                boot.version
            ),
        ));
    }
    // After the bootstrap is read: a peer that closes with unread data makes the parent's
    // read fail (ECONNRESET) instead of reading why.
    crate::single_threaded()?;
    let exec_fifo = fds.pop();
    if exec_fifo.is_none() && !boot.exec {
        return Err(failure("receive bootstrap", "no exec fifo"));
    }
    if let Some(cpus) = &boot.process.cpu_affinity_initial {
        crate::sys::set_cpu_affinity(cpus).step(|| "set initial exec CPU affinity".into())?;
    }
    // Before any of the container's namespaces: every write into /proc goes through it.
    let procfs = Procfs::open().step(|| "open a private procfs".into())?;
    let creates_user_namespace = boot
        .namespaces
        .iter()
        .any(|ns| ns.kind == NamespaceKind::User && ns.path.is_none());
    let bind_sources = if creates_user_namespace && !boot.exec {
        BindSources::take(&boot)?
    } else {
        BindSources::default()
    };
    enter_namespaces(channel, &boot, &procfs)?;

    // A new pid namespace takes effect for children only, and so does a joined one; the time
    // namespace likewise. Fork only then: otherwise this process goes on as the container.
    let needs_fork = boot
        .namespaces
        .iter()
        .any(|ns| matches!(ns.kind, NamespaceKind::Pid | NamespaceKind::Time));
    if needs_fork {
        // Stage 1 reports the child's pid and stage 2 sends everything else, two processes on
        // one socket: stage 2 says nothing until stage 1 has sent the pid (or died), so the
        // parent always has the pid before `Ready` (a delayed clone return showed the race).
        let (pid_sent_read, pid_sent_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).step(|| "create a pipe".into())?;
        match fork_as_sibling().step(|| "fork container init".into())? {
            Forked::Parent(pid) => {
                drop(pid_sent_read);
                channel
                    .send(&ToParent::Stage2Pid(pid), &[])
                    .step(|| "report container pid".into())?;
                // Exiting closes the pipe; the byte tells stage 2 the report went out.
                let _ = nix::unistd::write(&pid_sent_write, b"1");
                std::process::exit(0);
            }
            Forked::Child => {
                drop(pid_sent_write);
                wait_for_pid_report(pid_sent_read)?;
            }
        }
    } else {
        channel
            .send(&ToParent::Stage2Pid(std::process::id() as i32), &[])
            .step(|| "report container pid".into())?;
    }
    stage2::run(channel, &boot, exec_fifo, &procfs, &bind_sources)
}

/// Blocks until stage 1 has sent the container's pid to the parent: one byte, or end of file
/// without one when stage 1 died before sending it.
fn wait_for_pid_report(pid_sent: OwnedFd) -> Result<(), InitFailure> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(pid_sent.as_raw_fd(), &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(failure(
                    "wait for stage 1",
                    "stage 1 exited before reporting the container's pid",
                ))
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).step(|| "wait for stage 1".into()),
        }
    }
}

fn enter_namespaces(
    channel: &Channel,
    boot: &Bootstrap,
    procfs: &Procfs,
) -> Result<(), InitFailure> {
    // Open every namespace to join before entering any: once in another mount or user
    // namespace the paths may no longer resolve or be permitted.
    let mut to_join: Vec<(NamespaceKind, OwnedFd)> = Vec::new();
    for ns in &boot.namespaces {
        if let Some(path) = &ns.path {
            let file = File::open(path)
                .step(|| format!("open {} namespace {}", ns.kind.proc_name(), path.display()))?;
            to_join.push((ns.kind, file.into()));
        }
    }
    // With a new user namespace, the namespaces to join are joined before it is made, as runc
    // does: they belong to our user namespace (a network namespace made by the caller, say), where
    // we are privileged; from inside the new one, setns would need privilege over their owner.
    let new_user_ns = boot
        .namespaces
        .iter()
        .any(|ns| ns.kind == NamespaceKind::User && ns.path.is_none());
    let mut joined_early: Vec<NamespaceKind> = Vec::new();
    if new_user_ns {
        for kind in NamespaceKind::SETUP_ORDER {
            if let Some((_, fd)) = to_join.iter().find(|(k, _)| *k == kind) {
                setns(fd.as_fd(), CloneFlags::from_bits_retain(kind.clone_flag()))
                    .step(|| format!("join {} namespace", kind.proc_name()))?;
                joined_early.push(kind);
            }
        }
    }
    let mut create = CloneFlags::empty();
    for kind in NamespaceKind::SETUP_ORDER {
        let Some(plan) = boot.namespaces.iter().find(|ns| ns.kind == kind) else {
            continue;
        };
        if joined_early.contains(&kind) {
            continue;
        }
        if let Some((_, fd)) = to_join.iter().find(|(k, _)| *k == kind) {
            setns(fd.as_fd(), CloneFlags::from_bits_retain(kind.clone_flag())).step(|| {
                format!(
                    "join {} namespace {}",
                    kind.proc_name(),
                    plan.path
                        .as_deref()
                        .unwrap_or_else(|| "".as_ref())
                        .display()
                )
            })?;
            if kind == NamespaceKind::User {
                become_namespace_root()?;
            }
        } else if kind == NamespaceKind::User {
            // The user namespace comes first and alone: the others must be owned by it, and
            // its id maps are written by the parent, which is privileged in ours.
            if boot.no_pivot && creates_mount_namespace(boot) {
                crate::rootfs::cover_host_kernel_filesystems(boot)?;
            }
            unshare(CloneFlags::CLONE_NEWUSER).step(|| "create user namespace".into())?;
            channel
                .send(&ToParent::NeedIdMaps, &[])
                .step(|| "request id maps".into())?;
            match channel
                .recv::<ToInit>()
                .step(|| "wait for id maps".into())?
                .0
            {
                ToInit::IdMapsWritten => {}
                other => return Err(failure("wait for id maps", format!("got {other:?}"))),
            }
            become_namespace_root()?;
        } else {
            create |= CloneFlags::from_bits_retain(kind.clone_flag());
        }
    }
    if !create.is_empty() {
        unshare(create).step(|| "create namespaces".into())?;
    }
    if create.contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        && !boot.time_offsets.is_empty()
    {
        procfs
            .write_self(
                "timens_offsets".as_ref(),
                boot.time_offsets.join("\n").as_bytes(),
            )
            .step(|| "write /proc/self/timens_offsets".into())?;
    }
    Ok(())
}

fn creates_mount_namespace(boot: &Bootstrap) -> bool {
    boot.namespaces
        .iter()
        .any(|ns| ns.kind == NamespaceKind::Mount && ns.path.is_none())
}

/// Switches to uid/gid 0 of the user namespace just entered, so that files the init creates
/// belong to the container's root.
fn become_namespace_root() -> Result<(), InitFailure> {
    let root_uid = nix::unistd::Uid::from_raw(0);
    let root_gid = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .step(|| "setresgid to namespace root".into())?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .step(|| "setresuid to namespace root".into())?;
    Ok(())
}
