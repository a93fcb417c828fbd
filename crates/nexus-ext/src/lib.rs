#![doc = include_str!("../README.md")]

pub mod approve;
pub mod archive;
pub mod clipboard;
pub mod crash;
pub mod host;
pub mod install;
pub mod manifest;
pub mod pending;
pub mod permissions;
pub mod process;
pub mod rpc;
pub mod sign;
pub mod store;
pub mod supervisor;
pub mod tokens;
pub mod trust;
