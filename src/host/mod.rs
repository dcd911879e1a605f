//! Host discovery: what is on this machine, read exactly, never guessed.

pub mod discover;
mod discover_system;
pub mod facts;
pub mod parse;
pub mod prefetch;
pub mod render;
pub mod source;

pub use discover::{discover, DiscoveryError};
pub use facts::*;
pub use source::{HostSource, RootedSource};
