//! Nexus and the Model Context Protocol.
//!
//! - [`server`]: `nexus mcp serve`, a stdio MCP server (rmcp) whose tools
//!   ([`tools`]) reach the mesh and the model hierarchy through
//!   [`nexus_sdk`], with new messages pushed and delivery settled only by
//!   `mesh_ack`;
//! - [`registry`]: the user's MCP servers (`NEXUS_HOME/mcp.json`, the
//!   `.mcp.json` shape), allow and deny lists, import and export that keep
//!   unknown keys, and `install-claude`;
//! - [`client`]: starting a registered server in its own process group,
//!   `test` (protocol version, `initialize` latency, tool count; 10 s at
//!   most), listing and calling its tools under the deny list, and stopping
//!   it so that no descendant survives.

pub mod client;
pub mod http;
pub mod registry;
pub mod server;
pub mod tools;
