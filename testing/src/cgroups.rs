//! Cgroup helpers for tests that check v1 semantics on a v1 host and v2 semantics on a v2 host.
