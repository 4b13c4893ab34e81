//! husk: a runc-compatible OCI container runtime, as a library.
//!
//! ```no_run
//! # fn main() -> husk::Result<()> {
//! husk::init_if_requested(); // first thing in main: this binary doubles as the container init
//! let runtime = husk::Runtime::new("/run/my-app");
//! let mut c = runtime.create("web", "/path/to/bundle".as_ref(), &Default::default())?;
//! c.start()?;
//! let status = c.wait()?;
//! c.delete(false)?;
//! # let _ = status; Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod cgroups;
mod child;
pub use child::leave_dropped_children_to_the_parent;
mod command;
pub mod config;
mod container;
mod error;
mod exe_guard;
mod fault;
pub mod hostfs;
pub mod image;
pub mod profile;
mod resources;
mod spawn;
pub mod state;
pub mod stdio;

pub use command::Command;
pub use config::{ConsoleDest, CreateOptions};
pub use container::{Container, ContainerGuard, ExecOptions, ExitStatus, Process, Runtime};
pub use error::{Error, Result};
pub use image::{Image, ImageError, ImageSource, ImageStore, InstallOptions};
/// The signals of [`Container::kill`] and [`Process::signal`] (re-exported from `nix`, so that
/// callers need no `nix` dependency of their own).
pub use nix::sys::signal::Signal;
pub use oci_spec;
pub use resources::{Event, Events, Stats};
pub use state::{OciState, Status};
pub use stdio::{Pipes, Stdio, StdioConfig};

/// When this process was started as a container init (`argv[1] == "init"`), runs the init and
/// never returns. Call it first in `main` of any program that uses [`Runtime`] with its own
/// binary as the init.
pub fn init_if_requested() {
    if husk_init::is_init_invocation() {
        husk_init::main();
    }
}
