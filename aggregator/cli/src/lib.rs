#![doc = include_str!("../README.md")]

pub mod adapter;
pub mod bench;
pub mod cli;
pub mod demo;
pub mod keys;
pub mod progress;
pub mod rollups;
