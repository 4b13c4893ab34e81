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
    #[command(flatten)]
    pub image: ImageArgs,
    pub id: String,
    /// With --image: the command and its arguments (after `--`), instead of the image's
    /// Entrypoint and Cmd.
    #[arg(last = true, requires = "image")]
    pub command: Vec<String>,
}

/// `--image` and the options that go with it: husk makes the bundle itself.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Make the container from this image of the store (see `husk image`), with its own
    /// writable layer, instead of from a bundle; the bundle husk makes is removed on delete.
    #[arg(long, conflicts_with = "bundle")]
    pub image: Option<String>,
    /// With --image: set an environment variable (KEY=VALUE; repeatable).
    #[arg(short = 'e', long = "env", requires = "image")]
    pub env: Vec<String>,
    /// With --image: the user (name, uid, user:group or uid:gid; names from the image).
    #[arg(short = 'u', long, requires = "image")]
    pub user: Option<String>,
    /// With --image: the working directory.
    #[arg(long, requires = "image")]
    pub cwd: Option<PathBuf>,
    /// With --image: give the process a terminal.
    #[arg(short = 't', long, requires = "image")]
    pub tty: bool,
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
    store: &Path,
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
    let container = match &a.image.image {
        Some(image) => {
            let rt = husk::Runtime::builder()
                .state_root(root)
                .store(store)
                .cgroup_driver(super::cgroup_driver())
                .build();
            rt.create_from_image(&a.id, image, &image_options(a), &opts)?
        }
        None => runtime(root).create(&a.id, &a.bundle, &opts)?,
    };
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

/// The image's config overrides given on the command line.
fn image_options(a: &CreateArgs) -> husk::ImageRunOptions {
    let mut base = husk::default_spec();
    if let Some(p) = base.process_mut() {
        p.set_terminal(Some(a.image.tty));
    }
    let mut opts = husk::ImageRunOptions::default().base_spec(base);
    if !a.command.is_empty() {
        opts.args = Some(a.command.clone());
    }
    opts.env = a.image.env.clone();
    opts.user = a.image.user.clone();
    opts.cwd = a.image.cwd.clone();
    opts
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

pub fn create(root: &Path, store: &Path, a: CreateArgs) -> CmdResult {
    create_container(root, store, &a, false)?;
    Ok(0)
}

pub fn run(root: &Path, store: &Path, a: RunArgs) -> CmdResult {
    if a.detach {
        let mut c = create_container(root, store, &a.create, false)?;
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
    let mut c = create_container(root, store, &a.create, true)?;
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
