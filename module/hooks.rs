// SPDX-License-Identifier: GPL-2.0

//! The ksm_hooks callbacks (include/linux/ksm_hooks.h in the hook patch), registered by the
//! C glue's ops table: VMAs appearing and going feed the [`registry`](crate::registry).
//! Merged folios need no callback: they carry KSM's own structures, which the kernel's
//! own code serves.

use crate::sys::vm_area_struct;
use crate::Uksm;

/// Hook: `vma` became visible in its mm (mmap lock held for write).
#[no_mangle]
unsafe extern "C" fn uksm_rs_vma_linked(vma: *mut vm_area_struct) {
    if let Some(uksm) = Uksm::get() {
        // SAFETY: ksm_hooks calls this with `vma` linked and its mmap lock held.
        unsafe { uksm.adopt(vma) };
    }
}

/// Hook: `vma`, which carries a `ksm_private` pointer, is about to be freed.
#[no_mangle]
unsafe extern "C" fn uksm_rs_vma_free(vma: *mut vm_area_struct) {
    if let Some(uksm) = Uksm::get() {
        // SAFETY: ksm_hooks calls this before `vma` is freed.
        let slot = unsafe { uksm.registry.lock().release(vma) };
        // Freed here, outside the registry lock.
        drop(slot);
    }
}
