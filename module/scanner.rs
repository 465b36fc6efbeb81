// SPDX-License-Identifier: GPL-2.0

//! uksmd, the scanner thread.
//!
//! # What a round does
//!
//! While `run` is 1, uksmd does one round every `sleep_millisecs`. A round visits up to
//! `pages_to_scan` page addresses, continuing where the previous round stopped: VMAs in
//! registry order, addresses in ascending order inside a VMA. When the registry is
//! exhausted, a pass is complete: `full_scans` goes up and the next round starts again at
//! the beginning.
//!
//! For each VMA the scanner takes a reference on the mm (under the registry lock, while the
//! VMA is known to be alive), drops the registry lock, *tries* the mm's mmap lock (a busy mm
//! is skipped for this pass, never waited for) and looks the VMA up again: only if the same
//! tracked VMA is still there does it read its pages. A present, small, anonymous, not yet
//! merged page is hashed ([`SampleOrder`]) without locking it: the hash is only a hint.
//!
//! # Candidates
//!
//! Each pass builds a tree from page hash to the first place that page was seen (the
//! unstable tree of candidates). A later page with the same hash is a duplicate
//! candidate; `duplicate_candidates` shows how many the last complete pass found. Merging
//! them is not done here yet; the tree is where it will start.
//!
//! While `run` is 0 uksmd sleeps until a sysfs write wakes it. It also prints the periodic
//! statistics line.

use crate::logic::hash::{self, PageWords, SampleOrder};
use crate::logic::tunable::Id;
use crate::registry::Target;
use crate::sys::{self, page, task_struct};
use crate::{tunables, Uksm};
use core::ffi::{c_int, c_void};
use core::sync::atomic::Ordering;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode};
use kernel::time::Ktime;

/// The running uksmd thread.
pub(crate) struct Thread {
    task: *mut task_struct,
}

// SAFETY: the handle is only used to stop the thread, which kthread_stop allows from any
// thread.
unsafe impl Send for Thread {}
// SAFETY: `&Thread` gives no access to the task.
unsafe impl Sync for Thread {}

impl Thread {
    pub(crate) fn start() -> Result<Self> {
        // SAFETY: the thread reaches the published state only.
        let task = unsafe { sys::uksm_thread_start() };
        // SAFETY: checking an error pointer.
        if unsafe { sys::uksm_is_err(task.cast()) } {
            // SAFETY: `task` is an error pointer.
            let errno = unsafe { sys::uksm_ptr_err(task.cast()) };
            return Err(Error::from_errno(errno as c_int));
        }
        Ok(Thread { task })
    }

    /// Stops the thread and waits for it to exit.
    pub(crate) fn stop(self) {
        // SAFETY: `task` is the thread started in `start`, not stopped before (`self` is
        // consumed).
        unsafe { sys::uksm_thread_stop(self.task) };
    }
}

fn should_stop() -> bool {
    // SAFETY: called from the uksmd thread.
    unsafe { sys::uksm_thread_should_stop() }
}

/// Where a candidate page was first seen (not dereferenced: a hint for the merge step).
struct Candidate {
    _mm: usize,
    _addr: usize,
}

/// The scanner's own state, owned by the uksmd thread.
struct Scanner {
    /// Registry key of the VMA being scanned, and the next address in it.
    key: usize,
    addr: usize,
    order: SampleOrder,
    strength: usize,
    candidates: RBTree<u32, Candidate>,
    duplicates_this_pass: u64,
}

/// A mapped page, read word by word with volatile loads: its owner may write it meanwhile.
struct MappedPage(*const u32);

impl PageWords for MappedPage {
    fn word(&self, index: usize) -> u32 {
        debug_assert!(index < hash::WORDS);
        // SAFETY: `self.0` maps a whole page (`WORDS` words) for the life of `self`.
        unsafe { self.0.add(index).read_volatile() }
    }
}

impl Scanner {
    fn new() -> Self {
        Scanner {
            key: 0,
            addr: 0,
            // SAFETY: no precondition.
            order: SampleOrder::new(unsafe { sys::uksm_random_u64() }),
            strength: hash::INITIAL,
            candidates: RBTree::new(),
            duplicates_this_pass: 0,
        }
    }

    /// Hashes `page` (which holds a reference).
    fn hash(&self, page: *mut page) -> u32 {
        // SAFETY: `page` is referenced, so it stays allocated while mapped.
        let mapped = unsafe { sys::uksm_kmap_page(page) };
        let h = self.order.hash(&MappedPage(mapped.cast()), self.strength);
        // SAFETY: mapped above, in this context.
        unsafe { sys::uksm_kunmap(mapped) };
        h
    }

    /// Records a page of hash `h` at `addr` of `mm` in this pass's candidate tree.
    fn note(&mut self, h: u32, mm: usize, addr: usize) {
        if self.candidates.get(&h).is_some() {
            self.duplicates_this_pass += 1;
        } else if let Ok(node) = RBTreeNode::new(h, Candidate { _mm: mm, _addr: addr }, GFP_KERNEL) {
            self.candidates.insert(node);
        }
    }

    /// Scans pages of `target` from `self.addr`, using up `budget`. Returns true when the
    /// VMA is done (or skipped).
    fn scan_vma(&mut self, uksm: &Uksm, target: &Target, budget: &mut usize) -> bool {
        let mm = target.mm.as_ptr();
        // SAFETY: `target.mm` holds a reference on `mm`.
        if !unsafe { sys::uksm_mmap_read_trylock(mm) } {
            return true;
        }
        // SAFETY: the mmap lock is held; a VMA found now stays valid until it is dropped.
        let vma = unsafe { sys::uksm_vma_lookup(mm, target.start) };
        // SAFETY: as above (`vma` is only read if it is the tracked one).
        let same = vma == target.vma && !unsafe { sys::uksm_vma_private(vma) }.is_null();
        let mut done = true;
        if same {
            // SAFETY: `vma` is valid under the mmap lock.
            let (start, end) = unsafe { (sys::uksm_vma_start(vma), sys::uksm_vma_end(vma)) };
            let mut addr = self.addr.max(start);
            let mut scanned = 0;
            while addr < end && *budget > 0 {
                // SAFETY: `vma` is valid and `addr` inside it, under the mmap lock.
                let page = unsafe { sys::uksm_get_anon_page(vma, addr) };
                if !page.is_null() {
                    let h = self.hash(page);
                    // SAFETY: the reference taken by `uksm_get_anon_page`.
                    unsafe { sys::uksm_put_page(page) };
                    self.note(h, mm as usize, addr);
                    scanned += 1;
                }
                *budget -= 1;
                addr += PAGE_SIZE;
            }
            uksm.pages_scanned.fetch_add(scanned, Ordering::Relaxed);
            self.addr = addr;
            done = addr >= end;
        }
        // SAFETY: taken above.
        unsafe { sys::uksm_mmap_read_unlock(mm) };
        done
    }

    fn end_pass(&mut self, uksm: &Uksm) {
        uksm.duplicate_candidates.store(self.duplicates_this_pass, Ordering::Relaxed);
        uksm.full_scans.fetch_add(1, Ordering::Relaxed);
        self.duplicates_this_pass = 0;
        self.candidates = RBTree::new();
        self.key = 0;
        self.addr = 0;
    }

    /// One round: up to `pages_to_scan` page addresses. Returns false if asked to stop.
    fn round(&mut self, uksm: &Uksm) -> bool {
        let mut budget = tunables::get(Id::PagesToScan) as usize;
        let mut wrapped = false;
        while budget > 0 {
            let target = uksm.registry.lock().next_target(self.key);
            let Some(target) = target else {
                self.end_pass(uksm);
                if wrapped {
                    break;
                }
                wrapped = true;
                continue;
            };
            if target.key != self.key {
                self.key = target.key;
                self.addr = 0;
            }
            if self.scan_vma(uksm, &target, &mut budget) {
                self.key = target.key + 1;
                self.addr = 0;
            }
            // `target` (and its mm reference) is dropped here, outside every lock.
            drop(target);
            // SAFETY: no lock is held.
            unsafe { sys::uksm_cond_resched() };
            if should_stop() {
                return false;
            }
        }
        true
    }
}

/// Body of uksmd (called by the glue's thread function).
#[no_mangle]
extern "C" fn uksm_rs_thread_main(_data: *mut c_void) -> c_int {
    let Some(uksm) = Uksm::get() else {
        return 0;
    };
    let mut scanner = Scanner::new();
    let mut last_stats = Ktime::ktime_get();
    while !should_stop() {
        let running = tunables::get(Id::Run) == 1;
        if running && !scanner.round(uksm) {
            break;
        }
        let mut timeout_ms: i64 =
            if running { tunables::get(Id::SleepMillisecs) as i64 } else { -1 };
        let interval_ms = tunables::get(Id::StatsIntervalSecs) as i64 * 1000;
        if interval_ms > 0 {
            if (Ktime::ktime_get() - last_stats).to_ms() >= interval_ms {
                uksm.log_stats("stats");
                last_stats = Ktime::ktime_get();
            }
            let until_stats = interval_ms - (Ktime::ktime_get() - last_stats).to_ms();
            if timeout_ms < 0 || until_stats < timeout_ms {
                timeout_ms = until_stats.max(0);
            }
        }
        // SAFETY: called from the uksmd thread.
        unsafe { sys::uksm_thread_wait(timeout_ms as _) };
    }
    0
}
