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
//!
//! # Images, and containers from them
//!
//! A [`Runtime`] made with [`Runtime::builder`] also has an image store ([`image`]): install an
//! image from an archive ([`Runtime::install_image`]) or a registry (`Runtime::pull_image`,
//! feature `registry`), then create containers from it by name
//! ([`Runtime::create_from_image`]). Each container gets its own writable layer over the
//! read-only image and a bundle husk writes itself; deleting the container removes both. A
//! container can also come from an in-memory [`oci_spec::runtime::Spec`]
//! ([`Runtime::create_from_spec`]).
//!
//! ```no_run
//! # fn main() -> husk::Result<()> {
//! husk::init_if_requested();
//! let runtime = husk::Runtime::builder()
//!     .state_root("/run/my-app")
//!     .store("/var/lib/my-app")
//!     .build();
//! runtime.install_image(
//!     husk::ImageSource::RootfsTar("/srv/busybox.tar.gz".into()),
//!     "busybox",
//!     &Default::default(),
//! )?;
//! let opts = husk::ImageRunOptions::default().args(["echo", "hello"]);
//! let mut c = runtime
//!     .create_from_image("hello", "busybox", &opts, &Default::default())?
//!     .guard(); // deleted, writable layer and all, when dropped
//! c.start()?;
//! c.wait()?;
//! # Ok(()) }
//! ```
//!
//! # One-shot sandboxed execution
//!
//! [`Runtime::execute`] runs one command in a fresh hardened container from an image, with
//! limits and a timeout, and returns its exit status and (capped) output; nothing is left
//! behind. See [`execute`].
//!
//! # What dropping a handle does
//!
//! Dropping a [`Container`] leaves the container as it is (it is not deleted: use a
//! [`ContainerGuard`] for that); dropping a [`Process`] neither kills nor waits for it. Either
//! way husk keeps the pidfd of a process it started and reaps it once it ends, so that no
//! zombie is left in the embedding program.

#![warn(missing_docs)]

pub mod cgroups;
mod child;
pub use child::leave_dropped_children_to_the_parent;
mod command;
pub mod config;
mod container;
mod error;
mod exe_guard;
pub mod execute;
mod fault;
// Internal, for the `husk` binary (the CLI shares its checked file helpers): not part of the API.
#[doc(hidden)]
pub mod hostfs;
pub mod image;
mod image_container;
pub mod profile;
mod resources;
mod seccomp_cache;
mod spawn;
pub mod state;
pub mod stdio;

pub use command::Command;
pub use config::{ConsoleDest, CreateOptions};
pub use container::{
    Container, ContainerGuard, ExecOptions, ExitStatus, Process, Runtime, RuntimeBuilder,
    DEFAULT_STORE, LABEL_PREFIX,
};
pub use error::{Error, Result};
pub use execute::{ExecuteError, ExecuteSpec, ExecutionResult, Network};
pub use image::{Image, ImageError, ImageSource, ImageStore, InstallOptions};
pub use image_container::{default_spec, default_spec_json, ImageRunOptions, WritableLayer};
/// The signals of [`Container::kill`] and [`Process::signal`] (re-exported from `nix`, so that
/// callers need no `nix` dependency of their own).
pub use nix::sys::signal::Signal;
pub use oci_spec;
pub use resources::{Event, Events, Stats};
pub use state::{OciState, Status};
pub use stdio::{Pipes, Stdio, StdioConfig};

/// When this process was started as a container init (husk's private marker in `argv[1]` and
/// the bootstrap socket's descriptor in `argv[2]`), runs the init and
/// never returns. Call it first in `main` of any program that uses [`Runtime`] with its own
/// binary as the init.
pub fn init_if_requested() {
    if husk_init::is_init_invocation() {
        husk_init::main();
    }
}
