//! husk-testing: see README
