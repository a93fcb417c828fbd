#![doc = include_str!("../README.md")]

pub mod approve;
pub mod crash;
pub mod host;
pub mod manifest;
pub mod permissions;
pub mod rpc;
pub mod sign;
pub mod store;
pub mod supervisor;
