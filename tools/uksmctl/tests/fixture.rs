//! uksmctl against a fixture tree shaped like /sys/kernel/mm/uksm and /proc.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use uksmctl::Paths;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh fixture: the module's directory with statistics and tunables, and a proc tree
/// with uksmd and three processes, two of them with merged pages.
fn fixture() -> (PathBuf, Paths) {
    let root = std::env::temp_dir().join(format!(
        "uksmctl-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&root);
    let sys = root.join("sys");
    fs::create_dir_all(&sys).unwrap();
    let attr = |name: &str, value: &str, mode: u32| {
        let p = sys.join(name);
        fs::write(&p, format!("{value}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    attr("run", "1", 0o644);
    attr("sleep_millisecs", "100", 0o644);
    attr("pages_to_scan", "1000", 0o644);
    attr("cpu_governor", "[full] medium low quiet", 0o644);
    attr("pages_shared", "100", 0o444);
    attr("pages_sharing", "25600", 0o444); // 100 MiB
    attr("ksm_zero_pages", "256", 0o444); // 1 MiB
    attr("full_scans", "7", 0o444);
    let proc = root.join("proc");
    let process = |pid: u32, comm: &str, ksm_stat: Option<&str>, stat: Option<&str>| {
        let d = proc.join(pid.to_string());
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
        if let Some(s) = ksm_stat {
            fs::write(d.join("ksm_stat"), s).unwrap();
        }
        if let Some(s) = stat {
            fs::write(d.join("stat"), s).unwrap();
        }
    };
    // utime 250 and stime 50 ticks: 3 s.
    process(
        42,
        "uksmd",
        None,
        Some("42 (uksmd) S 2 0 0 0 -1 2129984 0 0 0 0 250 50 0 0 39 19 1 0 100 0 0\n"),
    );
    let ksm = |merging: u64, zero: u64| {
        format!(
            "ksm_rmap_items 0\nksm_zero_pages {zero}\nksm_merging_pages {merging}\nksm_process_profit 0\n"
        )
    };
    process(100, "small", Some(&ksm(10, 0)), None);
    process(200, "big db", Some(&ksm(5000, 20)), None);
    process(300, "nothing", Some(&ksm(0, 0)), None);
    process(400, "zeros", Some(&ksm(0, 70)), None);
    fs::create_dir_all(proc.join("self")).unwrap();
    let kmsg = root.join("kmsg");
    fs::write(&kmsg, "").unwrap();
    (
        root,
        Paths {
            sysfs: sys,
            proc,
            kmsg,
        },
    )
}

#[test]
fn status_reports_savings_and_every_file() {
    let (_root, paths) = fixture();
    let out = uksmctl::status(&paths).unwrap();
    assert!(out.contains("memory saved: 101.00 MiB"), "{out}");
    assert!(out.contains("uksmd CPU time: 3.00 s"), "{out}");
    for name in ["run", "sleep_millisecs", "pages_sharing", "full_scans"] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
    let line = out.lines().find(|l| l.contains("pages_sharing")).unwrap();
    assert!(
        line.contains("25600 (100.00 MiB)") && line.contains("ro"),
        "{line}"
    );
    let line = out.lines().find(|l| l.contains("sleep_millisecs")).unwrap();
    assert!(line.contains("rw"), "{line}");
}

#[test]
fn status_without_the_module_says_so() {
    let (_root, mut paths) = fixture();
    paths.sysfs = paths.sysfs.join("missing");
    let e = uksmctl::status(&paths).unwrap_err().to_string();
    assert!(e.contains("is uksm loaded?"), "{e}");
}

#[test]
fn top_orders_processes_by_merged_pages() {
    let (_root, paths) = fixture();
    let procs = uksmctl::processes(&paths).unwrap();
    let order: Vec<u32> = procs.iter().map(|p| p.pid).collect();
    assert_eq!(order, [200, 400, 100]);
    assert_eq!(procs[0].comm, "big db");
    let out = uksmctl::top(&paths, 2).unwrap();
    assert!(out.starts_with("3 processes with merged pages"), "{out}");
    assert!(
        out.contains("big db") && out.contains("zeros") && !out.contains("small"),
        "{out}"
    );
}

#[test]
fn set_writes_tunables_and_refuses_the_rest() {
    let (_root, paths) = fixture();
    uksmctl::set(&paths, "sleep_millisecs", "20").unwrap();
    assert_eq!(
        fs::read_to_string(paths.sysfs.join("sleep_millisecs")).unwrap(),
        "20\n"
    );
    let e = uksmctl::set(&paths, "sleep_milisecs", "20")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no tunable named") && e.contains("sleep_millisecs"),
        "{e}"
    );
    let e = uksmctl::set(&paths, "pages_sharing", "1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("statistic"), "{e}");
    for bad in ["", "-1", "1 ", "0x10", "1e3", "٣"] {
        let e = uksmctl::set(&paths, "sleep_millisecs", bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a plain decimal number"), "{bad:?}: {e}");
    }
    assert_eq!(
        fs::read_to_string(paths.sysfs.join("sleep_millisecs")).unwrap(),
        "20\n"
    );
    // A text tunable goes to the kernel as given (the kernel validates it).
    uksmctl::set(&paths, "cpu_governor", "quiet").unwrap();
    assert_eq!(
        fs::read_to_string(paths.sysfs.join("cpu_governor")).unwrap(),
        "quiet\n"
    );
}

#[test]
fn recording_round_trip_and_chart() {
    let (root, paths) = fixture();
    let mut csv = format!("{}\n", uksmctl::CSV_HEADER);
    for i in 0..5u64 {
        let mut s = uksmctl::sample(&paths, i as f64).unwrap();
        s.cpu_secs += i as f64 * 0.5; // half a CPU
        csv.push_str(&uksmctl::csv_line(&s));
        csv.push('\n');
    }
    let samples = uksmctl::parse_csv(&csv).unwrap();
    assert_eq!(samples.len(), 5);
    assert_eq!(samples[0].saved, (25600 + 256) * 4096);
    let cpu = uksmctl::cpu_percent(&samples);
    assert_eq!(cpu.len(), 4);
    assert!(cpu.iter().all(|&(_, p)| (p - 50.0).abs() < 0.01), "{cpu:?}");
    let svg = uksmctl::plot_svg(&samples, "test chart").unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("test chart"),
        "{}",
        &svg[..100]
    );
    assert!(svg.contains("memory saved (MiB)") && svg.contains("uksmd CPU"));
    assert!(uksmctl::parse_csv("a,b\n1,2\n").is_err());
    assert!(uksmctl::parse_csv(&format!("{}\n1,2,3\n", uksmctl::CSV_HEADER)).is_err());
    assert!(uksmctl::plot_svg(&samples[..1], "x").is_err());
    let _ = fs::remove_dir_all(root);
}

fn uksmctl_bin(paths: &Paths, args: &[&str]) -> std::process::Output {
    let p = |p: &Path| p.to_str().unwrap().to_string();
    Command::new(env!("CARGO_BIN_EXE_uksmctl"))
        .args([
            "--sysfs",
            &p(&paths.sysfs),
            "--proc",
            &p(&paths.proc),
            "--kmsg",
            &p(&paths.kmsg),
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_command() {
    let (root, paths) = fixture();
    let out = uksmctl_bin(&paths, &["status"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("memory saved"));
    let out = uksmctl_bin(&paths, &["set", "run", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("uksmctl: \"x\" is not"));
    let out = uksmctl_bin(&paths, &["watch", "--count", "2", "--interval", "0.01"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("memory saved")
            .count(),
        2
    );
    let csv = root.join("rec.csv");
    let svg = root.join("rec.svg");
    let out = uksmctl_bin(
        &paths,
        &[
            "record",
            "--interval",
            "0.05",
            "--duration",
            "0.2",
            "--output",
            csv.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = uksmctl_bin(
        &paths,
        &[
            "plot",
            csv.to_str().unwrap(),
            "--output",
            svg.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    for bad in [
        &["watch", "--interval", "0"][..],
        &["record", "--duration", "-1", "-o", "x"],
        &["frobnicate"],
    ] {
        let out = uksmctl_bin(&paths, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    let _ = fs::remove_dir_all(root);
}
