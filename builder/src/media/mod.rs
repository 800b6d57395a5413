//! Images after the build: writing them to disks, reading them back, serving them to a
//! network-booting fleet ([`pxe`] the tree, [`initrd`] the installer initrd's format, [`serve`] the server, [`fleet`] its progress
//! view).

pub mod flash;
pub mod fleet;
pub mod initrd;
pub mod inspect;
pub mod pxe;
pub mod serve;
