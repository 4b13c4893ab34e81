//! The `husk` command: a runc-compatible CLI over the husk library.

mod cli;

fn main() {
    // First of all: when re-executed as the container init, hand over before anything else
    // (threads, logging, argument parsing) exists.
    husk::init_if_requested();
    // A runc-compatible command exits right after it started a process: that process's exit
    // status belongs to whoever waits for it (a shim or conmon as subreaper), never to us.
    husk::leave_dropped_children_to_the_parent();
    std::process::exit(cli::main());
}
