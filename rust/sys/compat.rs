// SPDX-License-Identifier: GPL-2.0
//! What differs between the `kernel` crates of the kernels httpblk builds against (6.12 and
//! 7.2), in one place. Kbuild sets the `--cfg` flags from the tree it builds against:
//!
//! - `httpblk_transmute`: `FromBytes`/`AsBytes` live in `kernel::transmute` (6.13 and later).
//! - `httpblk_should_merge`: blk-mq tag sets still take `BLK_MQ_F_SHOULD_MERGE` (before 6.14).
//! - `httpblk_user_ptr`: `UserSlice::new` takes a `UserPtr`, not an address (6.16 and later).
//! - `httpblk_cursor_mut`: red-black trees have `CursorMut` (6.16 and later).
//! - `httpblk_sysfs_const`: sysfs callbacks and attribute lists sit in unions (7.x).
//! - `httpblk_module_authors`: `module!` takes `authors`, not `author` (elsewhere: `httpblk_main.rs`).
//! - `httpblk_core_cstr`: `kernel::str::CStr` is `core::ffi::CStr` (7.x).
//! - `httpblk_foreign_mut`: `ForeignOwnable` pointers are `*mut` (7.x; `*const` before).

#[cfg(httpblk_transmute)]
pub(crate) use kernel::transmute::{AsBytes, FromBytes};
#[cfg(not(httpblk_transmute))]
pub(crate) use kernel::types::{AsBytes, FromBytes};

/// The user memory at address `addr`, `len` bytes long.
pub(crate) fn user_slice(addr: usize, len: usize) -> kernel::uaccess::UserSlice {
    #[cfg(httpblk_user_ptr)]
    let ptr = kernel::uaccess::UserPtr::from_addr(addr);
    #[cfg(not(httpblk_user_ptr))]
    let ptr = addr;
    kernel::uaccess::UserSlice::new(ptr, len)
}

#[cfg(not(httpblk_cursor_mut))]
pub(crate) use kernel::rbtree::Cursor as CursorMut;
/// A red-black tree cursor that can move, change and remove nodes.
#[cfg(httpblk_cursor_mut)]
pub(crate) use kernel::rbtree::CursorMut;

/// Mutable cursors over a red-black tree, by one name on every kernel.
pub(crate) trait TreeCursor<K, V> {
    /// A cursor at the first node, or `None` if the tree is empty.
    fn front_mut(&mut self) -> Option<CursorMut<'_, K, V>>;
    /// A cursor at the first node whose key is not below `key`, if any.
    fn lower_bound_mut(&mut self, key: &K) -> Option<CursorMut<'_, K, V>>;
}

impl<K: Ord, V> TreeCursor<K, V> for kernel::rbtree::RBTree<K, V> {
    fn front_mut(&mut self) -> Option<CursorMut<'_, K, V>> {
        #[cfg(httpblk_cursor_mut)]
        return self.cursor_front_mut();
        #[cfg(not(httpblk_cursor_mut))]
        return self.cursor_front();
    }

    fn lower_bound_mut(&mut self, key: &K) -> Option<CursorMut<'_, K, V>> {
        #[cfg(httpblk_cursor_mut)]
        return self.cursor_lower_bound_mut(key);
        #[cfg(not(httpblk_cursor_mut))]
        return self.cursor_lower_bound(key);
    }
}

/// The bytes of `s`, without its NUL.
pub(crate) fn cstr_bytes(s: &kernel::str::CStr) -> &[u8] {
    #[cfg(httpblk_core_cstr)]
    return s.to_bytes();
    #[cfg(not(httpblk_core_cstr))]
    return s.as_bytes();
}

/// `s` as a C string pointer, in constant contexts too.
pub(crate) const fn cstr_ptr(s: &kernel::str::CStr) -> *const kernel::ffi::c_char {
    // `CStrExt::as_char_ptr`, which the lint asks for, is not `const`; the cast gives the
    // kernel's (unsigned) `c_char` that it would.
    #[cfg(httpblk_core_cstr)]
    #[allow(clippy::disallowed_methods)]
    return s.as_ptr().cast();
    #[cfg(not(httpblk_core_cstr))]
    return s.as_char_ptr();
}

/// `t` as a pointer for C to keep, `*mut` on every kernel (6.12's `ForeignOwnable` gives
/// `*const`, 7.x's `*mut`). Taking it back needs no such help: `from_foreign` and `borrow`
/// take `*const` on 6.12, to which `*mut` coerces.
pub(crate) fn into_foreign<T: kernel::types::ForeignOwnable>(t: T) -> *mut kernel::ffi::c_void {
    #[cfg(httpblk_foreign_mut)]
    return t.into_foreign();
    #[cfg(not(httpblk_foreign_mut))]
    return t.into_foreign().cast_mut();
}
