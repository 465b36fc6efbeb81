// SPDX-License-Identifier: GPL-2.0

//! Storage of the tunables and the entry points through which module parameters and
//! /sys/kernel/mm/uksm/ read and write them (called from the C glue).
//!
//! Definitions and validation live in the host-tested `tunable` and `governor` modules;
//! this file keeps the current numbers (the governor's settings are in [`settings`]),
//! formats what is read and reports refused input.

use crate::logic::domain::{self, Policies, Policy, PolicyError};
use crate::logic::governor::{self, Governors, ListError, NameError, Rungs, Settings};
use crate::logic::tunable::{self, Id, ParseError, Tunable, ALL, COUNT, MAX_INPUT};
use crate::settings::{self, Locked};
use crate::{sys, Uksm};
use core::ffi::{c_char, c_int, CStr};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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

/// The merge domain policy (`merge_domain`).
static MERGE_DOMAIN: AtomicU32 = AtomicU32::new(domain::DEFAULT as u32);

/// The merge domain policy now.
pub(crate) fn merge_domain() -> Policy {
    Policy::from_u32(MERGE_DOMAIN.load(Ordering::Relaxed))
}

/// Stores the merge domain policy (uksmd reads it at the start of each round).
pub(crate) fn store_merge_domain(policy: Policy) {
    MERGE_DOMAIN.store(policy.as_u32(), Ordering::Relaxed);
}

/// Why `merge_domain` refused its input.
enum DomainError {
    Name(PolicyError),
    /// The kernel cannot tell processes' owners apart (no `CONFIG_MEMCG`, or memory
    /// cgroups disabled at boot for `cgroup`).
    Unsupported(Policy),
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::Name(e) => e.fmt(f),
            DomainError::Unsupported(p) => write!(
                f,
                "{} needs a kernel with memory cgroups (CONFIG_MEMCG{})",
                p.name(),
                if *p == Policy::Cgroup { ", not disabled at boot" } else { "" }
            ),
        }
    }
}

/// Parses a `merge_domain` write into a policy this kernel supports.
fn parse_domain(input: &[u8]) -> Result<Policy, DomainError> {
    let policy = Policy::parse(input).map_err(DomainError::Name)?;
    // SAFETY: no precondition.
    if !unsafe { sys::uksm_domain_supported(policy.as_u32()) } {
        return Err(DomainError::Unsupported(policy));
    }
    Ok(policy)
}

/// Sets `merge_domain` from a parameter or a sysfs write: once loaded, the change
/// unmerges everything first (pages merged under the old policy may be forbidden now),
/// and uksmd merges again what the new one allows.
fn set_domain(input: &[u8], origin: &str) -> Result {
    let policy = match parse_domain(input) {
        Ok(policy) => policy,
        Err(err) => {
            refused(origin, c"merge_domain", input, &err);
            return Err(EINVAL);
        }
    };
    match Uksm::get() {
        Some(uksm) => uksm.set_merge_domain(policy),
        None => {
            store_merge_domain(policy);
            Ok(())
        }
    }
}

/// Current value of a tunable.
pub(crate) fn get(id: Id) -> u64 {
    VALUES[id as usize].load(Ordering::Relaxed)
}

/// Logs why `input` to `name` was refused.
fn refused(origin: &str, name: &CStr, input: &[u8], err: &dyn fmt::Display) {
    let name = name.to_str().unwrap_or("?");
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
}

/// Validates `input` and stores it, or reports why it was refused and keeps the old value.
fn set(t: &Tunable, input: &[u8], origin: &str) -> Result {
    match t.parse(input) {
        Ok(value) => {
            VALUES[t.id as usize].store(value, Ordering::Relaxed);
            Ok(())
        }
        Err(err) => {
            refused(origin, t.name, input, &err);
            Err(EINVAL)
        }
    }
}

/// A part of the governor's settings, set and read as text.
#[derive(Clone, Copy)]
enum Setting {
    /// `cpu_governor`: a preset's name; reads list them all, the chosen one in brackets.
    CpuGovernor,
    /// `max_cpu_percentage`: uksmd's CPU ceiling, 1..=100 % of one CPU.
    MaxCpuPercentage,
    /// `cpu_ratios`: each rung's CPU share.
    CpuRatios,
    /// `eval_intervals`: the time in which each rung covers its VMAs, in ms.
    EvalIntervals,
}

/// Why a setting refused its input.
enum SettingError {
    Name(NameError),
    Number(ParseError),
    List(ListError),
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::Name(e) => e.fmt(f),
            SettingError::Number(e) => e.fmt(f),
            SettingError::List(e) => e.fmt(f),
        }
    }
}

const SETTINGS: [Setting; 4] = [
    Setting::CpuGovernor,
    Setting::MaxCpuPercentage,
    Setting::CpuRatios,
    Setting::EvalIntervals,
];

impl Setting {
    fn name(self) -> &'static CStr {
        match self {
            Setting::CpuGovernor => c"cpu_governor",
            Setting::MaxCpuPercentage => c"max_cpu_percentage",
            Setting::CpuRatios => c"cpu_ratios",
            Setting::EvalIntervals => c"eval_intervals",
        }
    }

    fn named(name: &[u8]) -> Option<Self> {
        SETTINGS.into_iter().find(|s| s.name().to_bytes() == name)
    }

    fn parse_into(self, s: &mut Settings, input: &[u8]) -> Result<(), SettingError> {
        match self {
            Setting::CpuGovernor => s.choose(input).map_err(SettingError::Name),
            Setting::MaxCpuPercentage => {
                s.max_cpu_percentage = tunable::parse_decimal(input, 1, 100)
                    .map_err(SettingError::Number)? as u32;
                Ok(())
            }
            Setting::CpuRatios => {
                s.cpu_ratios = governor::parse_cpu_ratios(input).map_err(SettingError::List)?;
                Ok(())
            }
            Setting::EvalIntervals => {
                s.eval_intervals_ms =
                    governor::parse_eval_intervals(input).map_err(SettingError::List)?;
                Ok(())
            }
        }
    }

    /// Validates `input` and applies it, or reports why it was refused and keeps the
    /// settings as they were.
    fn set(self, input: &[u8], origin: &str) -> Result {
        let mut locked = Locked::lock();
        let mut new = *locked;
        match self.parse_into(&mut new, input) {
            Ok(()) => {
                *locked = new;
                locked.changed();
                Ok(())
            }
            Err(err) => {
                drop(locked);
                refused(origin, self.name(), input, &err);
                Err(EINVAL)
            }
        }
    }

    fn show(self, w: &mut Text<'_>) -> fmt::Result {
        let s = settings::current();
        match self {
            Setting::CpuGovernor => writeln!(w, "{}", Governors(s.governor)),
            Setting::MaxCpuPercentage => writeln!(w, "{}", s.max_cpu_percentage),
            Setting::CpuRatios => writeln!(w, "{}", Rungs(&s.cpu_ratios)),
            Setting::EvalIntervals => writeln!(w, "{}", Rungs(&s.eval_intervals_ms)),
        }
    }
}

/// A page of text that sysfs or the parameter code hands over for reading.
struct Text<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats into the `len` bytes at `buf`; returns the length written, or `-EINVAL` if it
/// did not fit (nothing here comes near a page).
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes for the duration of the call.
unsafe fn show_into(buf: *mut u8, len: usize, f: impl FnOnce(&mut Text<'_>) -> fmt::Result) -> c_int {
    // SAFETY: the caller guarantees `len` writable bytes at `buf`.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut text = Text { buf, len: 0 };
    match f(&mut text) {
        Ok(()) => text.len as c_int,
        Err(_) => EINVAL.to_errno(),
    }
}

/// What a module parameter or sysfs file sets.
enum Knob {
    Tunable(&'static Tunable),
    Setting(Setting),
    Domain,
}

/// # Safety
///
/// `name` must be a valid C string (a parameter name).
unsafe fn named(name: *const c_char) -> Option<Knob> {
    // SAFETY: the caller guarantees a valid C string.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    tunable::find(name)
        .map(Knob::Tunable)
        .or_else(|| Setting::named(name).map(Knob::Setting))
        .or_else(|| (name == b"merge_domain").then_some(Knob::Domain))
}

/// Module parameter `name` set to `val` (at load time).
#[no_mangle]
unsafe extern "C" fn uksm_rs_param_set(name: *const c_char, val: *const c_char) -> c_int {
    // SAFETY: the kernel passes the parameter's name and value as C strings.
    let (knob, val) = match unsafe { (named(name), CStr::from_ptr(val)) } {
        (Some(knob), val) => (knob, val.to_bytes()),
        (None, _) => return ENOENT.to_errno(),
    };
    let result = match knob {
        Knob::Tunable(t) => set(t, val, "parameter"),
        Knob::Setting(s) => s.set(val, "parameter"),
        Knob::Domain => set_domain(val, "parameter"),
    };
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Module parameter `name` as read, into the `len` bytes at `buf`.
#[no_mangle]
unsafe extern "C" fn uksm_rs_param_show(name: *const c_char, buf: *mut u8, len: usize) -> c_int {
    // SAFETY: the kernel passes the parameter's name as a C string.
    let knob = unsafe { named(name) };
    // SAFETY: the glue passes a page at `buf`.
    unsafe {
        show_into(buf, len, |w| match knob {
            Some(Knob::Tunable(t)) => writeln!(w, "{}", get(t.id)),
            Some(Knob::Setting(s)) => s.show(w),
            Some(Knob::Domain) => writeln!(w, "{}", merge_domain().name()),
            None => Err(fmt::Error),
        })
    }
}

/// A file in /sys/kernel/mm/uksm/.
enum Attr {
    Tunable(Id),
    Setting(Setting),
    /// `merge_domain`: every policy, the chosen one in brackets.
    Domain,
    Counter(&'static CStr, fn(&Uksm) -> u64),
    /// A read-only file of text.
    Text(&'static CStr, fn(&Uksm, &mut Text<'_>) -> fmt::Result),
}

const ATTRS: &[Attr] = &[
    Attr::Tunable(Id::Run),
    Attr::Tunable(Id::MaxPageSharing),
    Attr::Tunable(Id::SleepMillisecs),
    Attr::Tunable(Id::StatsIntervalSecs),
    Attr::Tunable(Id::PagesToScan),
    Attr::Tunable(Id::UseZeroPages),
    Attr::Setting(Setting::CpuGovernor),
    Attr::Setting(Setting::MaxCpuPercentage),
    Attr::Setting(Setting::CpuRatios),
    Attr::Setting(Setting::EvalIntervals),
    Attr::Tunable(Id::AbundantThreshold),
    Attr::Tunable(Id::ThrashThreshold),
    Attr::Domain,
    // The partial hash's strength, in words of the page (constant until the adaptive
    // controller is built).
    Attr::Counter(c"hash_strength", |u| u.hash_strength.load(Ordering::Relaxed)),
    Attr::Text(c"rung_vmas", |u, w| writeln!(w, "{}", Rungs(&u.rung_vmas()))),
    Attr::Counter(c"ema_per_page_time", |u| u.page_cost_ns.load(Ordering::Relaxed)),
    Attr::Counter(c"sleep_times", |u| u.sleep_times.load(Ordering::Relaxed)),
    Attr::Counter(c"tracked_vmas", |u| u.tracked_vmas() as u64),
    Attr::Counter(c"tracked_pages", |u| u.tracked_pages.load(Ordering::Relaxed)),
    Attr::Counter(c"rmap_repairs", |u| u.rmap_repairs.load(Ordering::Relaxed)),
    Attr::Counter(c"merges_broken", |u| u.merges_broken.load(Ordering::Relaxed)),
    Attr::Counter(c"merges_collapsed", |u| u.merges_collapsed.load(Ordering::Relaxed)),
    Attr::Counter(c"thrash_holds", |u| u.thrash_holds.load(Ordering::Relaxed)),
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

/// The files uksm answers for in /sys/kernel/mm/ksm/ while it is loaded, in place of
/// built-in KSM's of the same names (the hook patch's `ksm_hooks_set_view`): what tools
/// written for KSM read (ksmtuned, node_exporter, Proxmox's `pages_sharing`) and steer
/// (`run`, `pages_to_scan`, `sleep_millisecs`). KSM's other files stay: its own settings,
/// and its chain and volatile counts (0: built-in KSM holds no page while uksm is loaded).
const KSM_VIEW: &[Attr] = &[
    Attr::Tunable(Id::Run),
    Attr::Tunable(Id::PagesToScan),
    Attr::Tunable(Id::SleepMillisecs),
    Attr::Tunable(Id::MaxPageSharing),
    Attr::Tunable(Id::UseZeroPages),
    Attr::Counter(c"full_scans", |u| u.full_scans.load(Ordering::Relaxed)),
    Attr::Counter(c"pages_scanned", |u| u.pages_scanned.load(Ordering::Relaxed)),
    Attr::Counter(c"pages_shared", |u| u.pages_shared.load(Ordering::Relaxed)),
    Attr::Counter(c"pages_sharing", |u| u.pages_sharing.load(Ordering::Relaxed)),
    Attr::Counter(c"pages_unshared", |u| u.pages_unshared.load(Ordering::Relaxed)),
    Attr::Text(c"general_profit", |u, w| writeln!(w, "{}", general_profit(u))),
];

/// KSM's `general_profit`: bytes saved by merging (pages sharing a merged page, and pages
/// mapped to the zero page) less the bytes of KSM's structures that record the merges.
fn general_profit(u: &Uksm) -> i64 {
    let shared = u.pages_shared.load(Ordering::Relaxed) as usize;
    let sharing = u.pages_sharing.load(Ordering::Relaxed) as usize;
    // SAFETY: reads a counter.
    let zero = unsafe { sys::uksm_ksm_zero_pages() }.max(0) as usize;
    // SAFETY: pure arithmetic on sizes of KSM's structures.
    let meta = unsafe { sys::uksm_ksm_meta_bytes(shared, shared.saturating_add(sharing)) };
    let saved = sharing.saturating_add(zero).saturating_mul(kernel::page::PAGE_SIZE);
    (saved as i64).saturating_sub(meta as i64)
}

/// The attribute table the glue numbers `table` (module/glue/glue.h).
fn table(table: u32) -> &'static [Attr] {
    match table {
        0 => ATTRS,
        _ => KSM_VIEW,
    }
}

#[no_mangle]
extern "C" fn uksm_rs_attr_count(t: u32) -> usize {
    table(t).len()
}

#[no_mangle]
extern "C" fn uksm_rs_attr_name(t: u32, idx: usize) -> *const c_char {
    match &table(t)[idx] {
        Attr::Tunable(id) => id.tunable().name.as_ptr(),
        Attr::Setting(s) => s.name().as_ptr(),
        Attr::Domain => c"merge_domain".as_ptr(),
        Attr::Counter(name, _) | Attr::Text(name, _) => name.as_ptr(),
    }
}

#[no_mangle]
extern "C" fn uksm_rs_attr_writable(t: u32, idx: usize) -> bool {
    matches!(table(t)[idx], Attr::Tunable(_) | Attr::Setting(_) | Attr::Domain)
}

/// Attribute `idx` of table `t` as read, into the `len` bytes at `buf`.
#[no_mangle]
unsafe extern "C" fn uksm_rs_attr_show(t: u32, idx: usize, buf: *mut u8, len: usize) -> c_int {
    // SAFETY: sysfs passes a page at `buf`.
    unsafe {
        show_into(buf, len, |w| match &table(t)[idx] {
            Attr::Tunable(id) => writeln!(w, "{}", get(*id)),
            Attr::Setting(s) => s.show(w),
            Attr::Domain => writeln!(w, "{}", Policies(merge_domain())),
            Attr::Counter(_, read) => writeln!(w, "{}", Uksm::get().map_or(0, read)),
            Attr::Text(_, show) => match Uksm::get() {
                Some(u) => show(u, w),
                None => Ok(()),
            },
        })
    }
}

/// A write of `len` bytes at `buf` to attribute `idx` of table `t`.
#[no_mangle]
unsafe extern "C" fn uksm_rs_attr_set(t: u32, idx: usize, buf: *const u8, len: usize) -> c_int {
    // SAFETY: sysfs passes `len` readable bytes at `buf`.
    let input = unsafe { core::slice::from_raw_parts(buf, len) };
    let origin = if t == 0 { "sysfs" } else { "sysfs ksm" };
    let id = match table(t)[idx] {
        Attr::Tunable(id) => id,
        Attr::Setting(s) => {
            // uksmd applies the settings from its next round on (within a second).
            return match s.set(input, origin) {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            };
        }
        Attr::Domain => {
            return match set_domain(input, origin) {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            };
        }
        Attr::Counter(..) | Attr::Text(..) => return EPERM.to_errno(),
    };
    match set(id.tunable(), input, origin) {
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
