//! `/proc/<pid>/mountinfo` lines, parsed once for every reader in husk (the init's rootfs setup,
//! the host's cgroup discovery and config checks).
//!
//! The `procfs` crate (a dependency of the host side) parses mountinfo too, but husk cannot use
//! its `MountInfo` as it is:
//! - it leaves the kernel's octal escapes in paths (`\040` for a space, `\012` for a newline), so
//!   a bundle or mount point with a space would never match a path husk compares it with;
//! - it keeps options in a `HashMap`, losing their order (a v1 hierarchy is named by its
//!   controller list, `cpu,cpuacct`, in the kernel's order);
//! - it returns `String`s, which cannot hold a path that is not UTF-8;
//! - the init (this crate) runs before `execve` in every container and carries no procfs parser.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One mount, from one line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry<'a> {
    /// The root field as the kernel wrote it (escaped): see [`MountEntry::root`].
    root_field: &'a str,
    /// Where it is mounted, in the reader's mount namespace.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,relatime`), in the kernel's order.
    pub mount_options: &'a str,
    /// The filesystem type (`proc`, `cgroup2`, ...).
    pub fs_type: &'a str,
    /// Per-superblock options (for a v1 cgroup mount, its controllers), in the kernel's order.
    pub super_options: &'a str,
}

impl<'a> MountEntry<'a> {
    /// Parses one line; `None` for a line that is not a mount (too few fields, no separator).
    pub fn parse(line: &'a str) -> Option<MountEntry<'a>> {
        let (left, right) = line.split_once(" - ")?;
        let mut left = left.split(' ');
        let root = left.nth(3)?;
        let mount_point = left.next()?;
        let mount_options = left.next()?;
        let mut right = right.split(' ');
        let fs_type = right.next()?;
        let _source = right.next()?;
        let super_options = right.next().unwrap_or_default();
        Some(MountEntry {
            root_field: root,
            mount_point: unescape_path(mount_point),
            mount_options,
            fs_type,
            super_options,
        })
    }

    /// The directory of the filesystem shown at the mount point (`/` unless a bind of a
    /// subtree). Unescaped on demand: the init's readers look only at mount points.
    pub fn root(&self) -> PathBuf {
        unescape_path(self.root_field)
    }

    /// Every mount of a whole mountinfo text, in its order (lines that do not parse are skipped).
    pub fn all(text: &'a str) -> impl Iterator<Item = MountEntry<'a>> + 'a {
        text.lines().filter_map(MountEntry::parse)
    }
}

/// Undoes the kernel's octal escapes of a mountinfo path field (`\040` for a space, ...),
/// keeping bytes that are not UTF-8 as they are.
pub fn unescape_path(field: &str) -> PathBuf {
    if !field.contains('\\') {
        return PathBuf::from(field);
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = &bytes[i + 1..i + 4];
            if octal.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let value = octal
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_unescapes_paths() {
        let line = "36 25 0:31 /sub /sys/fs/cgroup/cpu\\054cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct";
        let entry = MountEntry::parse(line).unwrap();
        assert_eq!(entry.root(), PathBuf::from("/sub"));
        assert_eq!(
            entry.mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(entry.mount_options, "rw,nosuid");
        assert_eq!(entry.fs_type, "cgroup");
        assert_eq!(entry.super_options, "rw,cpu,cpuacct");
    }

    #[test]
    fn unescapes_spaces_and_keeps_other_bytes() {
        assert_eq!(unescape_path("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_path("/tail\\04"), PathBuf::from("/tail\\04"));
        assert_eq!(
            unescape_path("/x\\377").into_os_string().into_vec(),
            b"/x\xff".to_vec()
        );
    }

    #[test]
    fn skips_lines_that_are_not_mounts() {
        assert_eq!(MountEntry::all("garbage\n\n1 2 3\n").count(), 0);
    }
}
