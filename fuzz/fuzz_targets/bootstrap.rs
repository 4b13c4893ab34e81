//! The bootstrap protocol's decoding: any packet on the socket, decoded as the host decodes the
//! init's messages (the direction a compromised init could attack) and as the init decodes the
//! host's.
#![no_main]

use std::os::fd::AsRawFd;

use husk_init::proto::{Channel, ToInit, ToParent};
use libfuzzer_sys::fuzz_target;

fn deliver(data: &[u8]) -> (Channel, Channel) {
    let (sender, receiver) = Channel::pair().unwrap();
    // SAFETY: a send of `data` on a socket we own; the kernel copies the bytes.
    let sent = unsafe { libc::send(sender.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) };
    assert!(sent >= 0 || data.len() > 200_000, "send: {}", std::io::Error::last_os_error());
    (sender, receiver)
}

fuzz_target!(|data: &[u8]| {
    let (_sender, receiver) = deliver(data);
    let _ = receiver.recv::<ToParent>();
    let (_sender, receiver) = deliver(data);
    let _ = receiver.recv::<ToInit>();
});
