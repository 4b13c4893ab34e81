//! `husk state`.

use std::path::Path;

use clap::Args;

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct StateArgs {
    pub id: String,
}

pub fn run(root: &Path, a: StateArgs) -> CmdResult {
    // A reader: never waits for a create or delete holding the container's lock.
    let state = runtime(root).peek(&a.id)?.state();
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(0)
}
