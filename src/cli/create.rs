//! `husk create` and `husk run`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::foreground::{forwarded_signals, wait_forwarding};
use super::tty::Relay;
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

fn create_container(
    root: &Path,
    a: &CreateArgs,
    keep_console: bool,
) -> husk::Result<husk::Container> {
    let console = match (&a.console_socket, keep_console) {
        (Some(path), _) => Some(husk::ConsoleDest::Socket(path.clone())),
        (None, true) => Some(husk::ConsoleDest::Keep),
        (None, false) => None,
    };
    let opts = husk::CreateOptions {
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        console,
        notify_socket: std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from),
        listen_fds: listen_fds(),
        stdio: husk::StdioConfig::inherit(),
    };
    let container = runtime(root).create(&a.id, &a.bundle, &opts)?;
    super::log::debug(&format!(
        "container {} created, init pid {}",
        a.id,
        container.pid().unwrap_or(0)
    ));
    if let (Some(path), Some(pid)) = (&a.pid_file, container.pid()) {
        if let Err(e) = super::write_pid_file(path, pid) {
            let _ = container.delete(true);
            return Err(e);
        }
    }
    Ok(container)
}

/// Socket activation: `LISTEN_FDS` meant for us (LISTEN_PID, when set, is our pid).
fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .map(|p| p == std::process::id().to_string())
        .unwrap_or(true);
    match std::env::var("LISTEN_FDS") {
        Ok(n) if for_us => n.parse().unwrap_or(0),
        _ => 0,
    }
}

pub fn create(root: &Path, a: CreateArgs) -> CmdResult {
    create_container(root, &a, false)?;
    Ok(0)
}

pub fn run(root: &Path, a: RunArgs) -> CmdResult {
    if a.detach {
        let mut c = create_container(root, &a.create, false)?;
        if let Err(e) = c.start() {
            let _ = c.delete(true);
            return Err(e.into());
        }
        return Ok(0);
    }
    // Block the signals before the container exists so none is lost; the init's spawn
    // resets the mask for the container.
    let signals = forwarded_signals();
    signals.thread_block()?;
    let mut c = create_container(root, &a.create, true)?;
    let relay = match c.take_console() {
        Some(master) => Some(Relay::start(master)?),
        None => None,
    };
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(e.into());
    }
    let status = wait_forwarding(c.pid().unwrap_or(0), &signals, relay.as_ref())?;
    super::log::debug(&format!(
        "process exited: pid={}, exit code {}",
        c.pid().unwrap_or(0),
        status.code()
    ));
    if let Some(r) = relay {
        r.finish();
    }
    if !a.keep {
        c.delete(true)?;
    }
    Ok(status.code())
}
