// SPDX-License-Identifier: GPL-2.0

//! Thin owners of the kernel's memory-management objects: a reference on an mm, the mmap
//! read lock, a VMA borrowed under it, a page reference and a kmap of a page.
//!
//! Each type owns exactly one thing (a reference, a lock, a mapping), states what it
//! guarantees under `# Invariants`, and releases it when dropped, as the kernel crate's
//! own abstractions do (its 7.3 `mm` module has the same shapes: `MmWithUser`,
//! `MmapReadGuard`, `VmaRef`). The scanner, the stable tree and unmerging use these and
//! read as safe Rust; the `unsafe` calls into the C glue and the hook patch live here.

use crate::logic::domain::Policy;
use crate::logic::hash::{PageWords, WORDS};
use crate::sys::{self, mm_struct, page, vm_area_struct};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::page::PAGE_SIZE;

/// A reference on an mm's users (`mmget`): the address space stays.
///
/// # Invariants
///
/// `self.0` holds one reference taken by `mmget_not_zero` (or `get_task_mm`).
pub(crate) struct MmRef(NonNull<mm_struct>);

impl MmRef {
    /// Takes a user reference on `mm` unless its address space is going away.
    ///
    /// # Safety
    ///
    /// `mm` must point at a live `mm_struct` for the duration of the call.
    pub(crate) unsafe fn get(mm: *mut mm_struct) -> Option<Self> {
        let mm = NonNull::new(mm)?;
        // SAFETY: `mm` is live (caller).
        // `then`, not `then_some`: no `MmRef` (whose drop puts) without a reference.
        unsafe { sys::uksm_mmget_not_zero(mm.as_ptr()) }.then(|| MmRef(mm))
    }

    /// Adopts a user reference the caller took.
    ///
    /// # Safety
    ///
    /// `mm` must carry one user reference that is handed over to the result.
    pub(crate) unsafe fn adopt(mm: NonNull<mm_struct>) -> Self {
        MmRef(mm)
    }

    pub(crate) fn as_ptr(&self) -> *mut mm_struct {
        self.0.as_ptr()
    }
}

impl Drop for MmRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `self` holds one user reference.
        unsafe { sys::uksm_mmput(self.0.as_ptr()) };
    }
}

/// A reference on an mm's structure (`mmgrab`), not on its address space: dropping it
/// never tears an address space down, so it may be dropped under another mm's mmap lock.
/// The address space may be exiting: [`MmapReadGuard::has_users`] tells.
///
/// # Invariants
///
/// `self.0` holds one reference taken by `mmgrab`.
pub(crate) struct MmGrab(NonNull<mm_struct>);

impl MmGrab {
    /// Takes a structure reference on `mm`.
    ///
    /// # Safety
    ///
    /// `mm` must point at a live `mm_struct` for the duration of the call.
    pub(crate) unsafe fn get(mm: NonNull<mm_struct>) -> Self {
        // SAFETY: `mm` is live (caller).
        unsafe { sys::uksm_mmgrab(mm.as_ptr()) };
        MmGrab(mm)
    }

    pub(crate) fn as_ptr(&self) -> *mut mm_struct {
        self.0.as_ptr()
    }
}

impl Drop for MmGrab {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `self` holds one structure reference.
        unsafe { sys::uksm_mmdrop(self.0.as_ptr()) };
    }
}

/// Something that keeps an `mm_struct` alive while borrowed.
pub(crate) trait HoldsMm {
    fn mm(&self) -> *mut mm_struct;

    /// The merge domain of the mm's pages under `policy` (crate::logic::domain), as its
    /// owner is now.
    fn domain(&self, policy: Policy) -> u64 {
        // SAFETY: `self` keeps the mm alive while borrowed.
        unsafe { sys::uksm_mm_domain(self.mm(), policy.as_u32()) }
    }
}

impl HoldsMm for MmRef {
    fn mm(&self) -> *mut mm_struct {
        self.as_ptr()
    }
}

impl HoldsMm for MmGrab {
    fn mm(&self) -> *mut mm_struct {
        self.as_ptr()
    }
}

/// The mmap lock of an mm, held for read until dropped.
///
/// # Invariants
///
/// The read lock of `self.mm` is held by this guard, and `self.mm` stays allocated for
/// `'a` (it is borrowed from a reference holder).
pub(crate) struct MmapReadGuard<'a> {
    mm: *mut mm_struct,
    _holder: PhantomData<&'a ()>,
}

impl<'a> MmapReadGuard<'a> {
    /// Tries the read lock: never waits (uksmd never waits for a busy process).
    pub(crate) fn try_lock(holder: &'a impl HoldsMm) -> Option<Self> {
        let mm = holder.mm();
        // SAFETY: `holder` keeps `mm` allocated.
        // `then`, not `then_some`: no guard (whose drop unlocks) without the lock.
        unsafe { sys::uksm_mmap_read_trylock(mm) }.then(|| MmapReadGuard {
            mm,
            _holder: PhantomData,
        })
    }

    /// Takes the read lock, waiting for it.
    pub(crate) fn lock(holder: &'a impl HoldsMm) -> Self {
        let mm = holder.mm();
        // SAFETY: `holder` keeps `mm` allocated.
        unsafe { sys::uksm_mmap_read_lock(mm) };
        MmapReadGuard {
            mm,
            _holder: PhantomData,
        }
    }

    pub(crate) fn mm(&self) -> *mut mm_struct {
        self.mm
    }

    /// Whether the address space still has users (it is not exiting).
    pub(crate) fn has_users(&self) -> bool {
        // SAFETY: `self.mm` is allocated (type invariant).
        unsafe { sys::uksm_mm_has_users(self.mm) }
    }

    /// KSM zero pages the process maps now.
    pub(crate) fn ksm_zero_pages(&self) -> i64 {
        // SAFETY: `self.mm` is allocated (type invariant).
        unsafe { sys::uksm_mm_ksm_zero_pages(self.mm) as i64 }
    }

    /// The VMA containing `addr`.
    pub(crate) fn vma_lookup(&self, addr: usize) -> Option<VmaRef<'_>> {
        // SAFETY: the mmap lock is held (type invariant).
        VmaRef::new(unsafe { sys::uksm_vma_lookup(self.mm, addr) })
    }

    /// The first VMA ending after `addr`.
    pub(crate) fn find_vma(&self, addr: usize) -> Option<VmaRef<'_>> {
        // SAFETY: the mmap lock is held (type invariant).
        VmaRef::new(unsafe { sys::uksm_find_vma(self.mm, addr) })
    }
}

impl Drop for MmapReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the read lock (type invariant).
        unsafe { sys::uksm_mmap_read_unlock(self.mm) };
    }
}

/// A VMA borrowed for as long as the mmap lock of its mm is held.
///
/// # Invariants
///
/// `self.vma` is a VMA linked in the mm whose read lock the borrowed guard holds.
#[derive(Clone, Copy)]
pub(crate) struct VmaRef<'a> {
    vma: NonNull<vm_area_struct>,
    _guard: PhantomData<&'a ()>,
}

impl<'a> VmaRef<'a> {
    fn new(vma: *mut vm_area_struct) -> Option<Self> {
        Some(VmaRef {
            vma: NonNull::new(vma)?,
            _guard: PhantomData,
        })
    }

    /// Another VMA of the same mm, borrowed under the same lock.
    pub(crate) fn sibling(&self, addr: usize) -> Option<VmaRef<'a>> {
        // SAFETY: the mmap lock of this VMA's mm is held for `'a` (type invariant).
        VmaRef::new(unsafe { sys::uksm_vma_lookup(sys::uksm_vma_mm(self.as_ptr()), addr) })
    }

    /// The VMA's address, as an identity (the registry's key); never dereferenced.
    pub(crate) fn as_ptr(&self) -> *mut vm_area_struct {
        self.vma.as_ptr()
    }

    pub(crate) fn start(&self) -> usize {
        // SAFETY: the VMA is valid (type invariant).
        unsafe { sys::uksm_vma_start(self.as_ptr()) }
    }

    pub(crate) fn end(&self) -> usize {
        // SAFETY: the VMA is valid (type invariant).
        unsafe { sys::uksm_vma_end(self.as_ptr()) }
    }

    /// Whether the VMA is tracked and its pages may be merged now: not userfaultfd-armed
    /// (a merged PTE would drop a write-protect marker), not opted out (`MADV_UNMERGEABLE`,
    /// `prctl(PR_SET_MEMORY_MERGE, 0)`).
    pub(crate) fn mergeable(&self) -> bool {
        // SAFETY: the VMA is valid under the held mmap lock (type invariant).
        unsafe {
            !sys::uksm_vma_private(self.as_ptr()).is_null()
                && !sys::uksm_vma_uffd_armed(self.as_ptr())
                && !sys::uksm_vma_opted_out(self.as_ptr())
        }
    }

    /// Whether a KSM zero page may be mapped here: not userfaultfd-armed, and copied by
    /// fork (the child of a fork inherits the parent's count of KSM zero pages, including
    /// ones in VMAs it does not get, and the global count would never return to 0).
    pub(crate) fn zero_pages_allowed(&self) -> bool {
        // SAFETY: as above.
        unsafe {
            !sys::uksm_vma_uffd_armed(self.as_ptr())
                && !sys::uksm_vma_not_copied_on_fork(self.as_ptr())
        }
    }

    /// Whether anonymous pages (so merged ones) can be here: anonymous, with an anon_vma.
    pub(crate) fn may_hold_anon_pages(&self) -> bool {
        // SAFETY: as above.
        unsafe {
            sys::uksm_vma_is_anonymous(self.as_ptr()) && sys::uksm_vma_has_anon_vma(self.as_ptr())
        }
    }

    /// The first address from `from` up to `end` (within the VMA) mapping a present
    /// anonymous page (`Some(page)`) or a KSM zero page (`None`). Empty page-table ranges
    /// cost nothing.
    pub(crate) fn next_page(&self, from: usize, end: usize) -> Option<(usize, Option<PageRef>)> {
        let mut page = core::ptr::null_mut();
        // SAFETY: the VMA is valid under the mmap lock; the walk takes a page reference.
        let at = unsafe { sys::uksm_next_page(self.as_ptr(), from, end, &mut page) };
        let end = end.min(self.end());
        // SAFETY: a page the walk returns carries the reference it took.
        (at < end).then(|| (at, NonNull::new(page).map(|p| unsafe { PageRef::adopt(p) })))
    }

    /// The anonymous page mapped at `addr`, if it is one that can be merged (not a KSM
    /// zero page, not a merged folio).
    pub(crate) fn page_at(&self, addr: usize) -> Option<PageRef> {
        match self.next_page(addr, addr + PAGE_SIZE) {
            Some((at, Some(page))) if at == addr && !page.is_ksm() => Some(page),
            _ => None,
        }
    }

    /// Breaks the KSM page or KSM zero page at `addr` (`break_ksm()`): the process gets a
    /// private copy. Returns 0 or a negative errno (`-ENOMEM`).
    pub(crate) fn break_merged(&self, addr: usize) -> i32 {
        // SAFETY: the VMA is valid under the mmap lock.
        unsafe { sys::ksm_hooks_break(self.as_ptr(), addr) }
    }
}

/// A page with a reference held.
///
/// # Invariants
///
/// `self.0` holds one page reference, dropped with `put_page`.
pub(crate) struct PageRef(NonNull<page>);

impl PageRef {
    /// # Safety
    ///
    /// `page` must carry one reference that is handed over to the result.
    pub(crate) unsafe fn adopt(page: NonNull<page>) -> Self {
        PageRef(page)
    }

    pub(crate) fn as_ptr(&self) -> *mut page {
        self.0.as_ptr()
    }

    /// Whether the page belongs to a KSM folio.
    pub(crate) fn is_ksm(&self) -> bool {
        // SAFETY: the page is referenced (type invariant).
        unsafe { sys::uksm_page_is_ksm(self.as_ptr()) }
    }

    /// The pages of the page's folio (1 for a small one, more for a THP or an mTHP) and the
    /// page's index in it. A hint: the folio may be split meanwhile.
    pub(crate) fn folio_span(&self) -> (usize, usize) {
        let mut index = 0;
        // SAFETY: the page is referenced (type invariant); `index` is a valid place to write.
        let pages = unsafe { sys::uksm_page_folio_pages(self.as_ptr(), &mut index) };
        (index as usize, pages as usize)
    }

    /// Whether something beyond its mappings holds the page (a GUP pin, a pipe): merging
    /// would be refused. A hint: nothing is locked.
    pub(crate) fn held_elsewhere(&self) -> bool {
        // SAFETY: as above.
        unsafe { sys::uksm_page_held_elsewhere(self.as_ptr()) }
    }

    /// Whether two pages hold the same bytes now (a hint: their owners may write them).
    pub(crate) fn same_content(&self, other: &PageRef) -> bool {
        // SAFETY: both pages are referenced.
        unsafe { sys::uksm_pages_identical(self.as_ptr(), other.as_ptr()) }
    }

    /// Maps the page into the kernel's address space for reading.
    pub(crate) fn kmap(&self) -> Kmap<'_> {
        // SAFETY: the page is referenced, so it stays allocated while mapped.
        let addr = unsafe { sys::uksm_kmap_page(self.as_ptr()) };
        Kmap {
            words: addr.cast(),
            _page: PhantomData,
        }
    }
}

impl Drop for PageRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `self` holds one reference.
        unsafe { sys::uksm_put_page(self.as_ptr()) };
    }
}

/// A page mapped for reading (`kmap_local_page`), read word by word with volatile loads:
/// its owner may write it meanwhile.
///
/// # Invariants
///
/// `self.words` maps the whole borrowed page until dropped, in this context.
pub(crate) struct Kmap<'a> {
    words: *const u32,
    _page: PhantomData<&'a PageRef>,
}

impl PageWords for Kmap<'_> {
    fn word(&self, index: usize) -> u32 {
        assert!(index < WORDS);
        // SAFETY: `self.words` maps `WORDS` words (type invariant), `index` is in range.
        unsafe { self.words.add(index).read_volatile() }
    }
}

impl Drop for Kmap<'_> {
    fn drop(&mut self) {
        // SAFETY: mapped by `PageRef::kmap` in this context (type invariant).
        unsafe { sys::uksm_kunmap(self.words.cast()) };
    }
}
