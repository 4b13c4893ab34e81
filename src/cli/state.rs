//! `husk state`.

use std::path::Path;

use clap::Args;

use super::{runtime, CmdResult};

#[derive(Args, Debug)]
pub struct StateArgs {
    pub id: String,
}

pub fn run(root: &Path, a: StateArgs) -> CmdResult {
    let state = runtime(root).load(&a.id)?.state();
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(0)
}
