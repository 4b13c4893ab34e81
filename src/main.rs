//! The `husk` command: a runc-compatible CLI over the husk library.

mod cli;

fn main() {
    // First of all: when re-executed as the container init, hand over before anything else
    // (threads, logging, argument parsing) exists.
    husk::init_if_requested();
    std::process::exit(cli::main());
}
