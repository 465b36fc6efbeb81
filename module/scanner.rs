// SPDX-License-Identifier: GPL-2.0

//! uksmd, the scanner thread.
//!
//! While `run` is 1 it does one round every `sleep_millisecs`: a walk over the whole VMA
//! registry in batches, dropping the registry lock between batches so hooks are never held
//! up for long. A completed walk counts as one full scan. While `run` is 0 it sleeps until
//! woken by a sysfs write. It also prints the periodic statistics line.
//!
//! Rounds look at VMAs only; hashing and merging pages is the merge engine's job.

use crate::logic::tunable::Id;
use crate::registry::Totals;
use crate::{sys, tunables, Uksm};
use core::ffi::{c_int, c_void};
use core::sync::atomic::Ordering;
use crate::sys::task_struct;
use kernel::prelude::*;
use kernel::time::Ktime;

/// Slots visited per registry-lock hold.
const WALK_BATCH: usize = 64;

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

/// One walk over the whole registry; returns what it saw, or `None` if asked to stop.
fn scan_round(uksm: &Uksm) -> Option<Totals> {
    let mut totals = Totals::default();
    let mut next = 0;
    loop {
        let more = uksm.registry.lock().walk(&mut next, WALK_BATCH, &mut totals);
        if !more {
            break;
        }
        // SAFETY: no lock is held.
        unsafe { sys::uksm_cond_resched() };
        if should_stop() {
            return None;
        }
    }
    uksm.full_scans.fetch_add(1, Ordering::Relaxed);
    Some(totals)
}

/// Body of uksmd (called by the glue's thread function).
#[no_mangle]
extern "C" fn uksm_rs_thread_main(_data: *mut c_void) -> c_int {
    let Some(uksm) = Uksm::get() else {
        return 0;
    };
    let mut last_stats = Ktime::ktime_get();
    while !should_stop() {
        let running = tunables::get(Id::Run) == 1;
        if running && scan_round(uksm).is_none() {
            break;
        }
        let mut timeout_ms: i64 = if running { tunables::get(Id::SleepMillisecs) as i64 } else { -1 };
        let interval_ms = tunables::get(Id::StatsIntervalSecs) as i64 * 1000;
        if interval_ms > 0 {
            let since = (Ktime::ktime_get() - last_stats).to_ms();
            if since >= interval_ms {
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
