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
//! # Zero pages and duplicates
//!
//! With `use_zero_pages` (the default), a page whose hash equals the hash of a page of zeros
//! is handed to [`merge::merge_zero_page`], which maps the KSM zero page in its place if the
//! page really is all zeros. Hashes use UKSM's initial strength ([`hash::INITIAL`]); the
//! adaptive strength comes with the governor. The hashes of all other pages of a pass are collected; at the end of the
//! pass they are sorted, and every page whose hash an earlier page had counts as a
//! duplicate candidate (`duplicate_candidates`, for the last complete pass). Merging those
//! is the next step of the merge engine.
//!
//! A round holds the merge lock, so `run=2` and unload never race with a merge.
//!
//! While `run` is 0 uksmd sleeps until a sysfs write wakes it. It also prints the periodic
//! statistics line.

use crate::logic::hash::{self, PageWords, SampleOrder};
use crate::logic::tunable::Id;
use crate::merge;
use crate::registry::Target;
use crate::sys::{self, page, task_struct};
use crate::{tunables, Uksm};
use core::ffi::{c_int, c_void};
use core::sync::atomic::Ordering;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
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

/// The scanner's own state, owned by the uksmd thread.
struct Scanner {
    /// Registry key of the VMA being scanned, and the next address in it.
    key: usize,
    addr: usize,
    order: SampleOrder,
    /// Hash of a page of zeros.
    zero_hash: u32,
    /// Hashes of the pages seen in this pass (capacity kept from pass to pass).
    seen: KVVec<u32>,
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
        // SAFETY: no precondition.
        let order = SampleOrder::new(unsafe { sys::uksm_random_u64() });
        let zero_hash = order.hash(&hash::ZeroPage, hash::INITIAL);
        Scanner {
            key: 0,
            addr: 0,
            order,
            zero_hash,
            seen: KVVec::new(),
        }
    }

    /// Hashes `page` (which holds a reference).
    fn hash(&self, page: *mut page) -> u32 {
        // SAFETY: `page` is referenced, so it stays allocated while mapped.
        let mapped = unsafe { sys::uksm_kmap_page(page) };
        let h = self.order.hash(&MappedPage(mapped.cast()), hash::INITIAL);
        // SAFETY: mapped above, in this context.
        unsafe { sys::uksm_kunmap(mapped) };
        h
    }

    /// Counts the pages of this pass whose hash an earlier page of the pass had.
    fn duplicates(&mut self) -> u64 {
        self.seen.sort_unstable();
        self.seen.windows(2).filter(|w| w[0] == w[1]).count() as u64
    }

    /// Scans pages of `target` from `self.addr`, using up `budget`. Returns true when the
    /// VMA is done (or skipped).
    fn scan_vma(&mut self, uksm: &Uksm, target: &Target, budget: &mut usize) -> bool {
        let use_zero_pages = tunables::get(Id::UseZeroPages) == 1;
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
                    // A hash equal to the zero page's is only a hint: the merge compares
                    // the whole page after write-protecting it.
                    // SAFETY: mmap lock held, `vma` tracked, `page` mapped at `addr` with
                    // our reference.
                    let merged = h == self.zero_hash
                        && use_zero_pages
                        && unsafe { merge::merge_zero_page(vma, page, addr) };
                    // SAFETY: the reference taken by `uksm_get_anon_page`.
                    unsafe { sys::uksm_put_page(page) };
                    // Without room, the page is left out of the duplicate count only.
                    if !merged && self.seen.push(h, GFP_KERNEL).is_err() {
                        uksm.alloc_failures.fetch_add(1, Ordering::Relaxed);
                    }
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
        // Pages still in per-CPU LRU batches carry a reference that makes merging refuse
        // them; release those once per pass, as KSM does.
        // SAFETY: may sleep; uksmd holds no spinlock here.
        unsafe { sys::uksm_lru_add_drain_all() };
        let duplicates = self.duplicates();
        uksm.duplicate_candidates
            .store(duplicates, Ordering::Relaxed);
        uksm.full_scans.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `u32` needs no drop; the capacity stays for the next pass.
        unsafe { self.seen.set_len(0) };
        self.key = 0;
        self.addr = 0;
    }

    /// One round: up to `pages_to_scan` page addresses. Returns false if asked to stop.
    fn round(&mut self, uksm: &Uksm) -> bool {
        let _merging = uksm.merge_lock.lock();
        // run=2 may have unmerged everything while this thread waited for the lock.
        if tunables::get(Id::Run) != 1 {
            return true;
        }
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
        let mut timeout_ms: i64 = if running {
            tunables::get(Id::SleepMillisecs) as i64
        } else {
            -1
        };
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
