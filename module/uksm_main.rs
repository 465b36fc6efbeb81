// SPDX-License-Identifier: GPL-2.0

//! uksm.ko: Ultra Kernel Samepage Merging as a loadable module.
//!
//! Loading the module registers it with the kernel's ksm_hooks (see hooks/ in the
//! repository), adopts every eligible VMA of every process into the [`registry`], creates
//! /sys/kernel/mm/uksm/ and starts the `uksmd` thread ([`scanner`]). Unloading undoes all
//! of that in reverse order and leaves no pointer into module memory behind.
//!
//! # Global state
//!
//! The hook callbacks, sysfs and the thread reach the one [`Uksm`] through [`Uksm::get`].
//! It is published before the hooks are registered and withdrawn only after sysfs is gone,
//! the thread has stopped and the hooks are unregistered (which waits for running
//! callbacks), so every caller of `get` sees a live object.

// `pin_init!` expands recursively per field of [`Uksm`].
#![recursion_limit = "256"]

use crate::sys::vm_area_struct;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::rbtree::RBTreeNodeReservation;
use kernel::sync::{Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock};

mod hooks;
mod merge;
mod merged_map;
mod mm;
mod registry;
mod scanner;
mod settings;
mod stable;
mod sys;
mod tunables;
mod unstable;

/// Kernel-independent logic: the files of the host-tested `uksm-logic` crate, compiled in.
/// Public so that the crate's public API is not reported as unreachable here.
pub mod logic {
    #[path = "../logic/src/domain.rs"]
    pub mod domain;
    #[path = "../logic/src/governor.rs"]
    pub mod governor;
    #[path = "../logic/src/hash.rs"]
    pub mod hash;
    #[path = "../logic/src/ladder.rs"]
    pub mod ladder;
    #[path = "../logic/src/merged_bits.rs"]
    pub mod merged_bits;
    #[path = "../logic/src/node_key.rs"]
    pub mod node_key;
    #[path = "../logic/src/strength.rs"]
    pub mod strength;
    #[path = "../logic/src/tunable.rs"]
    pub mod tunable;
    #[path = "../logic/src/unstable.rs"]
    pub mod unstable;
}

use logic::domain::Policy;
use logic::tunable::Id;
use registry::{MmSnapshot, Registry};

#[cfg(not(uksm_module_authors))]
module! {
    type: UksmModule,
    name: "uksm",
    author: "UKSM developers",
    description: "Ultra Kernel Samepage Merging: system-wide merging of identical anonymous pages",
    license: "GPL",
}

#[cfg(uksm_module_authors)]
module! {
    type: UksmModule,
    name: "uksm",
    authors: ["UKSM developers"],
    description: "Ultra Kernel Samepage Merging: system-wide merging of identical anonymous pages",
    license: "GPL",
}

/// State shared by the hooks, sysfs and uksmd.
#[pin_data]
pub(crate) struct Uksm {
    #[pin]
    pub(crate) registry: SpinLock<Registry>,
    /// The merge engine's trees. Held by uksmd for a round and by [`Uksm::unmerge_all`]: no
    /// merge happens while everything is being unmerged. Taken before any mmap lock.
    #[pin]
    merge_lock: Mutex<merge::Engine>,
    full_scans: AtomicU64,
    pages_scanned: AtomicU64,
    /// Merged folios still mapped, and their further mappings (KSM's meanings): exact at
    /// the end of each pass, counted up by merges in between.
    pages_shared: AtomicU64,
    pages_sharing: AtomicU64,
    /// Pages of the last complete pass not merged with anything.
    pages_unshared: AtomicU64,
    /// Pages the tracked VMAs spanned in the last complete pass.
    tracked_pages: AtomicU64,
    /// Pages merged since load (into merged folios or the zero page), cumulative.
    pages_merged: AtomicU64,
    /// Mappings of merged folios the scanner met without an rmap item and gave one
    /// (processes forked after a merge).
    rmap_repairs: AtomicU64,
    /// Pages the module merged that samples found replaced since (by a write, mostly).
    merges_broken: AtomicU64,
    /// Pages the module merged that samples found in a huge page since (khugepaged or
    /// `MADV_COLLAPSE` copied them into it).
    merges_collapsed: AtomicU64,
    /// Times a VMA was held for thrashing.
    thrash_holds: AtomicU64,
    /// Allocations that failed: a VMA left untracked. Nothing else depends on them.
    alloc_failures: AtomicU64,
    /// uksmd's average CPU time per visited page, in ns (`ema_per_page_time`).
    page_cost_ns: AtomicU64,
    /// Times uksmd slept after a round (`sleep_times`).
    sleep_times: AtomicU64,
    /// The strength of the partial hash (`hash_strength`), set by uksmd.
    hash_strength: AtomicU64,
    /// When the module was loaded, in milliseconds of the monotonic clock.
    loaded_at_ms: i64,
}

static STATE: AtomicPtr<Uksm> = AtomicPtr::new(ptr::null_mut());

impl Uksm {
    fn new() -> impl PinInit<Self> {
        pin_init!(Uksm {
            registry <- new_spinlock!(Registry::new(), "uksm_registry"),
            merge_lock <- new_mutex!(merge::Engine::new(), "uksm_merge"),
            full_scans: AtomicU64::new(0),
            pages_scanned: AtomicU64::new(0),
            pages_shared: AtomicU64::new(0),
            pages_sharing: AtomicU64::new(0),
            pages_unshared: AtomicU64::new(0),
            tracked_pages: AtomicU64::new(0),
            rmap_repairs: AtomicU64::new(0),
            merges_broken: AtomicU64::new(0),
            merges_collapsed: AtomicU64::new(0),
            thrash_holds: AtomicU64::new(0),
            pages_merged: AtomicU64::new(0),
            alloc_failures: AtomicU64::new(0),
            page_cost_ns: AtomicU64::new(logic::governor::PageCost::INITIAL_NS),
            sleep_times: AtomicU64::new(0),
            hash_strength: AtomicU64::new(crate::logic::hash::INITIAL as u64),
            loaded_at_ms: sys::now_ms(),
        })
    }

    /// The module's state, while it is published (see the module documentation).
    pub(crate) fn get() -> Option<&'static Uksm> {
        // SAFETY: a non-null pointer is the pinned `Uksm` owned by `UksmModule`, which
        // stays alive until every caller is gone (module documentation).
        unsafe { STATE.load(Ordering::Acquire).as_ref() }
    }

    /// Tracks `vma` if eligible.
    ///
    /// # Safety
    ///
    /// `vma` must be linked in its mm with that mm's mmap lock held.
    pub(crate) unsafe fn adopt(&self, vma: *mut vm_area_struct) {
        // SAFETY: the caller guarantees `vma` is linked and settled.
        if !unsafe { registry::is_eligible(vma) } {
            return;
        }
        let Ok(reservation) = RBTreeNodeReservation::new(GFP_KERNEL) else {
            self.alloc_failures.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // SAFETY: forwarded from the caller.
        unsafe { self.registry.lock().adopt(vma, reservation) };
    }

    /// Adopts every eligible VMA of every process that exists now. VMAs created meanwhile
    /// arrive through the hooks; adoption is idempotent.
    fn adopt_existing(&self) -> Result<usize> {
        let snapshot = MmSnapshot::take()?;
        // SAFETY: `for_each_vma` passes linked VMAs with their mmap lock held.
        snapshot.for_each_vma(|_, vma| unsafe { self.adopt(vma.as_ptr()) });
        Ok(snapshot.len())
    }

    /// Tracked VMAs now (O(1): the registry lock is held for a moment).
    pub(crate) fn tracked_vmas(&self) -> usize {
        self.registry.lock().vmas()
    }

    /// Unmerges everything (run=2, unload); uksmd merges nothing meanwhile. With
    /// `interruptible` (run=2), a signal to the writer ends it early with `EINTR`; unload
    /// does not return before every merged page is unmerged, or, for pages the kernel
    /// cannot copy for minutes, detached (see [`merge`]).
    pub(crate) fn unmerge_all(&self, interruptible: bool) -> Result {
        let mut engine = self.merge_lock.lock();
        self.unmerge_locked(&mut engine, interruptible)
    }

    /// Changes the merge domain policy: unmerges everything under the merge lock (pages
    /// merged under the old policy may be forbidden under the new one; uksmd merges again
    /// what it allows), and applies the policy from uksmd's next round on. Interrupted by a
    /// signal, the old policy stays, with fewer pages merged.
    pub(crate) fn set_merge_domain(&self, policy: Policy) -> Result {
        let mut engine = self.merge_lock.lock();
        let old = tunables::merge_domain();
        if old == policy {
            return Ok(());
        }
        self.unmerge_locked(&mut engine, true)?;
        tunables::store_merge_domain(policy);
        pr_info!("merge_domain {} (was {}): everything unmerged, merging again\n", policy.name(), old.name());
        Ok(())
    }

    fn unmerge_locked(&self, engine: &mut merge::Engine, interruptible: bool) -> Result {
        let result = loop {
            match merge::unmerge_all(engine, interruptible) {
                Ok(u) => {
                    pr_info!(
                        "unmerged {} pages in {} passes{}\n",
                        u.pages,
                        u.passes,
                        if u.failures > 0 {
                            " (some pages could not be copied at first: out of memory)"
                        } else {
                            ""
                        }
                    );
                    if u.detached > 0 {
                        pr_warn!(
                            "{} merged pages could not be copied (out of memory): left mapped as KSM pages without rmap items until written or unmapped\n",
                            u.detached
                        );
                    }
                    break Ok(());
                }
                Err(e) if e == EINTR => {
                    pr_info!("unmerging interrupted by a signal\n");
                    break Err(e);
                }
                Err(e) => {
                    pr_err!("unmerging: {:?}, retrying\n", e);
                    // SAFETY: only the merge lock (a mutex) is held.
                    unsafe { sys::uksm_msleep(100) };
                }
            }
        };
        if result.is_ok() {
            self.pages_shared.store(0, Ordering::Relaxed);
            self.pages_sharing.store(0, Ordering::Relaxed);
            self.pages_unshared.store(0, Ordering::Relaxed);
        }
        result
    }

    /// Returns once no scan round is running.
    pub(crate) fn wait_for_round(&self) {
        drop(self.merge_lock.lock());
    }

    /// Tracked VMAs on each rung of the sampling ladder.
    pub(crate) fn rung_vmas(&self) -> [u64; logic::governor::RUNGS] {
        // Counts kept as VMAs move (O(1) under the lock: anyone may read this file, and
        // the lock is the one mmap's hooks take).
        let registry = self.registry.lock();
        core::array::from_fn(|rung| registry.on_rung(rung) as u64)
    }

    pub(crate) fn registry_anomalies(&self) -> u64 {
        self.registry.lock().anomalies()
    }

    /// Seconds since load.
    fn uptime_secs(&self) -> i64 {
        (sys::now_ms() - self.loaded_at_ms) / 1000
    }

    /// The statistics line printed at load, periodically and at unload.
    fn log_stats(&self, when: &str) {
        let gov = settings::current();
        pr_info!(
            "{}: run={} tracked_vmas={} tracked_pages={} full_scans={} pages_scanned={} pages_shared={} pages_sharing={} pages_unshared={} ksm_zero_pages={} rmap_repairs={} merges_broken={} merges_collapsed={} thrash_holds={} uptime_secs={} alloc_failures={} registry_anomalies={} cpu_governor={} max_cpu_percentage={} ema_per_page_time={} hash_strength={} sleep_times={} rung_vmas={}\n",
            when,
            tunables::get(Id::Run),
            self.tracked_vmas(),
            self.tracked_pages.load(Ordering::Relaxed),
            self.full_scans.load(Ordering::Relaxed),
            self.pages_scanned.load(Ordering::Relaxed),
            self.pages_shared.load(Ordering::Relaxed),
            self.pages_sharing.load(Ordering::Relaxed),
            self.pages_unshared.load(Ordering::Relaxed),
            // SAFETY: reads a counter.
            unsafe { sys::uksm_ksm_zero_pages() },
            self.rmap_repairs.load(Ordering::Relaxed),
            self.merges_broken.load(Ordering::Relaxed),
            self.merges_collapsed.load(Ordering::Relaxed),
            self.thrash_holds.load(Ordering::Relaxed),
            self.uptime_secs(),
            self.alloc_failures.load(Ordering::Relaxed),
            self.registry_anomalies(),
            logic::governor::PRESETS[gov.governor].name,
            gov.max_cpu_percentage,
            self.page_cost_ns.load(Ordering::Relaxed),
            self.hash_strength.load(Ordering::Relaxed),
            self.sleep_times.load(Ordering::Relaxed),
            format_args!("{}", logic::governor::Rungs(&self.rung_vmas())),
        );
    }
}

/// What is set up, torn down in reverse by `drop`.
struct UksmModule {
    state: Pin<KBox<Uksm>>,
    registered: bool,
    sysfs: bool,
    /// uksm answers for /sys/kernel/mm/ksm/ (`KSM_VIEW` in tunables.rs).
    ksm_view: bool,
    thread: Option<scanner::Thread>,
}

impl kernel::Module for UksmModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // The default policy (uid) needs memory cgroups to tell owners; a parameter was
        // checked already.
        let policy = tunables::merge_domain();
        // SAFETY: no precondition.
        if !unsafe { sys::uksm_domain_supported(policy.as_u32()) } {
            pr_err!(
                "merge_domain={} needs a kernel with memory cgroups (CONFIG_MEMCG); load with merge_domain=global\n",
                policy.name()
            );
            return Err(EINVAL);
        }
        let state = KBox::pin_init(Uksm::new(), GFP_KERNEL)?;
        STATE.store(ptr::from_ref(&*state).cast_mut(), Ordering::Release);
        let mut module = UksmModule {
            state,
            registered: false,
            sysfs: false,
            ksm_view: false,
            thread: None,
        };

        // SAFETY: the state the hooks reach is published.
        if let Err(e) = kernel::error::to_result(unsafe { sys::uksm_hooks_register() }) {
            if e == EBUSY {
                pr_err!("cannot register with ksm_hooks: another implementation is loaded, or pages built-in KSM merged stayed merged (the log line above says which)\n");
            } else {
                pr_err!("cannot register with ksm_hooks ({:?}): stopping built-in KSM and unmerging its pages failed; 'echo 2 > /sys/kernel/mm/ksm/run' does that, then load uksm again\n", e);
            }
            return Err(e);
        }
        module.registered = true;
        let processes = module.state.adopt_existing()?;
        // SAFETY: the attributes read the published state.
        kernel::error::to_result(unsafe { sys::uksm_sysfs_create() })?;
        module.sysfs = true;
        // SAFETY: registered; the view's files read the published state and the tunables.
        kernel::error::to_result(unsafe { sys::uksm_ksm_view_create() })?;
        module.ksm_view = true;
        module.thread = Some(scanner::Thread::start()?);
        pr_info!("loaded: adopted the VMAs of {} processes\n", processes);
        module.state.log_stats("stats");
        Ok(module)
    }
}

impl Drop for UksmModule {
    fn drop(&mut self) {
        if self.ksm_view {
            // SAFETY: created in init; KSM's own files are back once this returns.
            unsafe { sys::uksm_ksm_view_remove() };
        }
        if self.sysfs {
            // SAFETY: created in init.
            unsafe { sys::uksm_sysfs_remove() };
        }
        if let Some(thread) = self.thread.take() {
            thread.stop();
        }
        if self.registered {
            self.state.log_stats("unloading");
            // Nothing merged may outlive the module.
            let _ = self.state.unmerge_all(false);
            let detached = self.state.registry.lock().close();
            drop(detached);
            // SAFETY: registered in init; every VMA is detached from its slot, and no slot
            // is created any more.
            unsafe { sys::uksm_hooks_unregister() };
            pr_info!("unloaded\n");
        }
        STATE.store(ptr::null_mut(), Ordering::Release);
    }
}
