//! Host side of the bootstrap: start the init, serve its requests, record the container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};

use husk_init::hooks::run_hooks;
use husk_init::proto::{Channel, ToInit, ToParent, INIT_ARG};
use oci_spec::runtime::LinuxIdMapping;

use crate::cgroups::CgroupManager;
use crate::config::{host_root, ContainerConfig};
use crate::error::{Context, Error, Result};
use crate::state::{now_rfc3339, process_start_time, OciState, Record, StateDir, Status};

/// Creates the container described by `config` in the (new, locked) state directory `dir`.
/// On failure everything made so far is undone, the directory included.
pub(crate) fn create(
    init_binary: &Path,
    id: &str,
    dir: StateDir,
    config: ContainerConfig,
) -> Result<Record> {
    let mut record = Record {
        oci_version: config.oci_version.clone(),
        id: id.to_string(),
        pid: None,
        pid_start_time: None,
        bundle: config.bundle.clone(),
        rootfs: config.rootfs.clone(),
        created: now_rfc3339(),
        annotations: config.annotations.clone(),
        init_ready: false,
        cgroup: None,
        hooks: config.host_hooks.clone(),
        namespaces: config
            .boot
            .namespaces
            .iter()
            .map(|n| n.kind.proc_name().to_string())
            .collect(),
    };
    let mut cgroup = None;
    match bootstrap(init_binary, &dir, config, &mut record, &mut cgroup) {
        Ok(()) => Ok(record),
        Err(e) => {
            if let Some(pid) = record.pid.filter(|_| record.init_alive()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGKILL,
                );
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
            if let Some(cg) = cgroup {
                kill_all(&cg);
                let _ = cg.destroy();
            }
            let _ = dir.remove();
            Err(e)
        }
    }
}

/// SIGKILLs every process left in the container's cgroup.
pub(crate) fn kill_all(cg: &CgroupManager) {
    for pid in cg.pids().unwrap_or_default() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

fn bootstrap(
    init_binary: &Path,
    dir: &StateDir,
    mut config: ContainerConfig,
    record: &mut Record,
    cgroup_out: &mut Option<CgroupManager>,
) -> Result<()> {
    let cgroup = CgroupManager::new(config.cgroups_path.as_deref(), &record.id)?;
    record.cgroup = Some(cgroup.saved());
    // Saved before anything runs, so that `delete --force` can clean up after a crash.
    dir.save(record)?;
    cgroup.create(config.resources.as_ref())?;
    *cgroup_out = Some(cgroup.clone());
    config.boot.cgroup_path = cgroup.path().to_path_buf();

    let fifo_path = dir.fifo_path();
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .context(|| format!("create {}", fifo_path.display()))?;
    let container_root = host_root(&config.uid_mappings);
    let container_root_gid = host_root(&config.gid_mappings);
    if container_root != 0 || container_root_gid != 0 {
        nix::unistd::chown(
            &fifo_path,
            Some(nix::unistd::Uid::from_raw(container_root)),
            Some(nix::unistd::Gid::from_raw(container_root_gid)),
        )
        .context(|| format!("chown {}", fifo_path.display()))?;
    }
    // Read-write: opening never blocks, and the init then holds a reader, so `start`'s
    // non-blocking open for writing succeeds exactly while the init waits.
    let fifo: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&fifo_path)
        .context(|| format!("open {}", fifo_path.display()))?
        .into();

    let (parent_end, child_end) = Channel::pair().context(|| "create bootstrap socket".into())?;
    let mut stage1 = spawn_init(init_binary, &config, child_end)?;
    let stage1_pid = stage1.id() as i32;
    // Stage 1 must be in the cgroup before it creates the cgroup namespace.
    if let Err(e) = cgroup.add_process(stage1_pid) {
        let _ = stage1.kill();
        let _ = stage1.wait();
        return Err(e.into());
    }
    let boot = Box::new(config.boot.clone());
    parent_end
        .send(&ToInit::Bootstrap(boot), &[fifo.as_raw_fd()])
        .context(|| "send bootstrap to init".into())?;
    drop(fifo);

    let result = serve(&parent_end, &config, dir, record, &mut stage1);
    if result.is_err() && record.pid.is_none() {
        let _ = stage1.kill();
        let _ = stage1.wait();
    }
    result
}

/// Answers the init's requests until it reports ready.
fn serve(
    channel: &Channel,
    config: &ContainerConfig,
    dir: &StateDir,
    record: &mut Record,
    stage1: &mut Child,
) -> Result<()> {
    loop {
        let msg = match channel.recv::<ToParent>() {
            Ok((msg, _fds)) => msg,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(init_vanished(stage1, record));
            }
            Err(e) => return Err(e).context(|| "read from init".into()),
        };
        match msg {
            ToParent::NeedIdMaps => {
                write_id_maps(
                    stage1.id() as i32,
                    &config.uid_mappings,
                    &config.gid_mappings,
                )?;
                channel
                    .send(&ToInit::IdMapsWritten, &[])
                    .context(|| "answer init".into())?;
            }
            ToParent::Stage2Pid(pid) => {
                record.pid = Some(pid);
                record.pid_start_time = process_start_time(pid);
                if pid != stage1.id() as i32 {
                    let _ = stage1.wait();
                }
                dir.save(record)?;
            }
            ToParent::RunRuntimeHooks => {
                let state = state_json(record, Status::Creating);
                run_hooks(&config.host_hooks.prestart, &state)?;
                run_hooks(&config.host_hooks.create_runtime, &state)?;
                channel
                    .send(&ToInit::HooksDone { state }, &[])
                    .context(|| "answer init".into())?;
            }
            ToParent::Ready => {
                record.init_ready = true;
                dir.save(record)?;
                return Ok(());
            }
            ToParent::Failed(failure) => return Err(Error::Init(failure)),
        }
    }
}

/// The init closed the socket without a word: say how it ended.
fn init_vanished(stage1: &mut Child, record: &Record) -> Error {
    let how = match stage1.try_wait() {
        Ok(Some(status)) if record.pid.is_none() => format!("init exited ({status})"),
        _ => "init exited unexpectedly".to_string(),
    };
    Error::Init(husk_init::proto::InitFailure {
        step: "bootstrap".into(),
        errno: None,
        detail: Some(how),
    })
}

pub(crate) fn state_json(record: &Record, status: Status) -> String {
    serde_json::to_string(&oci_state(record, status)).unwrap_or_default()
}

pub(crate) fn oci_state(record: &Record, status: Status) -> OciState {
    OciState {
        oci_version: record.oci_version.clone(),
        id: record.id.clone(),
        pid: if status == Status::Stopped {
            0
        } else {
            record.pid.unwrap_or(0)
        },
        status,
        bundle: record.bundle.clone(),
        rootfs: record.rootfs.clone(),
        created: record.created.clone(),
        annotations: record.annotations.clone(),
        owner: String::new(),
    }
}

fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    let lines = |maps: &[LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, lines(maps)).context(|| format!("write {path}"))?;
    }
    Ok(())
}

/// Starts `husk init` with the bootstrap socket just above the preserved fds.
fn spawn_init(init_binary: &Path, config: &ContainerConfig, child_end: Channel) -> Result<Child> {
    let target = 3 + config.boot.preserve_fds as i32;
    let fd = child_end.as_raw_fd();
    let mut cmd = Command::new(init_binary);
    cmd.arg0("husk")
        .args([INIT_ARG, &target.to_string()])
        .env_clear()
        .current_dir(&config.bundle);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (dup2, fcntl, sigprocmask) on values captured by copy.
    unsafe {
        cmd.pre_exec(move || {
            if fd == target {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A caller (e.g. `husk run`) may block signals to forward them; the container
            // must not inherit that mask.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .context(|| format!("start init {}", init_binary.display()))?;
    drop(child_end);
    Ok(child)
}
