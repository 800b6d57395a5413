//! Images after the build: writing them to disks and reading them back.

pub mod flash;
pub mod inspect;
