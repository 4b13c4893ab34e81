//! Building `linux.seccomp` into a BPF program on the host, once per profile and process.
//!
//! libseccomp takes about a millisecond to turn a runtime-default-sized profile into a program
//! (1.1 ms for the hardened profile on the test machine), the largest piece of user-space work
//! in a container start. The init used to do it in every container; the runtime now builds the
//! filter before it spawns the init and sends the program in the bootstrap, so a program that
//! embeds husk and starts many containers with one profile (`Runtime::execute`, a container
//! manager) builds it once. The cache is keyed by the profile's JSON and holds a few profiles;
//! the program depends on nothing else but this process's libseccomp and kernel.
//!
//! A profile libseccomp refuses fails the create before anything is spawned, with the same
//! step, errno and text the init used to report.

use std::sync::Mutex;

use husk_init::security::SeccompFilter;
use oci_spec::runtime::LinuxSeccomp;

use crate::error::{Error, Result};

/// Profiles kept; the oldest goes first.
const KEPT: usize = 8;

type Cache = Vec<(String, SeccompFilter)>;

static CACHE: Mutex<Cache> = Mutex::new(Vec::new());

/// The filter for `profile`, built now or taken from the cache.
pub(crate) fn filter(profile: &LinuxSeccomp) -> Result<SeccompFilter> {
    let key = serde_json::to_string(profile)
        .map_err(|e| Error::config("linux.seccomp", e.to_string()))?;
    if let Some(found) = lock().iter().find(|(k, _)| *k == key) {
        return Ok(found.1.clone());
    }
    // Built outside the lock: another thread's create does not wait for this one's.
    let built = husk_init::security::build_filter(profile)
        .map_err(|e| Error::Init(e.failure("build seccomp filter")))?;
    let mut cache = lock();
    if !cache.iter().any(|(k, _)| *k == key) {
        if cache.len() == KEPT {
            cache.remove(0);
        }
        cache.push((key, built.clone()));
    }
    Ok(built)
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    // A panic while holding the lock cannot leave an entry half-made: push is the only write.
    CACHE.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(errno: u32) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
        }))
        .unwrap()
    }

    fn wire(f: &SeccompFilter) -> String {
        serde_json::to_string(f).unwrap()
    }

    #[test]
    fn a_profile_is_built_once_and_a_different_one_is_not_mixed_up() {
        let first = filter(&profile(1)).unwrap();
        let again = filter(&profile(1)).unwrap();
        assert_eq!(wire(&first), wire(&again));
        let other = filter(&profile(2)).unwrap();
        assert_ne!(
            wire(&first),
            wire(&other),
            "errno 2 must not reuse errno 1's program"
        );
        let built = husk_init::security::build_filter(&profile(2)).unwrap();
        assert_eq!(wire(&other), wire(&built));
    }

    #[test]
    fn the_wire_form_round_trips() {
        let f = filter(&profile(3)).unwrap();
        let back: SeccompFilter = serde_json::from_str(&wire(&f)).unwrap();
        assert_eq!(wire(&f), wire(&back));
        assert!(!back.uses_notify());
    }

    #[test]
    fn a_refused_profile_names_the_step() {
        let bad: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]
        }))
        .unwrap();
        let err = filter(&bad).unwrap_err().to_string();
        assert!(err.contains("build seccomp filter"), "{err}");
        assert!(err.contains("index 9"), "{err}");
    }
}
