//! The parts of uksm.ko that need no kernel: input validation of the tunables and partial
//! page hashing; later the sampling ladder and governor arithmetic.
//!
//! The module compiles these files directly (`#[path]` modules in `uksm_main.rs`), so each
//! file must stay `no_std`, allocation-free and free of Cargo dependencies.
#![no_std]

pub mod hash;
pub mod tunable;
