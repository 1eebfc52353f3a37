// SPDX-License-Identifier: GPL-2.0
//! Which ABI structs may be copied from and to raw bytes (user memory, the shared ring): every
//! `FromBytes`/`AsBytes` promise of the module, in one place. The structs themselves are in
//! `uapi.rs`, `#[repr(C)]` with fixed-width fields, explicit padding and asserted sizes.

use super::compat::{AsBytes, FromBytes};

use crate::uapi::{AddDevice, BlockHeader, Cqe, DeviceId, DeviceList, RecoverDevice, Wait};

// SAFETY: For each type below: plain integers and byte arrays, no padding (see the layout
// assertions in uapi), so every bit pattern is a valid value and every byte is initialised.
unsafe impl FromBytes for AddDevice {}
// SAFETY: As above.
unsafe impl AsBytes for AddDevice {}
// SAFETY: As above.
unsafe impl FromBytes for RecoverDevice {}
// SAFETY: As above.
unsafe impl AsBytes for RecoverDevice {}
// SAFETY: As above.
unsafe impl FromBytes for DeviceId {}
// SAFETY: As above.
unsafe impl FromBytes for Wait {}
// SAFETY: As above.
unsafe impl AsBytes for Wait {}
// SAFETY: As above.
unsafe impl AsBytes for DeviceList {}
// SAFETY: As above.
unsafe impl FromBytes for Cqe {}
// SAFETY: As above.
unsafe impl FromBytes for BlockHeader {}

// The ring layout is in 4 KiB units; mapping a region whole needs pages that divide it.
const _: () = assert!(crate::uapi::PAGE % kernel::page::PAGE_SIZE == 0);
