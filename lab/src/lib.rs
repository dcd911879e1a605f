//! The xenraid QEMU lab: guest images, the VM driver, and the proof scenarios.
pub mod agent;
pub mod efivars;
pub mod guest_state;
pub mod images;
pub mod qmp;
pub mod scenarios;
pub mod vm;
