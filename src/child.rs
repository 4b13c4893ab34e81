//! The processes the library starts (container inits and exec'd processes) are children of the
//! caller. Each is held through a pidfd and reaped: by a wait on its handle, by
//! [`Container::delete`](crate::Container::delete), or, once its handle is dropped, by the next
//! library call that waits or creates (see [`reap_orphans`]). An unreaped child would stay a
//! zombie of the embedding program; in a pid namespace it would also keep the namespace's PID 1
//! from exiting (the kernel's `zap_pid_ns_processes` waits for every task of the namespace to be
//! reaped), so a wait on that init would never end.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::container::ExitStatus;

/// One process, watched through a pidfd; its status is collected once and kept.
#[derive(Debug)]
pub(crate) struct Child {
    pid: i32,
    /// Start time when the pidfd was taken: tells this process from a later one with its pid.
    start_time: Option<u64>,
    pidfd: OwnedFd,
    status: Mutex<Option<ExitStatus>>,
    /// Whether the status stays available after the handle is dropped (a container's init,
    /// which a later handle may wait for), or is dropped with it (an exec'd process).
    keep_status: bool,
}

impl Child {
    /// Watches `pid`. When it is our child and not yet reaped, the pid cannot have been reused,
    /// so the pidfd is certainly that process.
    pub(crate) fn adopt(pid: i32, keep_status: bool) -> std::io::Result<Child> {
        let pidfd = husk_init::sys::pidfd_open(pid)?;
        Ok(Child {
            pid,
            start_time: crate::state::process_start_time(pid),
            pidfd,
            status: Mutex::new(None),
            keep_status,
        })
    }

    /// Watches `pid`, a process we may or may not be the parent of, if it is still the
    /// process that started at `start_time`.
    pub(crate) fn watch(pid: i32, start_time: Option<u64>) -> Option<Child> {
        let pidfd = husk_init::sys::pidfd_open(pid).ok()?;
        // Checked after the pidfd exists: from here on the pid cannot change hands under it.
        let now = crate::state::process_start_time(pid);
        if now.is_none() || (start_time.is_some() && now != start_time) {
            return None;
        }
        Some(Child {
            pid,
            start_time: now,
            pidfd,
            status: Mutex::new(None),
            keep_status: false,
        })
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    pub(crate) fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The status if it has ended (reaping it when it is our child), without blocking.
    pub(crate) fn try_wait(&self) -> std::io::Result<Option<ExitStatus>> {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if status.is_none() {
            *status = reap(self.pidfd.as_fd())?;
        }
        Ok(*status)
    }

    /// Waits at most `timeout` (forever with `None`), reaping dropped children meanwhile:
    /// one of them may be what keeps this one from ending.
    pub(crate) fn wait_timeout(
        &self,
        timeout: Option<Duration>,
    ) -> std::io::Result<Option<ExitStatus>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            // Short ticks while others wait to be reaped: a handle dropped by another thread
            // during this wait is reaped within one tick.
            let tick = if reap_orphans() {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(250)
            };
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Ok(None),
                },
                None => tick,
            };
            husk_init::sys::wait_readable(self.pidfd.as_fd(), left.min(tick))?;
        }
    }

    /// Drops the handle without keeping the status for later handles (the container is gone).
    /// A child still running is reaped later all the same.
    pub(crate) fn discard(mut self) {
        self.keep_status = false;
    }

    /// Waits until it ends.
    pub(crate) fn wait(&self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.wait_timeout(None)? {
                return Ok(status);
            }
        }
    }
}

/// Whether a child whose handle is dropped is still reaped by this process (the library's
/// default); see [`leave_dropped_children_to_the_parent`].
static REAP_DROPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// For a program that exits right after it started a process and dropped its handle (the
/// runc-compatible CLI: `exec -d`, `create`): such children are left alone, for the caller's
/// subreaper (containerd's shim, conmon) to collect. Reaping one that had already ended would
/// take its exit status from them: podman's exec then failed with 255 and a containerd exec
/// never saw its process end.
pub fn leave_dropped_children_to_the_parent() {
    REAP_DROPPED.store(false, std::sync::atomic::Ordering::Relaxed);
}

impl Drop for Child {
    fn drop(&mut self) {
        if !REAP_DROPPED.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let status = *self.status.lock().unwrap_or_else(|e| e.into_inner());
        let status = match status {
            Some(s) => Some(s),
            None => reap(self.pidfd.as_fd()).unwrap_or(Some(ExitStatus::Unknown)),
        };
        if status.is_some() && !self.keep_status {
            return;
        }
        let pidfd = match status {
            Some(_) => None,
            None => self.pidfd.try_clone().ok(),
        };
        if status.is_none() && pidfd.is_none() {
            return;
        }
        orphans().push(Orphan {
            pid: self.pid,
            start_time: self.start_time,
            pidfd,
            status,
            keep_status: self.keep_status,
        });
    }
}

/// A child whose handle was dropped: reaped by [`reap_orphans`]; a container init's status is
/// kept until a later handle takes it ([`take_orphan`]).
#[derive(Debug)]
struct Orphan {
    pid: i32,
    start_time: Option<u64>,
    /// Until it is reaped.
    pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
    keep_status: bool,
}

static ORPHANS: Mutex<Vec<Orphan>> = Mutex::new(Vec::new());

fn orphans() -> std::sync::MutexGuard<'static, Vec<Orphan>> {
    ORPHANS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reaps every dropped child that has ended; true when some are still running.
pub(crate) fn reap_orphans() -> bool {
    let mut list = orphans();
    list.retain_mut(|o| {
        if let Some(fd) = &o.pidfd {
            match reap(fd.as_fd()) {
                Ok(None) => return true,
                Ok(Some(status)) => o.status = Some(status),
                Err(_) => o.status = Some(ExitStatus::Unknown),
            }
            o.pidfd = None;
        }
        o.keep_status
    });
    list.iter().any(|o| o.pidfd.is_some())
}

/// Takes back a container init dropped earlier by a handle of this process: `pid` started at
/// `start_time`.
pub(crate) fn take_orphan(pid: i32, start_time: Option<u64>) -> Option<TakenOrphan> {
    let mut list = orphans();
    let at = list
        .iter()
        .position(|o| o.pid == pid && (start_time.is_none() || o.start_time == start_time))?;
    let o = list.swap_remove(at);
    Some(match (o.status, o.pidfd) {
        (Some(status), _) => TakenOrphan::Ended(status),
        (None, Some(pidfd)) => TakenOrphan::Running(Child {
            pid: o.pid,
            start_time: o.start_time,
            pidfd,
            status: Mutex::new(None),
            keep_status: o.keep_status,
        }),
        (None, None) => TakenOrphan::Ended(ExitStatus::Unknown),
    })
}

/// What [`take_orphan`] found.
pub(crate) enum TakenOrphan {
    Ended(ExitStatus),
    Running(Child),
}

/// `waitid(P_PIDFD, WEXITED|WNOHANG)`: the status of an ended child (now reaped), `None`
/// while it runs, `Unknown` once it ended when it is not our child (or was reaped elsewhere,
/// e.g. by a `waitpid` of the caller's own).
fn reap(pidfd: BorrowedFd<'_>) -> std::io::Result<Option<ExitStatus>> {
    loop {
        // SAFETY: siginfo is a zeroed, writable siginfo_t that outlives the call; waitid only
        // writes it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above; the pidfd is open for the duration of the call.
        let ret = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        if ret < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => {
                    // Not ours to reap: it ended when its pidfd is readable.
                    let ended = husk_init::sys::wait_readable(pidfd, Duration::ZERO)?;
                    return Ok(ended.then_some(ExitStatus::Unknown));
                }
                _ => return Err(e),
            }
        }
        // SAFETY: waitid filled a SIGCHLD siginfo when si_pid is non-zero.
        let (pid, code) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Exited(code),
            _ => ExitStatus::Signaled(code),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // std's handle is dropped without a wait on purpose: the pidfd handle reaps instead.
    #[allow(clippy::zombie_processes)]
    fn spawn(args: &[&str]) -> i32 {
        let child = std::process::Command::new(args[0])
            .args(&args[1..])
            .spawn()
            .unwrap();
        child.id() as i32
    }

    fn is_our_zombie_or_child(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1).map(str::to_string))
                == Some(std::process::id().to_string())
        })
    }

    #[test]
    fn wait_collects_the_status_once_and_keeps_it() {
        let pid = spawn(&["sh", "-c", "exit 5"]);
        let child = Child::adopt(pid, false).unwrap();
        assert_eq!(child.wait().unwrap(), ExitStatus::Exited(5));
        assert_eq!(child.try_wait().unwrap(), Some(ExitStatus::Exited(5)));
        assert!(!is_our_zombie_or_child(pid));
    }

    #[test]
    fn wait_timeout_returns_none_while_it_runs_and_signals_are_reported() {
        let pid = spawn(&["sleep", "100"]);
        let child = Child::adopt(pid, false).unwrap();
        assert_eq!(
            child.wait_timeout(Some(Duration::from_millis(50))).unwrap(),
            None
        );
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
        assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(9));
    }

    #[test]
    fn a_dropped_running_child_is_reaped_later() {
        let pid = spawn(&["sleep", "0.2"]);
        drop(Child::adopt(pid, false).unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_our_zombie_or_child(pid) && Instant::now() < deadline {
            reap_orphans();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!is_our_zombie_or_child(pid), "{pid} never reaped");
    }

    #[test]
    fn a_dropped_init_keeps_its_status_for_a_later_handle() {
        let pid = spawn(&["sh", "-c", "exit 4"]);
        let child = Child::adopt(pid, true).unwrap();
        let start = child.start_time;
        std::thread::sleep(Duration::from_millis(100));
        drop(child);
        // Reaped meanwhile by another test's reap_orphans, or still waiting to be.
        match take_orphan(pid, start) {
            Some(TakenOrphan::Ended(status)) => assert_eq!(status, ExitStatus::Exited(4)),
            Some(TakenOrphan::Running(child)) => {
                assert_eq!(child.wait().unwrap(), ExitStatus::Exited(4));
                child.discard();
            }
            None => panic!("the dropped init is not kept"),
        }
        assert!(take_orphan(pid, start).is_none(), "taken twice");
    }
}
