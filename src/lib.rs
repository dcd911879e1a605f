//! xenraid: move a running single-disk XenServer / XCP-ng (or plain GRUB2 Linux) host onto
//! Linux software RAID1.
//!
//! Data flows one way: `host` reads the machine into `HostFacts`, `plan` turns facts and the
//! user's intent into a `Plan` (pure, no I/O), `exec` runs commands.

pub mod cli;
pub mod config;
pub mod convert;
pub mod doctor;
pub mod exec;
pub mod health;
pub mod host;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod plan;
pub mod scrub;
