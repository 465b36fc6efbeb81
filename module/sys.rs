// SPDX-License-Identifier: GPL-2.0

//! The C glue's API (module/glue/glue.h), declared for Rust.
//!
//! Every function here is a thin wrapper of a kernel inline, macro or field access, so its
//! contract is the kernel's: pointers must be valid for the call as the wrapped kernel
//! function requires. The safe layers above (registry, scanner, hooks) state at each call
//! why the pointers they pass are valid.

use core::marker::{PhantomData, PhantomPinned};
use kernel::ffi::{c_int, c_long, c_void};

/// Declares a type that Rust only ever handles behind a pointer: the C object's fields are
/// reached through glue functions compiled by the kernel's own compiler.
macro_rules! opaque {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[repr(C)]
        pub(crate) struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    };
}

opaque!(
    /// `struct vm_area_struct`.
    vm_area_struct
);
opaque!(
    /// `struct mm_struct`.
    mm_struct
);
opaque!(
    /// `struct task_struct`.
    task_struct
);
opaque!(
    /// `struct page`.
    page
);

extern "C" {
    pub(crate) fn uksm_hooks_register() -> c_int;
    pub(crate) fn uksm_hooks_unregister();

    pub(crate) fn uksm_sysfs_create() -> c_int;
    pub(crate) fn uksm_sysfs_remove();

    pub(crate) fn uksm_thread_start() -> *mut task_struct;
    pub(crate) fn uksm_thread_stop(task: *mut task_struct) -> c_int;
    pub(crate) fn uksm_thread_should_stop() -> bool;
    pub(crate) fn uksm_thread_kick();
    pub(crate) fn uksm_thread_wait(timeout_ms: c_long);
    pub(crate) fn uksm_cond_resched();
    pub(crate) fn uksm_is_err(ptr: *const c_void) -> bool;
    pub(crate) fn uksm_ptr_err(ptr: *const c_void) -> c_long;

    pub(crate) fn uksm_collect_mms(mms: *mut *mut mm_struct, cap: usize) -> usize;
    pub(crate) fn uksm_mmput(mm: *mut mm_struct);
    pub(crate) fn uksm_mmget_not_zero(mm: *mut mm_struct) -> bool;
    pub(crate) fn uksm_mmap_read_trylock(mm: *mut mm_struct) -> bool;
    pub(crate) fn uksm_vma_lookup(mm: *mut mm_struct, addr: usize) -> *mut vm_area_struct;
    pub(crate) fn uksm_mmap_read_lock(mm: *mut mm_struct);
    pub(crate) fn uksm_mmap_read_unlock(mm: *mut mm_struct);
    pub(crate) fn uksm_find_vma(mm: *mut mm_struct, addr: usize) -> *mut vm_area_struct;

    pub(crate) fn uksm_vma_mm(vma: *const vm_area_struct) -> *mut mm_struct;
    pub(crate) fn uksm_vma_flags(vma: *const vm_area_struct) -> usize;
    pub(crate) fn uksm_vma_is_anonymous(vma: *const vm_area_struct) -> bool;
    pub(crate) fn uksm_vma_uffd_armed(vma: *mut vm_area_struct) -> bool;
    pub(crate) fn uksm_vma_start(vma: *const vm_area_struct) -> usize;
    pub(crate) fn uksm_vma_end(vma: *const vm_area_struct) -> usize;
    pub(crate) fn uksm_vma_private(vma: *const vm_area_struct) -> *mut c_void;
    pub(crate) fn uksm_vma_set_private(vma: *mut vm_area_struct, slot: *mut c_void);
    pub(crate) fn uksm_vm_flags_unmergeable() -> usize;

    pub(crate) fn uksm_get_anon_page(vma: *mut vm_area_struct, addr: usize) -> *mut page;
    pub(crate) fn uksm_kmap_page(page: *mut page) -> *const c_void;
    pub(crate) fn uksm_kunmap(addr: *const c_void);
    pub(crate) fn uksm_put_page(page: *mut page);
    pub(crate) fn uksm_merge_zero_page(
        vma: *mut vm_area_struct,
        page: *mut page,
        addr: usize,
    ) -> c_int;
    pub(crate) fn uksm_break_page(vma: *mut vm_area_struct, addr: usize) -> c_int;
    pub(crate) fn uksm_lru_add_drain_all();
    pub(crate) fn uksm_ksm_zero_pages() -> c_long;
    pub(crate) fn uksm_mm_ksm_zero_pages(mm: *mut mm_struct) -> c_long;
    pub(crate) fn uksm_random_u64() -> u64;
}
