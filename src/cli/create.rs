//! `husk create` and `husk run`.

use std::path::{Path, PathBuf};

use clap::Args;
use nix::sys::signal::{SigSet, Signal};

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Path to the bundle (default: the current directory).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master (terminal containers).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the container's init pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not give the container a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach: return once the container is running.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long = "keep")]
    pub keep: bool,
}

fn create_container(root: &Path, a: &CreateArgs) -> husk::Result<husk::Container> {
    if a.console_socket.is_some() {
        return Err(husk::Error::Config {
            field: "--console-socket".into(),
            reason: "terminals are not supported yet".into(),
        });
    }
    let opts = husk::CreateOptions {
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
    };
    let container = runtime(root).create(&a.id, &a.bundle, &opts)?;
    if let (Some(path), Some(pid)) = (&a.pid_file, container.pid()) {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        if let Err(e) = husk::state::write_atomic(&path, pid.to_string().as_bytes()) {
            let _ = container.delete(true);
            return Err(e);
        }
    }
    Ok(container)
}

pub fn create(root: &Path, a: CreateArgs) -> CmdResult {
    create_container(root, &a)?;
    Ok(0)
}

/// Signals `husk run` forwards to the container instead of dying of them.
fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        set.remove(s);
    }
    set
}

pub fn run(root: &Path, a: RunArgs) -> CmdResult {
    if a.detach {
        let mut c = create_container(root, &a.create)?;
        if let Err(e) = c.start() {
            let _ = c.clone().delete(true);
            return Err(e.into());
        }
        return Ok(0);
    }
    // Block the signals before the container exists so none is lost; the init's spawn
    // resets the mask for the container.
    let signals = forwarded_signals();
    signals.thread_block()?;
    let mut c = create_container(root, &a.create)?;
    if let Err(e) = c.start() {
        let _ = c.clone().delete(true);
        return Err(e.into());
    }
    let status = wait_forwarding(&c, &signals)?;
    if !a.keep {
        c.delete(true)?;
    }
    Ok(status.code())
}

/// Waits for the container's init, passing on every signal husk receives meanwhile.
fn wait_forwarding(c: &husk::Container, signals: &SigSet) -> husk::Result<husk::ExitStatus> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(c.pid().unwrap_or(0));
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(husk::ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Ok(husk::ExitStatus::Signaled(sig as i32))
            }
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => return c.wait(),
            Err(e) => {
                return Err(husk::Error::Io {
                    context: "wait for container".into(),
                    source: e.into(),
                })
            }
        }
        let Ok(sig) = signals.wait() else {
            continue;
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(pid, sig);
        }
    }
}
