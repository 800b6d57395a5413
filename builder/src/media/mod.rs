//! Images after the build: writing them to disks, reading them back, serving them to a
//! network-booting fleet ([`serve`], with the progress view in [`fleet`]).

pub mod flash;
pub mod fleet;
pub mod inspect;
pub mod serve;
