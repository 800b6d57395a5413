//! Images after the build: writing them to disks, reading them back, serving them to a
//! network-booting fleet ([`pxe`] the tree, [`serve`] the server, [`fleet`] its progress
//! view).

pub mod flash;
pub mod fleet;
pub mod inspect;
pub mod pxe;
pub mod serve;
