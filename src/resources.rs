//! Resource control of a container: pause / resume (the freezer), `update` of its limits, usage
//! statistics and out-of-memory events. Everything goes through the container's cgroup
//! ([`crate::cgroups::CgroupManager`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::cgroups::{CgroupError, CgroupManager, CgroupMode, OomWakeup, OomWatch};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::state::Status;

/// Resource usage of a container (its cgroup's counters).
pub type Stats = crate::cgroups::CgroupStats;

/// The longest an [`Events`] stream waits before checking that the container still exists.
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

impl Container {
    fn require_cgroup(&self) -> Result<CgroupManager> {
        self.cgroup().ok_or_else(|| {
            Error::Cgroup(CgroupError::Unsupported(format!(
                "container {} has no cgroup",
                self.id()
            )))
        })
    }

    /// The host's cgroup mode as the container's cgroup was set up in.
    pub fn cgroup_mode(&self) -> Option<CgroupMode> {
        self.cgroup().map(|c| c.mode())
    }

    /// Freezes every process of a running (or created) container; its status becomes `paused`.
    /// A paused created container cannot be started; [`Container::resume`] makes it `created`
    /// again (as in runc).
    pub fn pause(&self) -> Result<()> {
        let _dir = self.lock()?;
        let status = self.status();
        if !matches!(status, Status::Running | Status::Created) {
            return Err(self.wrong_state("pause", status));
        }
        self.require_cgroup()?.freeze()?;
        Ok(())
    }

    /// Thaws a paused container; its status becomes what it was before (`running` or
    /// `created`).
    pub fn resume(&self) -> Result<()> {
        let _dir = self.lock()?;
        let status = self.status();
        if status != Status::Paused {
            return Err(self.wrong_state("resume", status));
        }
        self.require_cgroup()?.thaw()?;
        Ok(())
    }

    /// Changes the limits of a created, running or paused container. Fields left `None` keep
    /// their current values; a field that cannot be applied is an error naming it (fields
    /// before it may have been applied already).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let _dir = self.lock()?;
        let status = self.status();
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(self.wrong_state("update", status));
        }
        // As at create: a 0 from docker and friends means "leave as it is".
        let resources = crate::config::zero_means_unset(resources.clone());
        self.require_cgroup()?.update(&resources)?;
        Ok(())
    }

    /// Current resource usage. Works as long as the container exists (also once stopped, until
    /// it is deleted).
    pub fn stats(&self) -> Result<Stats> {
        Ok(self.require_cgroup()?.stats()?)
    }

    /// How many of the container's processes the OOM killer has killed.
    pub fn oom_kill_count(&self) -> Result<u64> {
        Ok(self.require_cgroup()?.oom_kill_count()?)
    }

    /// Whether the OOM killer has killed any of the container's processes.
    pub fn oom_killed(&self) -> Result<bool> {
        Ok(self.oom_kill_count()? > 0)
    }

    /// A stream of the container's [`Event`]s: its stats every `interval` (the first one after
    /// one interval) and an [`Event::Oom`] for each out-of-memory event, as they happen. It ends
    /// when the container is deleted.
    pub fn events(&self, interval: Duration) -> Result<Events> {
        if interval.is_zero() {
            return Err(Error::config("interval", "must be greater than 0"));
        }
        let cgroup = self.require_cgroup()?;
        // Without a memory controller there are no OOM events to watch, only stats.
        let oom = match cgroup.watch_oom() {
            Ok(watch) => Some(watch),
            Err(CgroupError::ControllerMissing { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Events {
            state_file: self.dir.join(crate::state::STATE_FILE),
            cgroup,
            interval,
            next_stats: Instant::now() + interval,
            oom,
            pending_oom: 0,
            done: false,
        })
    }
}

/// Something that happened to a container, from [`Container::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The periodic usage report.
    Stats(Box<Stats>),
    /// The container's memory cgroup ran out of memory (on cgroup v2: a process was OOM-killed).
    Oom,
}

/// Iterator over a container's events; see [`Container::events`]. Each `next` blocks until the
/// next event.
#[derive(Debug)]
pub struct Events {
    state_file: PathBuf,
    cgroup: CgroupManager,
    interval: Duration,
    next_stats: Instant,
    oom: Option<OomWatch>,
    pending_oom: u64,
    done: bool,
}

impl Events {
    fn container_exists(&self) -> bool {
        self.state_file.exists()
    }

    /// `delete` removes the cgroups before the state: a missing cgroup means it is under way.
    fn cgroup_removed(&self) -> bool {
        self.cgroup
            .hierarchies()
            .iter()
            .filter(|h| !h.skipped)
            .any(|h| !h.dir.exists())
    }

    /// Waits up to `timeout` for an OOM notification; records what it found.
    fn wait_oom(&mut self, timeout: Duration) -> Result<()> {
        let Some(watch) = self.oom.as_mut() else {
            std::thread::sleep(timeout);
            return Ok(());
        };
        let readable =
            husk_init::sys::wait_readable(watch.as_fd(), timeout).map_err(|e| Error::Io {
                context: "wait for OOM events".into(),
                source: e,
            })?;
        if readable {
            match watch.read()? {
                OomWakeup::Oom(count) => self.pending_oom += count,
                OomWakeup::Nothing => {}
                // Nothing more to hear from it; the next liveness check ends the stream.
                OomWakeup::CgroupRemoved => self.oom = None,
            }
        }
        Ok(())
    }
}

impl Iterator for Events {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if self.done {
                return None;
            }
            if self.pending_oom > 0 {
                self.pending_oom -= 1;
                return Some(Ok(Event::Oom));
            }
            if !self.container_exists() {
                self.done = true;
                return None;
            }
            let now = Instant::now();
            if now >= self.next_stats {
                self.next_stats = now + self.interval;
                return match self.cgroup.stats() {
                    Ok(stats) => Some(Ok(Event::Stats(Box::new(stats)))),
                    // Deleted while we read.
                    Err(_) if !self.container_exists() || self.cgroup_removed() => {
                        self.done = true;
                        None
                    }
                    Err(e) => Some(Err(e.into())),
                };
            }
            let wait = (self.next_stats - now).min(LIVENESS_CHECK);
            if let Err(e) = self.wait_oom(wait) {
                return Some(Err(e));
            }
        }
    }
}
