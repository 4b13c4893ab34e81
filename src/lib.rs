//! husk

pub mod cgroups;
