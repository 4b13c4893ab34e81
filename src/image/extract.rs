//! Safe extraction of tar streams (image layers, and the archives images come in), and the
//! flattening of extracted layers into one tree.
//!
//! # Why not `tar::Entry::unpack_in`
//!
//! The `tar` crate parses the archive here (headers, GNU long names, PAX records), but it does
//! not write the files. Its `unpack_in` (tar 0.4.46) checks paths as strings and then acts on
//! the same strings:
//! - an entry with a `..` component is silently skipped and an absolute one silently made
//!   relative, where an image store must refuse the archive and say which entry is bad;
//! - it creates missing parent directories with `create_dir_all` *before* it checks that the
//!   parent is inside the target, and that check canonicalizes the path, following symlinks: an
//!   earlier entry `evil -> /outside` and a later `evil/new/file` make `/outside/new` on the
//!   host before the error, and a symlink that stays inside the target is followed, where the
//!   store refuses any path through a symlink;
//! - every check is a lookup followed by a second lookup of the same string to act (TOCTOU);
//! - it knows nothing of OCI whiteouts and opaque directories, which must become overlayfs's
//!   whiteouts (a 0/0 character device) and `trusted.overlay.opaque` for per-layer trees.
//!
//! So each entry here is created relative to a directory descriptor: the parent is reached one
//! component at a time with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`, the entry is made with `mkdirat`, `openat(O_CREAT |
//! O_EXCL | O_NOFOLLOW)`, `symlinkat`, `linkat` or `mknodat` on that descriptor, and its
//! metadata is set through the new file's own descriptor where there is one. Nothing is ever
//! looked up by a path that a symlink could redirect, so a refused entry writes nothing outside.
//! Symlinks themselves are stored as they are (an absolute target is normal in an image: it
//! resolves inside the container's root); the extractor never follows one.
//!
//! Extraction always goes into a fresh private temporary directory of the store (mode 0700,
//! owned by root), which is renamed into place only when complete.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io::{self, BufRead, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use sha2::{Digest, Sha256};

use super::error::IoContext;
use super::ImageError;

/// The xattr overlayfs reads to make a directory opaque (hide the lower layers' entries).
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// OCI whiteout prefix, and the opaque-directory marker.
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;

/// What an archive is, which decides what its entries may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An image layer (or a root filesystem tar): every entry type, owners, modes, xattrs, and
    /// OCI whiteouts turned into overlayfs whiteouts.
    Layer,
    /// The archive an image comes in (an OCI layout or `docker save` tar): only directories,
    /// regular files, symlinks and hard links, all owned by root, no xattrs, no devices.
    Container,
}

/// What an extraction found.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Bytes of regular file content.
    pub size: u64,
    /// Whether the layer has whiteouts or opaque directories (so it cannot serve as a rootfs
    /// on its own).
    pub whiteouts: bool,
}

/// Opens one component (or a relative path without `..`) beneath `dir`, refusing symlinks,
/// magic links and mount crossings.
pub(crate) fn open_beneath(dir: BorrowedFd<'_>, name: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    husk_init::sys::openat2_resolve(
        dir,
        name,
        (flags | OFlag::O_CLOEXEC).bits(),
        husk_init::sys::RESOLVE_BENEATH
            | husk_init::sys::RESOLVE_NO_SYMLINKS
            | RESOLVE_NO_MAGICLINKS
            | husk_init::sys::RESOLVE_NO_XDEV,
    )
}

/// Opens a directory by path (the store's own directories, or the caller's source).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Splits an entry path into its components: `.` and empty components (`a//b`, `./a`, a
/// trailing `/`) are dropped; an absolute path or a `..` component is refused.
pub(crate) fn components(raw: &[u8]) -> Result<Vec<&OsStr>, &'static str> {
    if raw.starts_with(b"/") {
        return Err("absolute path");
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("`..` component: it would land outside the target"),
            _ => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

/// `fsetxattr` on an open file.
fn fsetxattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: the pointers are valid for the lengths given for the duration of the call.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `lsetxattr` on `name` in the directory `dir` (for entries that cannot be opened safely:
/// device nodes, fifos). The path goes through our own descriptor's /proc link; the directory
/// is the store's private temporary tree, which nothing else writes.
fn setxattr_at(dir: BorrowedFd<'_>, name: &OsStr, xattr: &str, value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.as_bytes());
    let path = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let xattr = CString::new(xattr).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: the pointers are valid for the lengths given for the duration of the call.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            xattr.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The names of an open file's xattrs.
fn flistxattr(fd: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: `buf` is valid for its length for the duration of the call.
        let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < (1 << 20) {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            return Err(e);
        }
        buf.truncate(n as usize);
        return Ok(buf
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .filter_map(|n| CString::new(n).ok())
            .collect());
    }
}

/// One xattr's value on an open file.
fn fgetxattr(fd: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: `buf` is valid for its length for the duration of the call.
        let n = unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < (1 << 20) {
                buf.resize(buf.len() * 4, 0);
                continue;
            }
            return Err(e);
        }
        buf.truncate(n as usize);
        return Ok(buf);
    }
}

fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<nix::sys::stat::FileStat> {
    nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn is_whiteout(st: &nix::sys::stat::FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

/// Removes `name` from `dir`, whatever it is (a directory with all its content).
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EISDIR) => {
            let sub = open_beneath(
                dir,
                Path::new(name),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            )?;
            empty_dir(sub.as_fd())?;
            nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::RemoveDir,
            )
            .map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// The names in a directory (without `.` and `..`).
fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let fd = open_beneath(dir, Path::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    let mut d = nix::dir::Dir::from(fd)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(names)
}

/// Removes everything in a directory.
fn empty_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    for name in list(dir)? {
        remove_at(dir, &name)?;
    }
    Ok(())
}

/// Reads the whole of a stream into a sink (to finish a digest over its tail).
pub(crate) fn drain(r: &mut impl Read) -> io::Result<u64> {
    io::copy(r, &mut io::sink())
}

/// A reader that computes the sha256 and the length of what passes through it.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// `sha256:<hex>` of everything read so far.
    pub(crate) fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Bytes read so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// `sha256:<hex>` of a byte string.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The compression of a stream, told by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Looks at the first bytes of `r` without consuming them.
pub(crate) fn sniff(r: &mut impl BufRead) -> io::Result<Compression> {
    let head = r.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// A decompressing reader over `r`, by its magic bytes.
pub(crate) fn decompress<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match sniff(&mut r)? {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::None => Box::new(r),
    })
}

/// Extracts the tar stream `reader` into the directory `root`.
///
/// `what` names the archive in errors. `lowers` are the extracted trees of the layers below
/// (bottom first), where a hard link may find a target this layer does not have.
pub(crate) fn extract(
    root: BorrowedFd<'_>,
    reader: impl Read,
    what: &str,
    kind: Kind,
    lowers: &[OwnedFd],
) -> Result<Summary, ImageError> {
    let mut x = Extractor {
        root,
        what,
        kind,
        lowers,
        dirs: Vec::new(),
        summary: Summary::default(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| ImageError::format(what, format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| ImageError::format(what, format!("corrupt tar archive: {e}")))?;
        x.entry(&mut entry)?;
    }
    // Directory mtimes last: creating their entries changed them.
    for (comps, mtime) in std::mem::take(&mut x.dirs).into_iter().rev() {
        let path: PathBuf = comps.iter().collect();
        let fd = if comps.is_empty() {
            open_beneath(root, Path::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        } else {
            open_beneath(
                root,
                &path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            )
        };
        // A directory that a later entry replaced is gone: nothing to date.
        let Ok(fd) = fd else { continue };
        let t = TimeSpec::new(mtime, 0);
        nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t)
            .ctx(|| format!("{what}: set the mtime of {}", path.display()))?;
    }
    Ok(x.summary)
}

struct Extractor<'a> {
    root: BorrowedFd<'a>,
    what: &'a str,
    kind: Kind,
    lowers: &'a [OwnedFd],
    /// Directories and their mtimes, set at the end.
    dirs: Vec<(Vec<OsString>, i64)>,
    summary: Summary,
}

/// An entry's metadata from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Extractor<'_> {
    fn refuse(&self, entry: &str, reason: impl Into<String>) -> ImageError {
        ImageError::Entry {
            archive: self.what.to_string(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        use tar::EntryType as T;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let etype = entry.header().entry_type();
        if matches!(
            etype,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            return Ok(());
        }
        let comps = components(&raw).map_err(|r| self.refuse(&shown, r))?;
        // The files of an image's archive are only read by the store: their metadata is not
        // kept (nor parsed).
        let meta = match self.kind {
            Kind::Layer => self.meta(entry, &shown)?,
            Kind::Container => Meta {
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Vec::new(),
            },
        };
        let Some((name, parents)) = comps.split_last() else {
            // The archive's root (`./`): its metadata goes to the target directory.
            if etype == T::Directory && self.kind == Kind::Layer {
                self.set_meta(self.root, &meta, &shown)?;
                self.dirs.push((Vec::new(), meta.mtime));
            }
            return Ok(());
        };
        let name: &OsStr = name;
        let parent = self.dir_for(parents, true, &shown)?;
        let parent = parent.as_fd();

        let name_bytes = name.as_bytes();
        if self.kind == Kind::Layer && name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parent, name_bytes, &shown);
        }
        let what = self.what;
        let ctx = |op: &str| format!("{what}: {op} {shown}");
        match etype {
            T::Directory => {
                match fstatat_nofollow(parent, name) {
                    Ok(st) if is_dir(&st) => {}
                    Ok(_) => {
                        remove_at(parent, name).ctx(|| ctx("replace"))?;
                        self.mkdir(parent, name, &shown)?;
                    }
                    Err(Errno::ENOENT) => self.mkdir(parent, name, &shown)?,
                    Err(e) => return Err(e).ctx(|| ctx("stat")),
                }
                let fd = open_beneath(
                    parent,
                    Path::new(name),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                )
                .ctx(|| ctx("open directory"))?;
                if self.kind == Kind::Layer {
                    self.set_meta(fd.as_fd(), &meta, &shown)?;
                }
                let mut path: Vec<OsString> = parents.iter().map(|c| c.to_os_string()).collect();
                path.push(name.to_os_string());
                self.dirs.push((path, meta.mtime));
            }
            T::Regular | T::Continuous => {
                self.clear(parent, name, &shown)?;
                let fd = nix::fcntl::openat(
                    Some(parent.as_raw_fd()),
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .ctx(|| ctx("create"))?;
                // SAFETY: openat returned a new descriptor that nothing else owns.
                let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                let n = io::copy(entry, &mut file).ctx(|| ctx("write"))?;
                self.summary.size += n;
                match self.kind {
                    Kind::Layer => self.set_meta(file.as_fd(), &meta, &shown)?,
                    Kind::Container => {
                        nix::sys::stat::fchmod(file.as_raw_fd(), Mode::from_bits_truncate(0o644))
                            .ctx(|| ctx("chmod"))?
                    }
                }
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| self.refuse(&shown, "symlink without a target"))?;
                self.clear(parent, name, &shown)?;
                nix::unistd::symlinkat(OsStr::from_bytes(&target), Some(parent.as_raw_fd()), name)
                    .ctx(|| ctx("symlink"))?;
                if self.kind == Kind::Layer {
                    self.set_meta_at(parent, name, &meta, &shown, true)?;
                }
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .ok_or_else(|| self.refuse(&shown, "hard link without a target"))?;
                self.hard_link(parent, name, &target, &shown)?;
            }
            T::Char | T::Block | T::Fifo if self.kind == Kind::Layer => {
                let (kind, dev) = match etype {
                    T::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                        let kind = if etype == T::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (kind, nix::sys::stat::makedev(major.into(), minor.into()))
                    }
                };
                self.clear(parent, name, &shown)?;
                nix::sys::stat::mknodat(
                    Some(parent.as_raw_fd()),
                    name,
                    kind,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .ctx(|| ctx("mknod"))?;
                self.set_meta_at(parent, name, &meta, &shown, false)?;
            }
            other => {
                return Err(self.refuse(
                    &shown,
                    format!("entry type {other:?} is not supported here"),
                ))
            }
        }
        Ok(())
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<Meta, ImageError> {
        let bad = |field: &str| self.refuse(shown, format!("unreadable {field} in the header"));
        let h = entry.header();
        let mut meta = Meta {
            mode: h.mode().map_err(|_| bad("mode"))? & 0o7777,
            uid: u32::try_from(h.uid().map_err(|_| bad("uid"))?).map_err(|_| bad("uid"))?,
            gid: u32::try_from(h.gid().map_err(|_| bad("gid"))?).map_err(|_| bad("gid"))?,
            mtime: i64::try_from(h.mtime().map_err(|_| bad("mtime"))?).unwrap_or(0),
            xattrs: Vec::new(),
        };
        let what = self.what;
        if let Some(pax) = entry
            .pax_extensions()
            .ctx(|| format!("{what}: read the PAX records of {shown}"))?
        {
            for ext in pax {
                let ext = ext.map_err(|_| self.refuse(shown, "malformed PAX record"))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                let number = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split('.').next())
                        .and_then(|v| v.parse::<i64>().ok())
                };
                match key {
                    "uid" => {
                        meta.uid = number()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| bad("PAX uid"))?
                    }
                    "gid" => {
                        meta.gid = number()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| bad("PAX gid"))?
                    }
                    "mtime" => meta.mtime = number().ok_or_else(|| bad("PAX mtime"))?,
                    _ => {
                        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                            meta.xattrs.push((name.to_string(), value.to_vec()));
                        }
                    }
                }
            }
        }
        // overlayfs's own xattrs would change what an overlay of the layers shows (redirects,
        // metacopy, whiteouts): only the store sets them, from OCI whiteouts.
        meta.xattrs
            .retain(|(n, _)| !n.starts_with("trusted.overlay."));
        Ok(meta)
    }

    /// Owner, mode, xattrs and (for files) mtime, through the file's descriptor. The order
    /// matters: chown clears setuid bits and `security.capability`.
    fn set_meta(&self, fd: BorrowedFd<'_>, meta: &Meta, shown: &str) -> Result<(), ImageError> {
        let what = self.what;
        let ctx = |op: &str| format!("{what}: {op} {shown}");
        nix::unistd::fchown(fd.as_raw_fd(), Some(meta.uid.into()), Some(meta.gid.into()))
            .ctx(|| ctx("chown"))?;
        nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(meta.mode))
            .ctx(|| ctx("chmod"))?;
        for (name, value) in &meta.xattrs {
            fsetxattr(fd, name, value).ctx(|| ctx(&format!("set xattr {name} on")))?;
        }
        let t = TimeSpec::new(meta.mtime, 0);
        nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t).ctx(|| ctx("set the mtime of"))?;
        Ok(())
    }

    /// Metadata of an entry that cannot be opened (symlink, device, fifo), by name in `dir`.
    fn set_meta_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        shown: &str,
        symlink: bool,
    ) -> Result<(), ImageError> {
        let what = self.what;
        let ctx = |op: &str| format!("{what}: {op} {shown}");
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name,
            Some(meta.uid.into()),
            Some(meta.gid.into()),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(|| ctx("chown"))?;
        if !symlink {
            // The caller just made this device node or fifo in the private tree.
            nix::sys::stat::fchmodat(
                Some(dir.as_raw_fd()),
                name,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .ctx(|| ctx("chmod"))?;
        }
        for (x, value) in &meta.xattrs {
            // On a symlink the kernel takes trusted.* and security.* only (a user.* one is
            // EPERM, as for GNU tar, which leaves it out too).
            let kept_on_a_symlink = x.starts_with("trusted.") || x.starts_with("security.");
            if symlink && !kept_on_a_symlink {
                continue;
            }
            setxattr_at(dir, name, x, value).ctx(|| ctx(&format!("set xattr {x} on")))?;
        }
        let t = TimeSpec::new(meta.mtime, 0);
        nix::sys::stat::utimensat(
            Some(dir.as_raw_fd()),
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .ctx(|| ctx("set the mtime of"))?;
        Ok(())
    }

    fn mkdir(&self, parent: BorrowedFd<'_>, name: &OsStr, shown: &str) -> Result<(), ImageError> {
        nix::sys::stat::mkdirat(
            Some(parent.as_raw_fd()),
            name,
            Mode::from_bits_truncate(0o755),
        )
        .ctx(|| format!("{}: mkdir {shown}", self.what))
    }

    /// Makes room for a non-directory entry: removes what is at `name` already.
    fn clear(&self, parent: BorrowedFd<'_>, name: &OsStr, shown: &str) -> Result<(), ImageError> {
        match remove_at(parent, name) {
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                Err(e).ctx(|| format!("{}: replace {shown}", self.what))
            }
            _ => Ok(()),
        }
    }

    /// The directory `comps` below the root, reached one component at a time without
    /// following any symlink; missing ones are made (mode 0755, root) when `create`.
    fn dir_for(&self, comps: &[&OsStr], create: bool, shown: &str) -> Result<OwnedFd, ImageError> {
        self.dir_in(self.root, comps, create, shown)
    }

    fn dir_in(
        &self,
        root: BorrowedFd<'_>,
        comps: &[&OsStr],
        create: bool,
        shown: &str,
    ) -> Result<OwnedFd, ImageError> {
        let what = self.what;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        let mut fd = open_beneath(root, Path::new("."), flags)
            .ctx(|| format!("{what}: open the extraction root"))?;
        for (i, c) in comps.iter().enumerate() {
            let prefix = || {
                comps[..=i]
                    .iter()
                    .map(|c| c.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let next = match open_beneath(fd.as_fd(), Path::new(c), flags) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                    self.mkdir(fd.as_fd(), c, shown)?;
                    open_beneath(fd.as_fd(), Path::new(c), flags)
                }
                other => other,
            };
            fd = match next {
                Ok(fd) => fd,
                Err(e) => {
                    return Err(match e.raw_os_error() {
                        Some(libc::ELOOP) => self.refuse(
                            shown,
                            format!(
                                "its parent {} is a symlink: a path through a symlink is refused",
                                prefix()
                            ),
                        ),
                        Some(libc::ENOTDIR) => {
                            let symlink = fstatat_nofollow(fd.as_fd(), c)
                                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
                            let what = if symlink {
                                "a symlink: a path through a symlink is refused"
                            } else {
                                "not a directory"
                            };
                            self.refuse(shown, format!("its parent {} is {what}", prefix()))
                        }
                        Some(libc::EXDEV) => {
                            self.refuse(shown, format!("its parent {} is a mount point", prefix()))
                        }
                        _ => ImageError::Io {
                            context: format!("{what}: open {} for {shown}", prefix()),
                            source: e,
                        },
                    })
                }
            };
        }
        Ok(fd)
    }

    fn whiteout(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        shown: &str,
    ) -> Result<(), ImageError> {
        let what = self.what;
        if name == OPAQUE_MARKER.as_bytes() {
            fsetxattr(parent, OPAQUE_XATTR, b"y")
                .ctx(|| format!("{what}: mark the directory of {shown} opaque"))?;
            self.summary.whiteouts = true;
            return Ok(());
        }
        if name.starts_with(b".wh..wh.") {
            return Ok(()); // aufs's own bookkeeping (e.g. .wh..wh.plnk): not content
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(self.refuse(shown, "whiteout of no name, `.` or `..`"));
        }
        let hidden = OsStr::from_bytes(hidden);
        self.clear(parent, hidden, shown)?;
        nix::sys::stat::mknodat(
            Some(parent.as_raw_fd()),
            hidden,
            SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .ctx(|| format!("{what}: make the whiteout for {shown}"))?;
        self.summary.whiteouts = true;
        Ok(())
    }

    fn hard_link(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        target: &[u8],
        shown: &str,
    ) -> Result<(), ImageError> {
        let what = self.what;
        let tcomps =
            components(target).map_err(|r| self.refuse(shown, format!("hard link target: {r}")))?;
        let Some((tname, tparents)) = tcomps.split_last() else {
            return Err(self.refuse(shown, "hard link to the archive's root"));
        };
        // The target in this layer, else in the layers below (top first, stopping at a
        // whiteout of it).
        let mut found = None;
        let mut dirs = vec![self.root];
        dirs.extend(self.lowers.iter().rev().map(|l| l.as_fd()));
        for (i, dir) in dirs.into_iter().enumerate() {
            let tdir = match self.dir_in(dir, tparents, false, shown) {
                Ok(fd) => fd,
                Err(ImageError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::ENOENT) =>
                {
                    continue
                }
                Err(ImageError::Entry { reason, .. }) => {
                    return Err(self.refuse(shown, format!("hard link target: {reason}")))
                }
                Err(e) => return Err(e),
            };
            match fstatat_nofollow(tdir.as_fd(), tname) {
                Ok(st) if is_dir(&st) => return Err(self.refuse(shown, "hard link to a directory")),
                Ok(st) if i > 0 && is_whiteout(&st) => break,
                Ok(_) => {
                    found = Some(tdir);
                    break;
                }
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e).ctx(|| format!("{what}: stat the target of {shown}")),
            }
        }
        let Some(tdir) = found else {
            return Err(self.refuse(
                shown,
                format!(
                    "hard link target {:?} is not in the archive",
                    String::from_utf8_lossy(target)
                ),
            ));
        };
        // Linking a name to itself: nothing to do.
        if let (Ok(a), Ok(b)) = (
            fstatat_nofollow(tdir.as_fd(), tname),
            fstatat_nofollow(parent, name),
        ) {
            if a.st_ino == b.st_ino && a.st_dev == b.st_dev {
                return Ok(());
            }
        }
        self.clear(parent, name, shown)?;
        nix::unistd::linkat(
            Some(tdir.as_raw_fd()),
            *tname,
            Some(parent.as_raw_fd()),
            name,
            AtFlags::empty(),
        )
        .ctx(|| format!("{what}: hard link {shown}"))
    }
}

/// Copies the xattrs of `from` to `to`, except overlayfs's.
fn copy_xattrs(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    for name in flistxattr(from)? {
        if name.to_bytes().starts_with(b"trusted.overlay.") {
            continue;
        }
        let value = fgetxattr(from, &name)?;
        fsetxattr(to, &name.to_string_lossy(), &value)?;
    }
    Ok(())
}

/// Applies the extracted layer tree `layer` onto the tree `target`, as an overlay of the two
/// would show it: a whiteout removes the entry below, an opaque directory replaces the
/// directory below, a directory merges into one below, anything else replaces what is below.
/// Non-directories are hard-linked from the layer (no data copied; both trees are read-only).
pub(crate) fn apply_layer(layer: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
    for name in list(layer)? {
        let st = fstatat_nofollow(layer, &name)?;
        if is_whiteout(&st) {
            match remove_at(target, &name) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => {}
            }
            continue;
        }
        if !is_dir(&st) {
            match remove_at(target, &name) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => {}
            }
            nix::unistd::linkat(
                Some(layer.as_raw_fd()),
                name.as_os_str(),
                Some(target.as_raw_fd()),
                name.as_os_str(),
                AtFlags::empty(),
            )?;
            continue;
        }
        let src = open_beneath(layer, Path::new(&name), flags)?;
        let opaque = fgetxattr(src.as_fd(), c"trusted.overlay.opaque")
            .map(|v| v == b"y")
            .unwrap_or(false);
        match fstatat_nofollow(target, &name) {
            Ok(t) if is_dir(&t) && !opaque => {}
            Ok(_) => {
                remove_at(target, &name)?;
                nix::sys::stat::mkdirat(
                    Some(target.as_raw_fd()),
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                )?;
            }
            Err(Errno::ENOENT) => {
                nix::sys::stat::mkdirat(
                    Some(target.as_raw_fd()),
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                )?;
            }
            Err(e) => return Err(e.into()),
        }
        let dst = open_beneath(target, Path::new(&name), flags)?;
        apply_layer(src.as_fd(), dst.as_fd())?;
        // The directory takes the upper layer's metadata, as in an overlay.
        nix::unistd::fchown(
            dst.as_raw_fd(),
            Some(st.st_uid.into()),
            Some(st.st_gid.into()),
        )?;
        nix::sys::stat::fchmod(
            dst.as_raw_fd(),
            Mode::from_bits_truncate(st.st_mode & 0o7777),
        )?;
        copy_xattrs(src.as_fd(), dst.as_fd())?;
        let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
        let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
        nix::sys::stat::futimens(dst.as_raw_fd(), &atime, &mtime)?;
    }
    Ok(())
}

/// Gives `target`'s root the metadata of `layer`'s root.
pub(crate) fn copy_root_meta(layer: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    let st = nix::sys::stat::fstat(layer.as_raw_fd())?;
    nix::unistd::fchown(
        target.as_raw_fd(),
        Some(st.st_uid.into()),
        Some(st.st_gid.into()),
    )?;
    nix::sys::stat::fchmod(
        target.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )?;
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    nix::sys::stat::futimens(target.as_raw_fd(), &mtime, &mtime)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_split_and_checked() {
        assert_eq!(components(b"./a//b/./c/").unwrap(), ["a", "b", "c"]);
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"/etc/passwd").is_err());
        assert!(components(b"a/../../b").is_err());
        assert!(components(b"..").is_err());
        assert_eq!(components(b"a..b/..c").unwrap(), ["a..b", "..c"]);
    }
}
