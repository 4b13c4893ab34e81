//! Conversions of v1-style OCI values to what cgroup v2 files take.
//!
//! The OCI spec describes resources in cgroup v1 terms; on v2 they are translated the way runc
//! documents it (runc `docs/cgroup-v2.md`), so a bundle gives the same result under either runtime.

use super::CgroupError;

/// v1 `cpu.shares` range.
const SHARES_MIN: u64 = 2;
const SHARES_MAX: u64 = 262_144;

/// `cpu.shares` (v1, 2..=262144, default 1024) → `cpu.weight` (v2, 1..=10000, default 100):
/// `weight = 1 + ((shares - 2) * 9999) / 262142`.
///
/// Shares outside the v1 range are clamped first, as the v1 kernel does when they are written.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(SHARES_MIN, SHARES_MAX);
    1 + ((shares - SHARES_MIN) * 9999) / (SHARES_MAX - SHARES_MIN)
}

/// `blkio.weight` (v1, 10..=1000) → `io.weight` (v2, 1..=10000):
/// `weight = 1 + ((blkio_weight - 10) * 9999) / 990`.
pub fn blkio_weight_to_io_weight(field: &str, weight: u16) -> Result<u64, CgroupError> {
    if !(10..=1000).contains(&weight) {
        return Err(CgroupError::InvalidValue {
            field: field.to_owned(),
            reason: format!("{weight} is outside the blkio weight range 10..=1000"),
        });
    }
    Ok(1 + ((u64::from(weight) - 10) * 9999) / 990)
}

/// What to write to `memory.swap.max` for OCI `memory.swap` (which counts memory + swap, as v1's
/// `memory.memsw.limit_in_bytes` does), given `memory.limit`. `None` means leave the file alone.
///
/// * swap `-1` → `max`; swap absent or `0` → unset, except that an unlimited memory with no
///   swap given makes swap unlimited too (v1 behaves so);
/// * with an unlimited memory the swap value is taken as is;
/// * otherwise `swap - limit`, which needs a memory limit no larger than swap.
pub fn memory_swap_to_v2(
    swap: Option<i64>,
    limit: Option<i64>,
) -> Result<Option<String>, CgroupError> {
    let field = "linux.resources.memory.swap";
    match (swap, limit) {
        (None | Some(0), Some(-1)) => Ok(Some("max".into())),
        (None | Some(0), _) => Ok(None),
        (Some(-1), _) => Ok(Some("max".into())),
        (Some(swap), _) if swap < 0 => Err(CgroupError::InvalidValue {
            field: field.into(),
            reason: format!("{swap} is negative (only -1, unlimited, is allowed)"),
        }),
        (Some(swap), Some(-1)) => Ok(Some(swap.to_string())),
        (Some(swap), None | Some(0)) => Err(CgroupError::InvalidValue {
            field: field.into(),
            reason: format!(
                "{swap} counts memory plus swap; cgroup v2 needs linux.resources.memory.limit \
                 to work out the swap part"
            ),
        }),
        (Some(swap), Some(limit)) if limit < 0 || swap < limit => Err(CgroupError::InvalidValue {
            field: field.into(),
            reason: format!("{swap} (memory plus swap) is below the memory limit {limit}"),
        }),
        (Some(swap), Some(limit)) => Ok(Some((swap - limit).to_string())),
    }
}

/// A byte / count limit where `-1` (any negative) means unlimited, as v2 `*.max` files take it.
pub fn limit_to_v2(value: i64) -> String {
    if value < 0 {
        "max".into()
    } else {
        value.to_string()
    }
}

/// `cpu.max` content for OCI `cpu.quota` / `cpu.period`; `current_quota` is the quota part of the
/// file now, kept when only the period changes. `None`: nothing to write.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>, current_quota: &str) -> Option<String> {
    let quota = match quota {
        Some(q) if q > 0 => q.to_string(),
        Some(_) => "max".to_owned(),
        None if period.is_some() => current_quota.to_owned(),
        None => return None,
    };
    Some(match period {
        Some(period) => format!("{quota} {period}"),
        None => quota,
    })
}

/// v2 `io.max` value for a throttle rate; v1 takes 0 as "no limit", v2 spells it `max`.
pub fn io_max_rate(rate: u64) -> String {
    if rate == 0 {
        "max".into()
    } else {
        rate.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_shares_convert_with_runc_formula() {
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        // Out of range values are clamped the way the v1 kernel clamps them.
        assert_eq!(cpu_shares_to_weight(1), 1);
        assert_eq!(cpu_shares_to_weight(1_000_000), 10_000);
        // 1 + ((512 - 2) * 9999) / 262142 = 1 + 19.45.. → 20
        assert_eq!(cpu_shares_to_weight(512), 20);
    }

    #[test]
    fn blkio_weight_converts_and_checks_range() {
        assert_eq!(blkio_weight_to_io_weight("f", 10).unwrap(), 1);
        assert_eq!(blkio_weight_to_io_weight("f", 1000).unwrap(), 10_000);
        assert_eq!(
            blkio_weight_to_io_weight("f", 500).unwrap(),
            1 + 490 * 9999 / 990
        );
        assert!(blkio_weight_to_io_weight("f", 9).is_err());
        assert!(blkio_weight_to_io_weight("f", 1001).is_err());
    }

    #[test]
    fn memory_swap_subtracts_memory_limit() {
        let mib = 1 << 20;
        assert_eq!(
            memory_swap_to_v2(Some(300 * mib), Some(100 * mib)).unwrap(),
            Some((200 * mib).to_string())
        );
        assert_eq!(
            memory_swap_to_v2(Some(-1), Some(mib)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(
            memory_swap_to_v2(None, Some(-1)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(
            memory_swap_to_v2(Some(0), Some(-1)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(
            memory_swap_to_v2(Some(5), Some(-1)).unwrap().as_deref(),
            Some("5")
        );
        assert_eq!(memory_swap_to_v2(None, Some(mib)).unwrap(), None);
        assert_eq!(
            memory_swap_to_v2(Some(mib), Some(mib)).unwrap().as_deref(),
            Some("0")
        );
    }

    #[test]
    fn memory_swap_rejects_what_cannot_be_converted() {
        assert!(memory_swap_to_v2(Some(100), None).is_err());
        assert!(memory_swap_to_v2(Some(100), Some(200)).is_err());
        assert!(memory_swap_to_v2(Some(-5), Some(200)).is_err());
    }

    #[test]
    fn cpu_max_keeps_quota_when_only_period_changes() {
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000), "max").as_deref(),
            Some("50000 100000")
        );
        assert_eq!(cpu_max(Some(-1), None, "20000").as_deref(), Some("max"));
        assert_eq!(
            cpu_max(None, Some(200_000), "20000").as_deref(),
            Some("20000 200000")
        );
        assert_eq!(cpu_max(None, None, "20000"), None);
    }

    #[test]
    fn v2_limits_spell_unlimited_as_max() {
        assert_eq!(limit_to_v2(-1), "max");
        assert_eq!(limit_to_v2(42), "42");
        assert_eq!(io_max_rate(0), "max");
        assert_eq!(io_max_rate(1048576), "1048576");
    }
}
