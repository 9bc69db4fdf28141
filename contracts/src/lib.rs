#![doc = include_str!("../README.md")]

pub mod bindings;
pub mod deploy;
pub mod devnet;
mod error;
pub mod provider;
pub mod settlement;
pub mod verifier;

pub use error::{Error, Result};
