//! Out-of-memory events of a container's memory cgroup.
//!
//! * v1: an eventfd registered on `memory.oom_control` through `cgroup.event_control`. The kernel
//!   signals it on every OOM in the cgroup, and once more when the cgroup is removed.
//! * v2: inotify on `memory.events`, which the kernel marks modified when a counter changes; the
//!   `oom_kill` counter tells how many processes were killed since the last look. The watch is
//!   dropped (`IN_IGNORED`) when the cgroup is removed.
//!
//! The count of OOM kills so far is `oom_kill` in `memory.oom_control` (v1, kernel 4.13+) or in
//! `memory.events` (v2).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{fsio, CgroupError, CgroupManager, CgroupMode};

/// What happened since the watch's descriptor last became readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OomWakeup {
    /// This many OOM events (v1: OOM situations; v2: processes OOM-killed).
    Oom(u64),
    /// The file changed for another reason (v2: another counter moved).
    Nothing,
    /// The container's memory cgroup no longer exists.
    CgroupRemoved,
}

enum Source {
    V1 {
        eventfd: EventFd,
        /// Must stay open for the registration to stay alive.
        _oom_control: File,
    },
    V2 {
        inotify: Inotify,
        last_kills: u64,
    },
}

/// Watches one memory cgroup for OOM events. Poll [`OomWatch::as_fd`] for readability, then call
/// [`OomWatch::read`].
pub struct OomWatch {
    dir: PathBuf,
    source: Source,
}

impl std::fmt::Debug for OomWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OomWatch").field("dir", &self.dir).finish()
    }
}

fn v1_oom_kills(dir: &Path) -> Result<u64, CgroupError> {
    Ok(fsio::read_keyed(&dir.join("memory.oom_control"))?
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
}

fn v2_oom_kills(dir: &Path) -> Result<u64, CgroupError> {
    Ok(fsio::read_keyed(&dir.join("memory.events"))?
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
}

fn memory_dir(manager: &CgroupManager, field: &str) -> Result<PathBuf, CgroupError> {
    manager
        .dir_for("memory")
        .map(Path::to_path_buf)
        .ok_or_else(|| CgroupError::ControllerMissing {
            field: field.to_owned(),
            controller: "memory".into(),
        })
}

impl CgroupManager {
    /// How many processes of the cgroup the OOM killer has killed.
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let dir = memory_dir(self, "oom_kill")?;
        if self.mode() == CgroupMode::Unified {
            v2_oom_kills(&dir)
        } else {
            v1_oom_kills(&dir)
        }
    }

    /// Starts watching the memory cgroup for OOM events.
    pub fn watch_oom(&self) -> Result<OomWatch, CgroupError> {
        let dir = memory_dir(self, "oom events")?;
        let source = if self.mode() == CgroupMode::Unified {
            watch_v2(&dir)?
        } else {
            watch_v1(&dir)?
        };
        Ok(OomWatch { dir, source })
    }
}

fn watch_v1(dir: &Path) -> Result<Source, CgroupError> {
    let io_err = |what: &str| {
        let path = dir.join(what);
        move |errno: nix::errno::Errno| CgroupError::Read {
            path,
            source: std::io::Error::from(errno),
        }
    };
    let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(io_err("eventfd"))?;
    let control_path = dir.join("memory.oom_control");
    let oom_control = File::open(&control_path).map_err(|source| CgroupError::Read {
        path: control_path,
        source,
    })?;
    // Registration: "<event fd> <fd of the watched file>" into cgroup.event_control.
    let line = format!(
        "{} {}",
        eventfd.as_fd().as_raw_fd(),
        oom_control.as_raw_fd()
    );
    let event_control = dir.join("cgroup.event_control");
    crate::hostfs::write_existing(&event_control, line.as_bytes()).map_err(|source| {
        CgroupError::Write {
            field: "oom events".into(),
            path: event_control,
            value: line,
            source,
        }
    })?;
    Ok(Source::V1 {
        eventfd,
        _oom_control: oom_control,
    })
}

fn watch_v2(dir: &Path) -> Result<Source, CgroupError> {
    let path = dir.join("memory.events");
    let err = |errno: nix::errno::Errno| CgroupError::Read {
        path: path.clone(),
        source: std::io::Error::from(errno),
    };
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(err)?;
    inotify
        .add_watch(&path, AddWatchFlags::IN_MODIFY)
        .map_err(err)?;
    // Read after the watch exists, so that no kill falls between the two.
    let last_kills = v2_oom_kills(dir)?;
    Ok(Source::V2 {
        inotify,
        last_kills,
    })
}

impl OomWatch {
    /// The descriptor that becomes readable when something happened.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            Source::V1 { eventfd, .. } => eventfd.as_fd(),
            Source::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Collects what happened; returns [`OomWakeup::Nothing`] when nothing did (it does not
    /// block).
    pub fn read(&mut self) -> Result<OomWakeup, CgroupError> {
        let gone = !self.dir.exists();
        match &mut self.source {
            Source::V1 { eventfd, .. } => {
                let count = match eventfd.read() {
                    Ok(count) => count,
                    Err(nix::errno::Errno::EAGAIN) => 0,
                    Err(errno) => {
                        return Err(CgroupError::Read {
                            path: self.dir.join("cgroup.event_control"),
                            source: errno.into(),
                        })
                    }
                };
                // The removal of the cgroup signals the eventfd too.
                Ok(if gone {
                    OomWakeup::CgroupRemoved
                } else if count > 0 {
                    OomWakeup::Oom(count)
                } else {
                    OomWakeup::Nothing
                })
            }
            Source::V2 {
                inotify,
                last_kills,
            } => {
                let events = match inotify.read_events() {
                    Ok(events) => events,
                    Err(nix::errno::Errno::EAGAIN) => Vec::new(),
                    Err(errno) => {
                        return Err(CgroupError::Read {
                            path: self.dir.join("memory.events"),
                            source: errno.into(),
                        })
                    }
                };
                let ignored = events
                    .iter()
                    .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED));
                if gone || ignored {
                    return Ok(OomWakeup::CgroupRemoved);
                }
                let kills = v2_oom_kills(&self.dir)?;
                let new = kills.saturating_sub(*last_kills);
                *last_kills = kills;
                Ok(if new > 0 {
                    OomWakeup::Oom(new)
                } else {
                    OomWakeup::Nothing
                })
            }
        }
    }
}
