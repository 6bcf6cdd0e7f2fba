//! One module per verb of the command line.

pub mod artifact;
pub mod bench;
pub mod call;
pub mod catalog;
pub mod connect;
pub mod demo;
pub mod job;
pub mod log;
pub mod mcp;
pub mod perf;
pub mod replay;
pub mod serve;
pub mod token;
