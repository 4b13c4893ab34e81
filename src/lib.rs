//! husk
