// SPDX-License-Identifier: GPL-2.0

//! The governor's settings (`cpu_governor`, `max_cpu_percentage`, `cpu_ratios`,
//! `eval_intervals`): one copy for the module, written by module parameters and sysfs,
//! read by uksmd once per round. Each change counts a new generation, on which uksmd
//! draws new passes for every VMA with the new strides.
//!
//! The parts change together (a preset sets all of them), so they live behind one mutex
//! of the glue rather than in separate atomics. Parameters are parsed before the module's
//! init runs, so the copy is static.

use crate::logic::governor::{self, Settings};
use crate::sys;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, Ordering};

struct Store(UnsafeCell<Settings>);

// SAFETY: the settings are only reached through `Locked`, which holds the glue's mutex.
unsafe impl Sync for Store {}

static STORE: Store = Store(UnsafeCell::new(governor::DEFAULT));

/// Settings changes so far.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The settings, locked.
///
/// # Invariants
///
/// The value holds `uksm_settings_mutex`, which every access to `STORE` holds; it is
/// released on the thread that took it (the raw-pointer marker keeps it `!Send`).
pub(crate) struct Locked(PhantomData<*mut ()>);

impl Locked {
    /// Takes the settings' mutex; may sleep.
    pub(crate) fn lock() -> Self {
        // SAFETY: process context (parameters, sysfs, uksmd); the mutex is not held by
        // this thread (a `Locked` is never kept across a call that locks again).
        unsafe { sys::uksm_settings_lock() };
        Locked(PhantomData)
    }
}

impl Deref for Locked {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        // SAFETY: the mutex is held (type invariant): no other reference exists.
        unsafe { &*STORE.0.get() }
    }
}

impl DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut Settings {
        // SAFETY: the mutex is held (type invariant) and `self` is borrowed mutably.
        unsafe { &mut *STORE.0.get() }
    }
}

impl Locked {
    /// Counts a change of the settings (made through this guard).
    pub(crate) fn changed(&mut self) {
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: this thread holds the mutex (type invariant).
        unsafe { sys::uksm_settings_unlock() };
    }
}

/// A copy of the current settings.
pub(crate) fn current() -> Settings {
    *Locked::lock()
}

/// A copy of the current settings and their generation.
pub(crate) fn current_with_generation() -> (Settings, u64) {
    let locked = Locked::lock();
    (*locked, GENERATION.load(Ordering::Relaxed))
}
