// SPDX-License-Identifier: GPL-2.0

//! The C glue's API (module/glue/glue.h), declared for Rust.
//!
//! Every function here is a thin wrapper of a kernel inline, macro or field access, so its
//! contract is the kernel's: pointers must be valid for the call as the wrapped kernel
//! function requires. The safe layers above (registry, scanner, hooks) state at each call
//! why the pointers they pass are valid.

use core::marker::{PhantomData, PhantomPinned};
use kernel::ffi::{c_int, c_long, c_ulong, c_void};

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
opaque!(
    /// `struct ksm_stable_node`: KSM's node of a merged folio (mm/ksm.c), created and
    /// freed for the module by the hook patch's `ksm_hooks_*` functions.
    ksm_stable_node
);
opaque!(
    /// `struct ksm_rmap_item`: KSM's record of one place a folio was merged.
    ksm_rmap_item
);

extern "C" {
    pub(crate) fn uksm_hooks_register() -> c_int;
    pub(crate) fn uksm_hooks_unregister();

    pub(crate) fn uksm_settings_lock();
    pub(crate) fn uksm_settings_unlock();
    pub(crate) fn uksm_sysfs_create() -> c_int;
    pub(crate) fn uksm_sysfs_remove();
    pub(crate) fn uksm_ksm_view_create() -> c_int;
    pub(crate) fn uksm_ksm_view_remove();
    pub(crate) fn uksm_ksm_meta_bytes(nodes: usize, items: usize) -> usize;

    pub(crate) fn uksm_thread_start() -> *mut task_struct;
    pub(crate) fn uksm_thread_stop(task: *mut task_struct) -> c_int;
    pub(crate) fn uksm_thread_should_stop() -> bool;
    pub(crate) fn uksm_thread_kick();
    pub(crate) fn uksm_thread_wait(timeout_ms: c_long);
    pub(crate) fn uksm_cond_resched();
    pub(crate) fn uksm_msleep(ms: core::ffi::c_uint);
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
    pub(crate) fn uksm_vma_opted_out(vma: *mut vm_area_struct) -> bool;
    pub(crate) fn uksm_vma_start(vma: *const vm_area_struct) -> usize;
    pub(crate) fn uksm_vma_end(vma: *const vm_area_struct) -> usize;
    pub(crate) fn uksm_vma_private(vma: *const vm_area_struct) -> *mut c_void;
    pub(crate) fn uksm_vma_set_private(vma: *mut vm_area_struct, slot: *mut c_void);
    pub(crate) fn uksm_vm_flags_unmergeable() -> usize;

    pub(crate) fn uksm_next_page(
        vma: *mut vm_area_struct,
        start: usize,
        end: usize,
        pagep: *mut *mut page,
    ) -> usize;
    pub(crate) fn uksm_kmap_page(page: *mut page) -> *const c_void;
    pub(crate) fn uksm_kunmap(addr: *const c_void);
    pub(crate) fn uksm_put_page(page: *mut page);
    pub(crate) fn uksm_lru_add_drain_all();
    pub(crate) fn uksm_ksm_zero_pages() -> c_long;
    pub(crate) fn uksm_mm_ksm_zero_pages(mm: *mut mm_struct) -> c_long;
    pub(crate) fn uksm_now_ms() -> i64;
    pub(crate) fn uksm_domain_supported(policy: u32) -> bool;
    pub(crate) fn uksm_mm_domain(mm: *mut mm_struct, policy: u32) -> u64;
    pub(crate) fn uksm_now_ns() -> u64;
    pub(crate) fn uksm_thread_cpu_ns() -> u64;
    pub(crate) fn uksm_random_u64() -> u64;
    pub(crate) fn uksm_signal_pending() -> bool;

    pub(crate) fn uksm_pages_identical(a: *mut page, b: *mut page) -> bool;
    pub(crate) fn uksm_page_held_elsewhere(page: *mut page) -> bool;
    pub(crate) fn uksm_page_is_ksm(page: *mut page) -> bool;
    pub(crate) fn uksm_page_folio_pages(page: *mut page, index: *mut c_ulong) -> c_ulong;
    pub(crate) fn uksm_node_same(node: *mut ksm_stable_node, page: *mut page) -> c_int;
    pub(crate) fn uksm_node_page(node: *mut ksm_stable_node) -> *mut page;
    pub(crate) fn uksm_node_mapcount(node: *mut ksm_stable_node) -> c_int;
    pub(crate) fn uksm_vma_has_anon_vma(vma: *mut vm_area_struct) -> bool;
    pub(crate) fn uksm_vma_not_copied_on_fork(vma: *mut vm_area_struct) -> bool;
    pub(crate) fn uksm_mmgrab(mm: *mut mm_struct);
    pub(crate) fn uksm_mmdrop(mm: *mut mm_struct);
    pub(crate) fn uksm_mm_has_users(mm: *mut mm_struct) -> bool;

    // Exported by the hook patch (mm/ksm_hooks.c); contracts there and in
    // include/linux/ksm_hooks.h.
    pub(crate) fn ksm_hooks_node_alloc() -> *mut ksm_stable_node;
    pub(crate) fn ksm_hooks_node_free(node: *mut ksm_stable_node);
    pub(crate) fn ksm_hooks_item_alloc() -> *mut ksm_rmap_item;
    pub(crate) fn ksm_hooks_item_free(item: *mut ksm_rmap_item);
    pub(crate) fn ksm_hooks_node_mappers(node: *mut ksm_stable_node) -> c_int;
    pub(crate) fn ksm_hooks_page_node(page: *mut page) -> *mut ksm_stable_node;
    pub(crate) fn ksm_hooks_merge_first(
        vma: *mut vm_area_struct,
        addr: usize,
        page: *mut page,
        node: *mut ksm_stable_node,
        item: *mut ksm_rmap_item,
    ) -> c_int;
    pub(crate) fn ksm_hooks_merge_into(
        node: *mut ksm_stable_node,
        vma: *mut vm_area_struct,
        addr: usize,
        page: *mut page,
        item: *mut ksm_rmap_item,
        max_mappers: c_int,
    ) -> c_int;
    pub(crate) fn ksm_hooks_merge_zero(vma: *mut vm_area_struct, addr: usize, page: *mut page)
        -> c_int;
    pub(crate) fn ksm_hooks_node_prune(node: *mut ksm_stable_node) -> c_int;
    pub(crate) fn ksm_hooks_node_release(node: *mut ksm_stable_node, force: bool) -> c_int;
    pub(crate) fn ksm_hooks_break(vma: *mut vm_area_struct, addr: usize) -> c_int;
    pub(crate) fn ksm_hooks_set_unmerging(unmerging: bool);
}

/// Milliseconds of the monotonic clock (the kernel's `ktime_get()`).
pub(crate) fn now_ms() -> i64 {
    // SAFETY: takes no arguments and may be called from any context.
    unsafe { uksm_now_ms() }
}

/// Nanoseconds of the monotonic clock (the kernel's `ktime_get_ns()`).
pub(crate) fn now_ns() -> u64 {
    // SAFETY: takes no arguments and may be called from any context.
    unsafe { uksm_now_ns() }
}

/// CPU time of the calling thread in ns (its scheduler clock: it lags by up to a tick
/// while the thread runs, exact over longer spans).
pub(crate) fn thread_cpu_ns() -> u64 {
    // SAFETY: reads the calling thread's own scheduler clock; valid in any thread context.
    unsafe { uksm_thread_cpu_ns() }
}
