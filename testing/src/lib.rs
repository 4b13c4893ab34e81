//! `husk-testing`: a harness for root-privileged tests of OCI container runtimes.
//!
//! It drives any runtime that speaks runc's command line (husk, runc, crun, ...) and knows nothing about
//! how the runtime works inside. A test typically:
//!
//! 1. calls [`Runtime::from_env`] (which also calls [`require_root`]) to pick the runtime binary and a private
//!    state directory (`--root`) that no other test or tool shares;
//! 2. builds a [`Bundle`]: a temporary directory holding a copy of a small root filesystem and a `config.json`
//!    produced by the runtime's own `spec` command, then edited through a fluent API;
//! 3. creates a container and holds a [`ContainerGuard`] for it, so that `delete --force` runs even when the test
//!    panics;
//! 4. checks effects *from inside* the container: the container's process prints to its standard output (read back
//!    from [`Runtime::run_bundle`]) or writes files into [`Bundle::shared_dir`], a host directory bind-mounted into the
//!    container.
//!
//! Environment variables:
//! - `HUSK_TEST_RUNTIME`: path of the runtime binary (the test passes a default, usually its own
//!   `env!("CARGO_BIN_EXE_<name>")`);
//! - `HUSK_ROOTFS`: the root filesystem copied into every bundle (see [`default_rootfs`]).
//!
//! Everything the harness creates on the host (state root, bundles, temporary directories) is removed when the owning
//! value is dropped. Directories are never removed while something is still mounted below them: the harness reports
//! such leftovers instead of deleting through a mount.
//!
//! ```no_run
//! use husk_testing::{Bundle, OutputExt, Runtime};
//!
//! let rt = Runtime::from_env("/usr/sbin/runc");
//! let bundle = Bundle::new(&rt).args(["sh", "-c", "hostname"]).hostname("box");
//! let out = rt.run_bundle(&bundle);
//! assert_eq!(out.stdout_str().trim(), "box");
//! ```

#![deny(missing_docs)]
// Test fixtures live in the harness's own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

mod bundle;
pub mod cgroups;
pub mod images;
mod process;
mod runtime;
mod tempdir;
mod util;

pub use bundle::{default_rootfs, Bundle, HookKind, SHARED_DIR_IN_CONTAINER};
pub use process::{run_with_timeout, OutputExt, Spawned};
pub use runtime::{ContainerGuard, Runtime, DEFAULT_TIMEOUT};
pub use tempdir::{mounts_under, HostMount, TempDir};
pub use util::{
    existing_cgroups, host_namespace_inode, is_child, is_gone, namespace_inode, require_root,
    unique_id, wait_for, write_script, zombie_children, NamespaceHolder,
};
