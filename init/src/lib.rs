pub fn main() -> ! { std::process::exit(1) }
pub mod security;
