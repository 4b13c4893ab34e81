//! Helpers for tests of images: tarballs of the test rootfs, snapshots of what a test may leave behind.
