//! Where the traced binary's code lies in a process: its executable mappings in
//! /proc/PID/maps, and the load bias that turns their addresses into link-time ones.
//!
//! A mapping counts as the binary when it is the same file (device and inode) or a file with
//! the same contents: husk re-executes itself from a sealed memfd copy
//! (`/memfd:husk-init (deleted)`), and that code is the binary's too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::elf::{self, LoadSegment};

/// Runtime addresses `start..end` hold the binary's code; link-time address = runtime - `bias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRange {
    pub start: u64,
    pub end: u64,
    pub bias: u64,
}

impl TextRange {
    /// The link-time address of runtime address `address`, if this range holds it.
    pub fn link_address(&self, address: u64) -> Option<u64> {
        (self.start..self.end)
            .contains(&address)
            .then(|| address - self.bias)
    }
}

/// One line of /proc/PID/maps.
#[derive(Debug, PartialEq, Eq)]
pub struct MapsEntry<'a> {
    pub start: u64,
    pub end: u64,
    /// `start-end` as the kernel wrote it: the name of the entry in /proc/PID/map_files.
    pub range: &'a str,
    pub executable: bool,
    pub offset: u64,
    pub device: &'a str,
    pub inode: u64,
    /// Empty for anonymous memory; may contain spaces and end in " (deleted)".
    pub path: &'a str,
}

pub fn parse_maps_line(line: &str) -> Option<MapsEntry<'_>> {
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start();
        let (value, after) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        rest = after;
        value
    };
    let range = field();
    let perms = field();
    let offset = field();
    let device = field();
    let inode = field();
    let (start, end) = range.split_once('-')?;
    Some(MapsEntry {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        range,
        executable: perms.as_bytes().get(2) == Some(&b'x'),
        offset: u64::from_str_radix(offset, 16).ok()?,
        device,
        inode: inode.parse().ok()?,
        path: rest.trim_start(),
    })
}

/// The binary whose code is traced.
pub struct TargetBinary {
    path: PathBuf,
    canonical: PathBuf,
    contents: Vec<u8>,
    device: u64,
    inode: u64,
    segments: Vec<LoadSegment>,
    first_page_vaddr: u64,
}

impl TargetBinary {
    pub fn open(path: &Path) -> Result<Self, String> {
        let what = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let canonical = path.canonicalize().map_err(|e| what(&e))?;
        let meta = std::fs::metadata(&canonical).map_err(|e| what(&e))?;
        let contents = std::fs::read(&canonical).map_err(|e| what(&e))?;
        let segments = elf::load_segments(&contents).map_err(|e| what(&e))?;
        let first_page_vaddr = elf::first_page_vaddr(&segments).map_err(|e| what(&e))?;
        Ok(TargetBinary {
            path: path.to_path_buf(),
            canonical,
            contents,
            device: meta.dev(),
            inode: meta.ino(),
            segments,
            first_page_vaddr,
        })
    }

    pub fn segments(&self) -> &[LoadSegment] {
        &self.segments
    }

    /// Where the binary's code is mapped in process `pid`; empty when it is not (or the
    /// process is gone).
    pub fn text_ranges(&self, pid: i32) -> Result<Vec<TextRange>, String> {
        match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            Ok(maps) => self.text_ranges_in(pid, &maps),
            // Killed (SIGKILL) while stopped: its exit is reported next.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(Vec::new()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!("reading /proc/{pid}/maps: {e}")),
        }
    }

    fn text_ranges_in(&self, pid: i32, maps: &str) -> Result<Vec<TextRange>, String> {
        let entries: Vec<MapsEntry> = maps.lines().filter_map(parse_maps_line).collect();
        let mut ranges = Vec::new();
        for entry in &entries {
            if !entry.executable || entry.inode == 0 || !entry.path.starts_with('/') {
                continue;
            }
            if !self.is_this_binary(pid, entry)? {
                continue;
            }
            // The load base: where the same file's first page (offset 0) is mapped.
            let base = entries
                .iter()
                .find(|e| e.device == entry.device && e.inode == entry.inode && e.offset == 0)
                .ok_or_else(|| {
                    format!(
                        "process {pid} maps {} at {} but not its first page",
                        self.path.display(),
                        entry.range
                    )
                })?;
            let bias = base.start.wrapping_sub(self.first_page_vaddr);
            let expected = elf::text_vaddr_of_offset(&self.segments, entry.offset);
            if expected != Some(entry.start.wrapping_sub(bias)) {
                return Err(format!(
                    "process {pid} maps {} code at {} (file offset {:#x}, base {:#x}), which does \
                     not fit its program headers",
                    self.path.display(),
                    entry.range,
                    entry.offset,
                    base.start
                ));
            }
            ranges.push(TextRange {
                start: entry.start,
                end: entry.end,
                bias,
            });
        }
        Ok(ranges)
    }

    fn is_this_binary(&self, pid: i32, entry: &MapsEntry) -> Result<bool, String> {
        let file = format!("/proc/{pid}/map_files/{}", entry.range);
        let meta = match std::fs::metadata(&file) {
            Ok(meta) => meta,
            // map_files needs CAP_SYS_ADMIN: without it, only the path can tell.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Ok(Path::new(entry.path) == self.canonical)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(format!("{file}: {e}")),
        };
        if (meta.dev(), meta.ino()) == (self.device, self.inode) {
            return Ok(true);
        }
        if meta.len() != self.contents.len() as u64 {
            return Ok(false);
        }
        match std::fs::read(&file) {
            Ok(copy) => Ok(copy == self.contents),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("{file}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let line = "7ffff7c28000-7ffff7dbd000 r-xp 00028000 08:01 1835082                    /usr/lib/x86_64-linux-gnu/libc.so.6";
        assert_eq!(
            parse_maps_line(line),
            Some(MapsEntry {
                start: 0x7ffff7c28000,
                end: 0x7ffff7dbd000,
                range: "7ffff7c28000-7ffff7dbd000",
                executable: true,
                offset: 0x28000,
                device: "08:01",
                inode: 1835082,
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6",
            })
        );
        let memfd = parse_maps_line(
            "555555554000-55555559a000 r--p 00000000 00:01 2061 /memfd:husk-init (deleted)",
        )
        .unwrap();
        assert_eq!(memfd.path, "/memfd:husk-init (deleted)");
        assert!(!memfd.executable);
        let anonymous = parse_maps_line("7ffff7fb9000-7ffff7fbd000 rw-p 00000000 00:00 0").unwrap();
        assert_eq!((anonymous.path, anonymous.inode), ("", 0));
        assert_eq!(parse_maps_line(""), None);
        assert_eq!(parse_maps_line("zz-1 r-xp 0 0:0 0"), None);
    }

    /// This test process's own code: the range found for its binary holds the running code,
    /// and the link-time address of a function is what the symbol table says.
    #[test]
    fn finds_this_process_text() {
        let exe = std::env::current_exe().unwrap();
        let target = TargetBinary::open(&exe).unwrap();
        let pid = std::process::id() as i32;
        let ranges = target.text_ranges(pid).unwrap();
        assert!(
            !ranges.is_empty(),
            "no text range of {exe:?} in our own maps"
        );

        let runtime = finds_this_process_text as fn() as usize as u64;
        let link = ranges
            .iter()
            .find_map(|r| r.link_address(runtime))
            .expect("this function's address in a text range");
        let symbols = crate::symbols::SymbolTable::from_binary(&exe).unwrap();
        let symbol = symbols
            .lookup(link)
            .expect("a symbol at this function's address");
        assert!(
            symbol.name.contains("finds_this_process_text"),
            "{link:#x} resolved to {symbol:?}"
        );
    }

    /// A byte-identical copy at another path is the binary too (husk's sealed memfd copy).
    #[test]
    fn a_copy_counts_but_another_binary_does_not() {
        let exe = std::env::current_exe().unwrap();
        let dir = std::env::temp_dir().join(format!("husk-hotpath-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("copy");
        let bytes = std::fs::read(&exe).unwrap();
        #[allow(clippy::disallowed_methods)] // a test's own temp file, not a host file of husk
        std::fs::write(&copy, &bytes).unwrap();
        let target = TargetBinary::open(&copy);
        let other = TargetBinary::open(Path::new("/bin/sh"));
        std::fs::remove_dir_all(&dir).unwrap();

        let pid = std::process::id() as i32;
        assert!(!target.unwrap().text_ranges(pid).unwrap().is_empty());
        assert!(other.unwrap().text_ranges(pid).unwrap().is_empty());
    }
}
