//! A builder for processes run in a running container, in the spirit of std::process::Command.

use std::path::PathBuf;

use crate::config::ConsoleDest;
use crate::container::{Container, ExecOptions, Process};
use crate::error::{Error, Result};
use crate::stdio::{Stdio, StdioConfig};

/// A process to run in a container. Unset attributes come from the container's own process
/// (its env, cwd, user, capabilities, rlimits, no_new_privs); seccomp is the container's.
///
/// ```no_run
/// # fn f(c: &husk::Container) -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::{Read, Write};
/// let mut p = husk::Command::new("tr")
///     .args(["a-z", "A-Z"])
///     .stdin(husk::Stdio::Piped)
///     .stdout(husk::Stdio::Piped)
///     .spawn(c)?;
/// p.pipes().stdin.take().unwrap().write_all(b"hello")?; // dropped: end of input
/// let mut out = String::new();
/// p.pipes().stdout.take().unwrap().read_to_string(&mut out)?;
/// assert_eq!(out, "HELLO");
/// assert_eq!(p.wait()?, husk::ExitStatus::Exited(0));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Command {
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    user: Option<(u32, u32)>,
    terminal: Option<(u16, u16)>,
    stdio: StdioConfig,
}

impl Command {
    /// A command running `program` (looked up in the container's `PATH` like any `args[0]`).
    /// Its streams are [`Stdio::Null`] unless set.
    pub fn new(program: impl Into<String>) -> Command {
        Command {
            args: vec![program.into()],
            env: Vec::new(),
            cwd: None,
            user: None,
            terminal: None,
            stdio: StdioConfig::default(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Command {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets (or replaces) one environment variable on top of the container's.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Command {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The working directory, inside the container.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Command {
        self.cwd = Some(dir.into());
        self
    }

    /// The user and group ids to run as (inside the container's user namespace, if any).
    pub fn user(mut self, uid: u32, gid: u32) -> Command {
        self.user = Some((uid, gid));
        self
    }

    /// Runs the process on a new terminal of `rows` x `cols`; [`Process::take_console`] gives
    /// its master and [`Process::resize`] changes its size.
    pub fn tty(mut self, rows: u16, cols: u16) -> Command {
        self.terminal = Some((rows, cols));
        self
    }

    /// Where its stdin comes from.
    pub fn stdin(mut self, s: Stdio) -> Command {
        self.stdio.stdin = s;
        self
    }

    /// Where its stdout goes.
    pub fn stdout(mut self, s: Stdio) -> Command {
        self.stdio.stdout = s;
        self
    }

    /// Where its stderr goes.
    pub fn stderr(mut self, s: Stdio) -> Command {
        self.stdio.stderr = s;
        self
    }

    /// Starts the process in `container` (which must be running or created).
    pub fn spawn(self, container: &Container) -> Result<Process> {
        let mut p = container.spec()?.process().clone().unwrap_or_default();
        p.set_args(Some(self.args));
        let mut env = p.env().clone().unwrap_or_default();
        for (key, value) in &self.env {
            env.retain(|kv| kv.split('=').next() != Some(key.as_str()));
            env.push(format!("{key}={value}"));
        }
        p.set_env(Some(env));
        if let Some(cwd) = self.cwd {
            p.set_cwd(cwd);
        }
        if let Some((uid, gid)) = self.user {
            p.user_mut().set_uid(uid);
            p.user_mut().set_gid(gid);
        }
        p.set_terminal(Some(self.terminal.is_some()));
        let size = match self.terminal {
            Some((rows, cols)) => Some(
                oci_spec::runtime::BoxBuilder::default()
                    .height(rows)
                    .width(cols)
                    .build()
                    .map_err(|e| Error::config("tty", e.to_string()))?,
            ),
            None => None,
        };
        p.set_console_size(size);
        let opts = ExecOptions {
            console: self.terminal.map(|_| ConsoleDest::Keep),
            stdio: self.stdio,
            ..Default::default()
        };
        container.exec(&p, &opts)
    }
}
