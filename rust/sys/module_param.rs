// SPDX-License-Identifier: GPL-2.0
//! Module parameters, which 6.12's `module!` lacks: the `kernel_param` plumbing of C's
//! `module_param_cb` with `param_set_uint_minmax`, done once.
//!
//! `uint_param!` places a `struct kernel_param` in the `__param` section (the module loader
//! and sysfs find it there) and its `parm`/`parmtype` strings in `.modinfo` (for `modinfo`).
//! The value lives in an `AtomicU32`; the kernel writes it through `kp->arg` under the
//! module's parameter lock, the driver reads it with `get()`.

use core::sync::atomic::{AtomicU32, Ordering};

use kernel::bindings;
use kernel::ffi::{c_char, c_int};

/// A `u32` parameter with inclusive bounds checked whenever it is set (at load or via sysfs).
#[repr(transparent)]
pub(crate) struct UintParam(AtomicU32);

impl UintParam {
    pub(crate) const fn new(default: u32) -> Self {
        Self(AtomicU32::new(default))
    }

    /// The current value.
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Where `kp->arg` points: the kernel's uint ops read and write an `unsigned int` there.
    pub(crate) const fn as_arg(&'static self) -> *mut kernel::ffi::c_void {
        self.0.as_ptr().cast()
    }
}

/// `set` of a bounded uint parameter: rejects values outside `MIN..=MAX` with EINVAL.
///
/// # Safety
/// Called by the kernel with a NUL-terminated `val` and a `kp` whose `arg` is a `UintParam`.
pub(crate) unsafe extern "C" fn set_uint<const MIN: u32, const MAX: u32>(
    val: *const c_char,
    kp: *const bindings::kernel_param,
) -> c_int {
    // SAFETY: The caller's guarantees are those of `param_set_uint_minmax`.
    unsafe { bindings::param_set_uint_minmax(val, kp, MIN, MAX) }
}

/// An object that a parameter hook acts on, published by module init and withdrawn before the
/// module lets go of it. Hooks run with the module's parameter lock held, and `publish` and
/// `withdraw` take that lock, so a hook never sees an object being freed.
pub(crate) struct Published<T: Send + Sync + 'static> {
    ptr: core::sync::atomic::AtomicPtr<kernel::ffi::c_void>,
    _t: core::marker::PhantomData<kernel::sync::Arc<T>>,
}

impl<T: Send + Sync + 'static> Published<T> {
    pub(crate) const fn new() -> Self {
        Self {
            ptr: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
            _t: core::marker::PhantomData,
        }
    }

    /// Makes `t` what hooks act on (replacing nothing: called once, at module init).
    pub(crate) fn publish(&self, t: kernel::sync::Arc<T>) {
        let _lock = ParamLock::take();
        let old = self
            .ptr
            .swap(super::compat::into_foreign(t), Ordering::AcqRel);
        Self::release(old);
    }

    /// Stops hooks from acting on the published object and drops the reference to it.
    pub(crate) fn withdraw(&self) {
        let _lock = ParamLock::take();
        let old = self.ptr.swap(core::ptr::null_mut(), Ordering::AcqRel);
        Self::release(old);
    }

    fn release(p: *mut kernel::ffi::c_void) {
        use kernel::types::ForeignOwnable;
        if !p.is_null() {
            // SAFETY: A non-null value came from `into_foreign` in `publish` and was taken out
            // of `ptr` by the swap, so it is reclaimed once.
            drop(unsafe { <kernel::sync::Arc<T> as ForeignOwnable>::from_foreign(p) });
        }
    }

    /// Runs `f` on the published object, if any. Only hooks call this (parameter lock held).
    pub(crate) fn with(&self, f: impl FnOnce(&T)) {
        use kernel::types::ForeignOwnable;
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: Published and not withdrawn: `withdraw` needs the parameter lock, which
            // our caller (a parameter hook) holds, so the object outlives this call.
            let t = unsafe { <kernel::sync::Arc<T> as ForeignOwnable>::borrow(p) };
            f(&t);
        }
    }
}

/// The module's parameter lock (`kernel_param_lock`), held while alive.
struct ParamLock;

impl ParamLock {
    fn take() -> Self {
        // SAFETY: `__this_module` is this module, alive while its code runs.
        unsafe { bindings::kernel_param_lock(&raw mut bindings::__this_module) };
        ParamLock
    }
}

impl Drop for ParamLock {
    fn drop(&mut self) {
        // SAFETY: Taken in `take`.
        unsafe { bindings::kernel_param_unlock(&raw mut bindings::__this_module) };
    }
}

/// `get` of a uint parameter.
///
/// # Safety
/// Called by the kernel with a page-sized `buf` and a `kp` whose `arg` is a `UintParam`.
pub(crate) unsafe extern "C" fn get_uint(
    buf: *mut c_char,
    kp: *const bindings::kernel_param,
) -> c_int {
    // SAFETY: The caller's guarantees are those of `param_get_uint`.
    unsafe { bindings::param_get_uint(buf, kp) }
}

/// A `kernel_param` in static storage.
#[repr(transparent)]
pub(crate) struct KernelParam(pub(crate) bindings::kernel_param);
// SAFETY: The kernel only reads it; the value behind `arg` is an atomic.
unsafe impl Sync for KernelParam {}

/// Ops of one parameter in static storage.
#[repr(transparent)]
pub(crate) struct ParamOps(pub(crate) bindings::kernel_param_ops);
// SAFETY: Immutable.
unsafe impl Sync for ParamOps {}

/// Copies a string into a fixed-size array, for `.modinfo` entries built with `concat!`.
pub(crate) const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    assert!(b.len() == N);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Declares a bounded `u32` module parameter:
/// `uint_param!(NAME, name, default, min..=max, perm, "description" [, hook = path])`, where
/// `path` names a `fn()` that runs after each successful set, with the module's parameter lock
/// held (see `Published`).
/// `NAME` becomes a `static UintParam`; `name` is what modprobe, sysfs and modinfo call it.
macro_rules! uint_param {
    ($storage:ident, $name:ident, $default:expr, $min:literal ..= $max:literal, $perm:expr, $desc:literal) => {
        $crate::sys::module_param::uint_param!(@ $storage, $name, $default, $min..=$max, $perm, $desc,
            $crate::sys::module_param::set_uint::<$min, $max>);
    };
    ($storage:ident, $name:ident, $default:expr, $min:literal ..= $max:literal, $perm:expr, $desc:literal, hook = $hook:path) => {
        $crate::sys::module_param::uint_param!(@ $storage, $name, $default, $min..=$max, $perm, $desc, {
            /// `set_uint`, then the hook once the new value is in place.
            ///
            /// # Safety
            /// As for `set_uint`.
            unsafe extern "C" fn set_then_hook(
                val: *const kernel::ffi::c_char,
                kp: *const kernel::bindings::kernel_param,
            ) -> kernel::ffi::c_int {
                // SAFETY: The caller's guarantees are those of `set_uint`.
                let r = unsafe { $crate::sys::module_param::set_uint::<$min, $max>(val, kp) };
                if r == 0 {
                    $hook();
                }
                r
            }
            set_then_hook
        });
    };
    (@ $storage:ident, $name:ident, $default:expr, $min:literal ..= $max:literal, $perm:expr, $desc:literal, $set:expr) => {
        pub(crate) static $storage: $crate::sys::module_param::UintParam = $crate::sys::module_param::UintParam::new($default);

        const _: () = {
            use $crate::sys::module_param::{get_uint, modinfo, KernelParam, ParamOps};
            const _: () = assert!($min <= $default && $default <= $max);

            static OPS: ParamOps = ParamOps(kernel::bindings::kernel_param_ops {
                flags: 0,
                set: Some($set),
                get: Some(get_uint),
                free: None,
            });

            #[link_section = "__param"]
            #[used]
            static PARAM: KernelParam = KernelParam(kernel::bindings::kernel_param {
                name: concat!(stringify!($name), "\0").as_ptr().cast(),
                mod_: &raw mut kernel::bindings::__this_module,
                ops: &OPS.0,
                perm: $perm,
                level: -1,
                flags: 0,
                __bindgen_anon_1: kernel::bindings::kernel_param__bindgen_ty_1 { arg: $storage.as_arg() },
            });

            const PARM: &str = concat!("parm=", stringify!($name), ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used]
            static PARM_INFO: [u8; PARM.len()] = modinfo(PARM);

            const TYPE: &str = concat!("parmtype=", stringify!($name), ":uint\0");
            #[link_section = ".modinfo"]
            #[used]
            static TYPE_INFO: [u8; TYPE.len()] = modinfo(TYPE);
        };
    };
}
pub(crate) use uint_param;
