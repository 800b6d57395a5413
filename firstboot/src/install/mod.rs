//! `hcikit-firstboot install`: the USB (and later network) installer. It finds which node
//! this machine is, decides which disk it may write, shows what it will do, writes the
//! node's image with every byte verified, makes the disk the next UEFI boot, and reboots
//! or powers off.
//!
//! Pure decisions and the writer are separate from the machine:
//! - [`identity`]: which node (MAC, then `hcikit.node=`, then a console menu).
//! - [`target`]: which disk may be written, or why not.
//! - [`probe`]: what a disk holds (signatures), from its first and last bytes.
//! - [`gpt`]: reading GPTs; moving the backup to a larger disk's end, growing root.
//! - [`bmap`]: the node image's block map with per-range SHA-256.
//! - [`write`]: the verified writer over a `Read` source of the mapped ranges.

pub mod bmap;
pub mod console;
pub mod efiboot;
pub mod gpt;
pub mod identity;
pub mod net;
pub mod payload;
pub mod probe;
pub mod run;
pub mod system;
pub mod target;
pub mod write;
