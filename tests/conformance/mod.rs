//! The conformance tests, one module per file of the OCI runtime spec:
//!
//! | module | spec file |
//! |---|---|
//! | `runtime` | runtime.md: state, lifecycle (with the hook steps), operations, errors |
//! | `config` | config.md: root, mounts, process, hostname/domainname, hooks, extensibility, valid values |
//! | `config_linux` | config-linux.md: namespaces, id mappings, devices, cgroups and resources, sysctl, seccomp, masked and read-only paths, propagation, personality, mount label |
//! | `runtime_linux` | runtime-linux.md: file descriptors, /dev symlinks |

// Test fixtures write into the tests' own temp dirs; the host-write lint guards husk itself.
#![allow(clippy::disallowed_methods)]

pub mod support;

pub mod config;
pub mod config_linux;
pub mod runtime;
pub mod runtime_linux;

/// Every test, in spec order.
pub fn all_tests() -> Vec<support::Test> {
    let mut tests = runtime::tests();
    tests.extend(config::tests());
    tests.extend(config_linux::tests());
    tests.extend(runtime_linux::tests());
    tests
}
