//! A local image store: install images from OCI layouts, `docker save` archives, root
//! filesystem tars (and registries, with the `registry` feature), list, inspect, remove and
//! prune them, and hand their read-only file systems to containers.
//!
//! ```no_run
//! # fn main() -> Result<(), husk::image::ImageError> {
//! use husk::image::{ImageSource, ImageStore, InstallOptions};
//! let store = ImageStore::open("/var/lib/husk")?;
//! let image = store.install(
//!     ImageSource::OciLayout("/srv/busybox-layout".into()),
//!     "busybox",
//!     &InstallOptions::default(),
//! )?;
//! assert_eq!(image.name, "docker.io/library/busybox:latest");
//! let lowerdirs = &image.layers; // for an overlay; or image.rootfs, one flattened tree
//! # let _ = lowerdirs; Ok(()) }
//! ```
//!
//! # How images are kept
//!
//! - **Layers are extracted once, per layer, and shared.** Each layer is a directory keyed by
//!   its uncompressed digest (the config's diff id), so two images with a common base share its
//!   tree, and installing an image whose layers are present extracts nothing (its blobs are
//!   still read once to verify their digests). Containers mount an overlay with the layers as
//!   lower directories ([`Image::layers`]); whiteouts and opaque directories are therefore stored
//!   in overlayfs's own form (a 0/0 character device; `trusted.overlay.opaque=y`), which is what
//!   an overlay needs to show the right tree.
//! - **A flattened tree for copying.** [`Image::rootfs`] is the whole file system as one tree,
//!   for a runtime without overlayfs: for a one-layer image without whiteouts it is the layer's
//!   tree itself (no cost); for others it is built at install from hard links into the layers
//!   (no file data copied), keyed by the image digest.
//! - **Verification.** Every manifest, config and layer blob is checked against the digest (and
//!   size) of its descriptor, and every layer's uncompressed content against the config's diff
//!   id; a mismatch is [`ImageError::Blob`], naming the blob. Layers are gzip, zstd or
//!   uncompressed, told by their magic bytes.
//! - **Safe extraction** (see the `extract` module's docs for what the `tar` crate's
//!   `unpack_in` lacks): entries are created relative to directory descriptors, parents reached
//!   with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`; an entry with `..`, an absolute path,
//!   a path through a symlink, or a hard link to outside the archive is refused with
//!   [`ImageError::Entry`], naming the entry. Owners, modes, mtimes, xattrs (PAX
//!   `SCHILY.xattr.*`, except overlayfs's own `trusted.overlay.*`), hard links, symlinks and
//!   device nodes are kept.
//! - **Atomicity.** Layers and flattened trees are extracted into temporary directories of the
//!   store and renamed into place when complete; the index is replaced by rename. A killed
//!   install leaves only a temporary directory, removed by the next open or prune. All changes
//!   to the index happen under an exclusive `flock` of the store, so concurrent CLI calls are
//!   safe: of two installs of one name, one wins and the other gets [`ImageError::Exists`].
//! - **Names, versions and users.** A name points to one image at a time; installing over it
//!   needs [`InstallOptions::update`], which swaps the name in one index write. Containers hold
//!   the version they were made from with [`ImageStore::acquire_for_boot`] (a lease file of
//!   their own, not synced: it ends with the boot) until [`ImageStore::release`];
//!   [`ImageStore::acquire`] is the same with a lease synced to disk, for users that outlive a
//!   reboot. A version no name points to goes (with its flattened tree) when its last user
//!   releases it. [`ImageStore::remove`] is refused while the image is in use,
//!   unless forced. Layers and configs no image needs stay until [`ImageStore::prune`].

mod archive;
mod error;
mod extract;
pub mod reference;
#[cfg(feature = "registry")]
mod registry;
mod store;

pub use error::ImageError;
pub use reference::Reference;
#[cfg(feature = "registry")]
pub use registry::{Credentials, PullOptions, DEFAULT_CERTS_DIRS};
pub use store::{Image, ImageSource, ImageStore, InstallOptions, PruneReport};
