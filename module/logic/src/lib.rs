//! The parts of uksm.ko that need no kernel: input validation of the tunables, partial
//! page hashing and its adaptive strength, merge domains, the unstable table, the stable
//! tree's node keys, the sampling ladder, the bits of the merged-page map and the governor's
//! arithmetic.
//!
//! The module compiles these files directly (`#[path]` modules in `uksm_main.rs`), so each
//! file must stay `no_std`, allocation-free and free of Cargo dependencies.
#![no_std]

pub mod domain;
pub mod governor;
pub mod hash;
pub mod ladder;
pub mod merged_bits;
pub mod node_key;
pub mod strength;
pub mod tunable;
pub mod unstable;
