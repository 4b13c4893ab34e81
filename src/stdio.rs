//! Standard streams of container processes started through the library.

use std::fs::File;
use std::os::fd::OwnedFd;

/// Where one of a container process's standard streams comes from. Without a terminal the
/// process gets exactly this descriptor: nothing in husk copies data in between.
///
/// The library's default is [`Stdio::Null`]: a container runs code the caller may not trust,
/// which should not get the caller's terminal or log streams unless asked for. The `husk` CLI
/// inherits its own, as runc does ([`StdioConfig::inherit`]).
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Stdio {
    /// The caller's own stream (what the CLI does).
    Inherit,
    /// /dev/null (the default).
    #[default]
    Null,
    /// A new pipe; the caller's end comes back in [`Pipes`].
    Piped,
    /// This descriptor (a file, socket or pipe end the caller opened).
    Fd(OwnedFd),
}

impl Stdio {
    pub(crate) fn to_std(&self) -> std::io::Result<std::process::Stdio> {
        Ok(match self {
            Stdio::Inherit => std::process::Stdio::inherit(),
            Stdio::Null => std::process::Stdio::null(),
            Stdio::Piped => std::process::Stdio::piped(),
            Stdio::Fd(fd) => std::process::Stdio::from(fd.try_clone()?),
        })
    }
}

/// The three streams of a process to start; all [`Stdio::Null`] by default.
#[derive(Debug, Default)]
pub struct StdioConfig {
    /// Standard input (fd 0).
    pub stdin: Stdio,
    /// Standard output (fd 1).
    pub stdout: Stdio,
    /// Standard error (fd 2).
    pub stderr: Stdio,
}

impl StdioConfig {
    /// The caller's own three streams, as the `husk` CLI (and runc) give them.
    pub fn inherit() -> StdioConfig {
        StdioConfig {
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
        }
    }
}

/// The caller's ends of the streams configured as [`Stdio::Piped`].
#[derive(Debug, Default)]
pub struct Pipes {
    /// Write to the process's stdin (drop it to send end-of-file).
    pub stdin: Option<File>,
    /// Read the process's stdout.
    pub stdout: Option<File>,
    /// Read the process's stderr.
    pub stderr: Option<File>,
}

impl Pipes {
    pub(crate) fn from_child(child: &mut std::process::Child) -> Pipes {
        Pipes {
            stdin: child.stdin.take().map(|p| File::from(OwnedFd::from(p))),
            stdout: child.stdout.take().map(|p| File::from(OwnedFd::from(p))),
            stderr: child.stderr.take().map(|p| File::from(OwnedFd::from(p))),
        }
    }
}
