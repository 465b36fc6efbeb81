// SPDX-License-Identifier: GPL-2.0

//! Storage of the tunables and the entry points through which module parameters and
//! /sys/kernel/mm/uksm/ read and write them (called from the C glue).
//!
//! Definitions and validation live in the host-tested `tunable` module; this file only
//! keeps the current values and reports refused input.

use crate::logic::tunable::{self, Id, Tunable, ALL, COUNT, MAX_INPUT};
use crate::{sys, Uksm};
use core::ffi::{c_char, c_int, CStr};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::str::BStr;

static VALUES: [AtomicU64; COUNT] = {
    let mut values = [const { AtomicU64::new(0) }; COUNT];
    let mut i = 0;
    while i < COUNT {
        values[i] = AtomicU64::new(ALL[i].default);
        i += 1;
    }
    values
};

/// Current value of a tunable.
pub(crate) fn get(id: Id) -> u64 {
    VALUES[id as usize].load(Ordering::Relaxed)
}

/// Validates `input` and stores it, or reports why it was refused and keeps the old value.
fn set(t: &Tunable, input: &[u8], origin: &str) -> Result {
    match t.parse(input) {
        Ok(value) => {
            VALUES[t.id as usize].store(value, Ordering::Relaxed);
            Ok(())
        }
        Err(err) => {
            let name = t.name.to_str().unwrap_or("?");
            if input.len() <= MAX_INPUT {
                pr_warn!(
                    "{} {}: refused {:?}: {}\n",
                    origin,
                    name,
                    BStr::from_bytes(input),
                    format_args!("{err}")
                );
            } else {
                pr_warn!(
                    "{} {}: refused {} bytes of input: {}\n",
                    origin,
                    name,
                    input.len(),
                    format_args!("{err}")
                );
            }
            Err(EINVAL)
        }
    }
}

/// # Safety
///
/// `name` must be a valid C string (a parameter name).
unsafe fn named(name: *const c_char) -> Option<&'static Tunable> {
    // SAFETY: the caller guarantees a valid C string.
    tunable::find(unsafe { CStr::from_ptr(name) }.to_bytes())
}

/// Module parameter `name` set to `val` (at load time).
#[no_mangle]
unsafe extern "C" fn uksm_rs_param_set(name: *const c_char, val: *const c_char) -> c_int {
    // SAFETY: the kernel passes the parameter's name and value as C strings.
    let (t, val) = match unsafe { (named(name), CStr::from_ptr(val)) } {
        (Some(t), val) => (t, val),
        (None, _) => return ENOENT.to_errno(),
    };
    match set(t, val.to_bytes(), "parameter") {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Current value of module parameter `name`.
#[no_mangle]
unsafe extern "C" fn uksm_rs_param_get(name: *const c_char) -> u64 {
    // SAFETY: the kernel passes the parameter's name as a C string.
    unsafe { named(name) }.map_or(0, |t| get(t.id))
}

/// A file in /sys/kernel/mm/uksm/.
enum Attr {
    Tunable(Id),
    Counter(&'static CStr, fn(&Uksm) -> u64),
}

const ATTRS: [Attr; COUNT + 11] = [
    Attr::Tunable(Id::Run),
    Attr::Tunable(Id::MaxPageSharing),
    Attr::Tunable(Id::SleepMillisecs),
    Attr::Tunable(Id::StatsIntervalSecs),
    Attr::Tunable(Id::PagesToScan),
    Attr::Tunable(Id::UseZeroPages),
    Attr::Counter(c"tracked_vmas", |u| u.tracked_vmas() as u64),
    Attr::Counter(c"tracked_pages", |u| u.tracked_pages.load(Ordering::Relaxed)),
    Attr::Counter(c"rmap_repairs", |u| u.rmap_repairs.load(Ordering::Relaxed)),
    Attr::Counter(c"pages_merged", |u| u.pages_merged.load(Ordering::Relaxed)),
    Attr::Counter(c"full_scans", |u| u.full_scans.load(Ordering::Relaxed)),
    Attr::Counter(c"pages_scanned", |u| {
        u.pages_scanned.load(Ordering::Relaxed)
    }),
    Attr::Counter(c"pages_shared", |u| u.pages_shared.load(Ordering::Relaxed)),
    Attr::Counter(c"pages_sharing", |u| {
        u.pages_sharing.load(Ordering::Relaxed)
    }),
    Attr::Counter(c"pages_unshared", |u| {
        u.pages_unshared.load(Ordering::Relaxed)
    }),
    // SAFETY: reads a counter.
    Attr::Counter(c"ksm_zero_pages", |_| unsafe { sys::uksm_ksm_zero_pages() }
        as u64),
    Attr::Counter(c"registry_anomalies", |u| u.registry_anomalies()),
];

#[no_mangle]
extern "C" fn uksm_rs_attr_count() -> usize {
    ATTRS.len()
}

#[no_mangle]
extern "C" fn uksm_rs_attr_name(idx: usize) -> *const c_char {
    match &ATTRS[idx] {
        Attr::Tunable(id) => id.tunable().name.as_ptr(),
        Attr::Counter(name, _) => name.as_ptr(),
    }
}

#[no_mangle]
extern "C" fn uksm_rs_attr_writable(idx: usize) -> bool {
    matches!(ATTRS[idx], Attr::Tunable(_))
}

#[no_mangle]
extern "C" fn uksm_rs_attr_get(idx: usize) -> u64 {
    match &ATTRS[idx] {
        Attr::Tunable(id) => get(*id),
        Attr::Counter(_, read) => Uksm::get().map_or(0, read),
    }
}

/// A write of `len` bytes at `buf` to attribute `idx`.
#[no_mangle]
unsafe extern "C" fn uksm_rs_attr_set(idx: usize, buf: *const u8, len: usize) -> c_int {
    let Attr::Tunable(id) = ATTRS[idx] else {
        return EPERM.to_errno();
    };
    // SAFETY: sysfs passes `len` readable bytes at `buf`.
    let input = unsafe { core::slice::from_raw_parts(buf, len) };
    match set(id.tunable(), input, "sysfs") {
        Ok(()) => {
            // run=2 unmerges everything before the write returns, as in KSM; run=0 returns
            // once uksmd has stopped merging (its round stops at the next page).
            if id == Id::Run {
                if let Some(uksm) = Uksm::get() {
                    if get(Id::Run) == 2 {
                        // Interrupted by a signal: stopped, with what is left merged.
                        if let Err(e) = uksm.unmerge_all(true) {
                            VALUES[Id::Run as usize].store(0, Ordering::Relaxed);
                            return e.to_errno();
                        }
                    } else {
                        uksm.wait_for_round();
                    }
                }
            }
            // A new run state or pause takes effect at once, as in KSM.
            // SAFETY: waking the thread is valid at any time (no-op without a waiter).
            unsafe { sys::uksm_thread_kick() };
            0
        }
        Err(e) => e.to_errno(),
    }
}
