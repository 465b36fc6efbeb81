//! uksmctl: what uksm.ko does, for people who run it.
//!
//! Everything here reads or writes the files the module and the kernel provide:
//! `/sys/kernel/mm/uksm/` (statistics and tunables), `/proc/PID/ksm_stat` and
//! `/proc/PID/comm` (merged pages per process), `/proc/PID/stat` of the `uksmd` thread
//! (its CPU time), and `/dev/kmsg` (the reason the kernel gives for a refused value). The
//! paths come from [`Paths`], so tests run against a fixture tree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

/// Bytes per page (x86_64, the only architecture uksm is built for).
pub const PAGE_SIZE: u64 = 4096;
/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on every Linux ABI).
pub const USER_HZ: u64 = 100;

/// Where the files are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The module's directory, `/sys/kernel/mm/uksm`.
    pub sysfs: PathBuf,
    /// The proc file system, `/proc`.
    pub proc: PathBuf,
    /// The kernel log device, `/dev/kmsg`.
    pub kmsg: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            sysfs: "/sys/kernel/mm/uksm".into(),
            proc: "/proc".into(),
            kmsg: "/dev/kmsg".into(),
        }
    }
}

/// An error with what the user should know.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

/// One file of the module's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// File name.
    pub name: String,
    /// Its content, trimmed.
    pub value: String,
    /// Whether it is a tunable (the owner may write it).
    pub writable: bool,
}

/// Every file of the module's directory, by name. Fails with advice when the module is not
/// loaded.
pub fn read_attrs(paths: &Paths) -> Result<BTreeMap<String, Attr>> {
    let dir = fs::read_dir(&paths.sysfs).map_err(|e| {
        Error(format!(
            "{}: {e}; is uksm loaded? (modprobe uksm)",
            paths.sysfs.display()
        ))
    })?;
    let mut out = BTreeMap::new();
    for entry in dir {
        let entry = entry.map_err(|e| Error(format!("{}: {e}", paths.sysfs.display())))?;
        let meta = entry.metadata().map_err(|e| Error(format!("{e}")))?;
        if !meta.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let value = match fs::read_to_string(entry.path()) {
            Ok(v) => v.trim().to_string(),
            Err(e) => format!("({e})"),
        };
        out.insert(
            name.clone(),
            Attr {
                name,
                value,
                writable: meta.permissions().mode() & 0o200 != 0,
            },
        );
    }
    Ok(out)
}

/// A number from the attributes, 0 if missing or not a number.
pub fn num(attrs: &BTreeMap<String, Attr>, name: &str) -> u64 {
    attrs
        .get(name)
        .and_then(|a| a.value.parse().ok())
        .unwrap_or(0)
}

/// Bytes as the largest fitting binary unit, with two decimals.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// Memory merging saves: every mapping of a merged page beyond the first, and every page
/// mapped to the zero page.
pub fn saved_bytes(attrs: &BTreeMap<String, Attr>) -> u64 {
    (num(attrs, "pages_sharing") + num(attrs, "ksm_zero_pages")) * PAGE_SIZE
}

/// What each statistic means, for `status`.
fn describe(name: &str) -> &'static str {
    match name {
        "run" => "0 stopped, 1 scanning and merging, 2 unmerge all and stop",
        "sleep_millisecs" => "pause between two scan rounds (ms)",
        "pages_to_scan" => "most pages sampled per round, all rungs together",
        "use_zero_pages" => "1: all-zero pages are mapped to the zero page",
        "max_page_sharing" => "most mappings of one merged page",
        "stats_interval_secs" => "seconds between two statistics lines in the kernel log",
        "tracked_vmas" => "memory areas uksm watches",
        "tracked_pages" => "pages those areas spanned in the last full pass",
        "full_scans" => "complete passes over all tracked memory (every area sampled all over)",
        "pages_scanned" => "pages scanned since load",
        "pages_shared" => "merged pages in use",
        "pages_sharing" => "further mappings of merged pages (pages saved)",
        "pages_unshared" => "pages of the last pass that matched nothing",
        "pages_merged" => "pages merged since load",
        "rmap_repairs" => "mappings of merged pages given an rmap item late (after fork)",
        "merges_broken" => "merged pages found replaced since (by writes, mostly)",
        "merges_collapsed" => "merged pages found copied into a huge page (khugepaged)",
        "thrash_holds" => "times a memory area was left unmerged for thrashing",
        "ksm_zero_pages" => "pages mapped to the zero page (pages saved)",
        "registry_anomalies" => "internal consistency problems seen (should be 0)",
        "cpu_governor" => "CPU preset: full, medium, low or quiet (the chosen one in [])",
        "max_cpu_percentage" => "most CPU uksmd uses, in % of one CPU",
        "ema_per_page_time" => "average CPU time per scanned page (ns)",
        "sleep_times" => "times uksmd slept after a round",
        "cpu_ratios" => "CPU share of each rung (1/10000 of a CPU, or MAX/n of the ceiling)",
        "eval_intervals" => "time in which each rung covers its memory (ms)",
        "abundant_threshold" => "% of a memory area's samples merged for it to climb a rung",
        "thrash_threshold" => "% of merges broken by writes that marks thrashing (0: off)",
        "hash_strength" => "words of a page the partial hash reads",
        "rung_vmas" => "memory areas on each rung of the sampling ladder",
        "merge_domain" => "which pages may merge: global, uid or cgroup (the chosen one in [])",
        _ => "",
    }
}

/// The `status` report: memory saved, the scanner's CPU time, then every file of the
/// module's directory with its meaning.
pub fn status(paths: &Paths) -> Result<String> {
    let attrs = read_attrs(paths)?;
    let mut out = String::new();
    let saved = saved_bytes(&attrs);
    let _ = writeln!(
        out,
        "memory saved: {} ({} merged mappings, {} zero pages)",
        human_bytes(saved),
        num(&attrs, "pages_sharing"),
        num(&attrs, "ksm_zero_pages")
    );
    match scanner_cpu_ticks(paths) {
        Some(ticks) => {
            let _ = writeln!(
                out,
                "uksmd CPU time: {:.2} s",
                ticks as f64 / USER_HZ as f64
            );
        }
        None => {
            let _ = writeln!(out, "uksmd: not running");
        }
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["name", "value", "", "meaning"]);
    for a in attrs.values() {
        let value = match a.value.parse::<u64>() {
            Ok(n)
                if !a.writable && (a.name.starts_with("pages_") || a.name.ends_with("_pages")) =>
            {
                format!("{n} ({})", human_bytes(n * PAGE_SIZE))
            }
            _ => a.value.clone(),
        };
        table.add_row([
            a.name.as_str(),
            value.as_str(),
            if a.writable { "rw" } else { "ro" },
            describe(&a.name),
        ]);
    }
    let _ = writeln!(out, "{table}");
    Ok(out)
}

/// Merged pages of one process (`/proc/PID/ksm_stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Command name.
    pub comm: String,
    /// Pages of the process mapped to merged pages (`ksm_merging_pages`).
    pub merging: u64,
    /// Pages of the process mapped to the zero page (`ksm_zero_pages`).
    pub zero: u64,
}

fn ksm_stat_field(text: &str, field: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Every process with merged or zero pages, most first.
pub fn processes(paths: &Paths) -> Result<Vec<Proc>> {
    let dir =
        fs::read_dir(&paths.proc).map_err(|e| Error(format!("{}: {e}", paths.proc.display())))?;
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit at any point here: then it is left out.
        let Ok(stat) = fs::read_to_string(entry.path().join("ksm_stat")) else {
            continue;
        };
        let merging = ksm_stat_field(&stat, "ksm_merging_pages");
        let zero = ksm_stat_field(&stat, "ksm_zero_pages");
        if merging == 0 && zero == 0 {
            continue;
        }
        let comm = fs::read_to_string(entry.path().join("comm"))
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        out.push(Proc {
            pid,
            comm,
            merging,
            zero,
        });
    }
    out.sort_by(|a, b| (b.merging + b.zero, a.pid).cmp(&(a.merging + a.zero, b.pid)));
    Ok(out)
}

/// The `top` report: the `limit` processes with the most merged pages.
pub fn top(paths: &Paths, limit: usize) -> Result<String> {
    let procs = processes(paths)?;
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["PID", "COMMAND", "MERGED", "ZERO", "MEMORY"]);
    for p in procs.iter().take(limit) {
        table.add_row([
            p.pid.to_string(),
            p.comm.clone(),
            p.merging.to_string(),
            p.zero.to_string(),
            human_bytes((p.merging + p.zero) * PAGE_SIZE),
        ]);
    }
    Ok(format!(
        "{} processes with merged pages\n{table}\n",
        procs.len()
    ))
}

/// Total CPU time of the `uksmd` thread in ticks, if it runs.
pub fn scanner_cpu_ticks(paths: &Paths) -> Option<u64> {
    for entry in fs::read_dir(&paths.proc).ok()?.flatten() {
        if entry.file_name().to_str()?.parse::<u32>().is_err() {
            continue;
        }
        if fs::read_to_string(entry.path().join("comm")).ok()?.trim() != "uksmd" {
            continue;
        }
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        // The fields after the command, which may hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        return Some(utime + stime);
    }
    None
}

/// `O_NONBLOCK` on Linux.
const O_NONBLOCK: i32 = 0o4000;

/// The kernel log from now on: new records are read without waiting.
struct KernelLog(Option<fs::File>);

impl KernelLog {
    fn open(paths: &Paths) -> Self {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open(&paths.kmsg)
            .and_then(|mut f| f.seek(SeekFrom::End(0)).map(|_| f));
        KernelLog(file.ok())
    }

    /// Messages logged since `open` that mention uksm.
    fn uksm_lines(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let Some(file) = &mut self.0 else {
            return lines;
        };
        let mut buf = vec![0u8; 8192];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // Records are "prio,seq,time,flags;message", continuation lines
                    // (" KEY=value") follow their record.
                    let chunk = String::from_utf8_lossy(&buf[..n]);
                    for line in chunk.lines().filter(|l| !l.starts_with(' ')) {
                        let msg = line.split_once(';').map_or(line, |(_, m)| m);
                        if msg.contains("uksm") {
                            lines.push(unescape(msg.trim()));
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: nothing more; other errors: no log to show.
                Err(_) => break,
            }
        }
        lines
    }
}

/// A kernel log message as printed: /dev/kmsg writes unprintable bytes and the backslash
/// as `\xHH`.
fn unescape(msg: &str) -> String {
    let mut out = Vec::with_capacity(msg.len());
    let b = msg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3])) {
                out.push((h * 16 + l) as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sets a tunable. The name must be a writable file of the module's directory and the
/// value a plain number; the kernel validates the range and refuses with `EINVAL`, and
/// then its own reason (from the kernel log) is part of the error.
pub fn set(paths: &Paths, name: &str, value: &str) -> Result<()> {
    let attrs = read_attrs(paths)?;
    let Some(attr) = attrs.get(name) else {
        let tunables: Vec<&str> = attrs
            .values()
            .filter(|a| a.writable)
            .map(|a| a.name.as_str())
            .collect();
        return err(format!(
            "no tunable named {name:?}; the tunables are: {}",
            tunables.join(", ")
        ));
    };
    if !attr.writable {
        return err(format!("{name} is a statistic, not a tunable"));
    }
    // Numeric tunables are checked here for a clearer message; text ones (cpu_governor)
    // are left to the kernel, which names what it accepts.
    let numeric = attr.value.parse::<u64>().is_ok();
    if numeric && (value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit())) {
        return err(format!(
            "{value:?} is not a plain decimal number (no sign, no spaces)"
        ));
    }
    let mut log = KernelLog::open(paths);
    let path = paths.sysfs.join(name);
    let result = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()));
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut msg = format!("the kernel refused {name}={value}: {e}");
            let reasons = log.uksm_lines();
            if reasons.is_empty() {
                msg.push_str(" (see dmesg for the reason)");
            }
            for r in reasons {
                msg.push_str("\n  kernel: ");
                msg.push_str(&r);
            }
            Err(Error(msg))
        }
    }
}

/// One sample of `record`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the recording began.
    pub secs: f64,
    /// Memory saved, bytes.
    pub saved: u64,
    /// `pages_sharing`.
    pub sharing: u64,
    /// `ksm_zero_pages`.
    pub zero: u64,
    /// uksmd CPU time so far, seconds (0 when it does not run).
    pub cpu_secs: f64,
}

/// Header of the CSV that `record` writes.
pub const CSV_HEADER: &str = "seconds,saved_bytes,pages_sharing,ksm_zero_pages,uksmd_cpu_seconds";

/// Takes one sample.
pub fn sample(paths: &Paths, secs: f64) -> Result<Sample> {
    let attrs = read_attrs(paths)?;
    Ok(Sample {
        secs,
        saved: saved_bytes(&attrs),
        sharing: num(&attrs, "pages_sharing"),
        zero: num(&attrs, "ksm_zero_pages"),
        cpu_secs: scanner_cpu_ticks(paths).unwrap_or(0) as f64 / USER_HZ as f64,
    })
}

/// A sample as a CSV line.
pub fn csv_line(s: &Sample) -> String {
    format!(
        "{:.3},{},{},{},{:.2}",
        s.secs, s.saved, s.sharing, s.zero, s.cpu_secs
    )
}

/// Reads what `record` wrote.
pub fn parse_csv(text: &str) -> Result<Vec<Sample>> {
    let mut lines = text.lines();
    if lines.next() != Some(CSV_HEADER) {
        return err(format!(
            "not a uksmctl recording: the first line must be {CSV_HEADER}"
        ));
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            let bad = || Error(format!("line {}: {l:?} is not a sample", i + 2));
            if f.len() != 5 {
                return Err(bad());
            }
            Ok(Sample {
                secs: f[0].parse().map_err(|_| bad())?,
                saved: f[1].parse().map_err(|_| bad())?,
                sharing: f[2].parse().map_err(|_| bad())?,
                zero: f[3].parse().map_err(|_| bad())?,
                cpu_secs: f[4].parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

/// uksmd's CPU use between consecutive samples, in percent of one CPU, at each sample's
/// time (from the second sample on).
pub fn cpu_percent(samples: &[Sample]) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter(|w| w[1].secs > w[0].secs)
        .map(|w| {
            let pct = (w[1].cpu_secs - w[0].cpu_secs).max(0.0) / (w[1].secs - w[0].secs) * 100.0;
            (w[1].secs, pct)
        })
        .collect()
}

fn draw_err(e: impl std::fmt::Display) -> Error {
    Error(format!("drawing the chart: {e}"))
}

/// One line chart of `points` over `0..t_end` seconds in `area`.
fn line_chart<DB: plotters::prelude::DrawingBackend>(
    area: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    points: Vec<(f64, f64)>,
    t_end: f64,
    y_desc: &str,
    color: &plotters::prelude::RGBColor,
) -> Result<()> {
    use plotters::prelude::*;
    let y_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_end, 0.0..y_max)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_desc)
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(LineSeries::new(points, color))
        .map_err(draw_err)?;
    Ok(())
}

/// Draws memory saved (MiB) and uksmd's CPU use (% of one CPU) over time, one above the
/// other, as SVG.
pub fn plot_svg(samples: &[Sample], title: &str) -> Result<String> {
    use plotters::prelude::*;
    if samples.len() < 2 {
        return err("a chart needs at least two samples");
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(draw_err)?;
        let (upper, lower) = root.split_vertically(300);
        let t_end = samples.last().map_or(1.0, |s| s.secs).max(1.0);
        let saved = samples
            .iter()
            .map(|s| (s.secs, s.saved as f64 / (1024.0 * 1024.0)))
            .collect();
        line_chart(&upper, saved, t_end, "memory saved (MiB)", &BLUE)?;
        line_chart(
            &lower,
            cpu_percent(samples),
            t_end,
            "uksmd CPU (% of one CPU)",
            &RED,
        )?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_log_reads_only_new_uksm_records() {
        let path = std::env::temp_dir().join(format!("uksmctl-kmsg-{}", std::process::id()));
        fs::write(&path, "4,1,1,-;uksm: old record\n").unwrap();
        let paths = Paths {
            kmsg: path.clone(),
            ..Paths::default()
        };
        let mut log = KernelLog::open(&paths);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"4,2,2,-;uksm: sysfs sleep_millisecs: refused \"x\": not a number\n")
            .unwrap();
        f.write_all(b"6,3,3,-;other: unrelated\n").unwrap();
        let lines = log.uksm_lines();
        assert_eq!(
            lines,
            ["uksm: sysfs sleep_millisecs: refused \"x\": not a number"]
        );
        fs::remove_file(&path).unwrap();
        // No kernel log: nothing, no error.
        let mut none = KernelLog::open(&Paths {
            kmsg: "/nonexistent/kmsg".into(),
            ..Paths::default()
        });
        assert!(none.uksm_lines().is_empty());
    }

    #[test]
    fn kernel_escapes() {
        assert_eq!(
            unescape(r#"refused "1\x5cn": bad"#),
            r#"refused "1\n": bad"#
        );
        assert_eq!(unescape(r"\x0a\xZZ\x"), "\n\\xZZ\\x");
    }

    #[test]
    fn units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
    }
}
