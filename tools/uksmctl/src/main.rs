//! uksmctl: show and set what uksm.ko does.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};
use uksmctl::{Paths, Result};

#[derive(Parser)]
#[command(version, about = "Show and set what uksm.ko does")]
struct Cli {
    /// The module's sysfs directory.
    #[arg(
        long,
        global = true,
        default_value = "/sys/kernel/mm/uksm",
        hide = true
    )]
    sysfs: PathBuf,
    /// The proc file system.
    #[arg(long, global = true, default_value = "/proc", hide = true)]
    proc: PathBuf,
    /// The kernel log device.
    #[arg(long, global = true, default_value = "/dev/kmsg", hide = true)]
    kmsg: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every statistic and tunable, with memory saved and uksmd's CPU time.
    Status,
    /// Processes by merged pages (from /proc/PID/ksm_stat).
    Top {
        /// How many processes to show.
        #[arg(short = 'n', long, default_value_t = 20)]
        count: usize,
    },
    /// Status and top processes, refreshed until interrupted.
    Watch {
        /// Seconds between refreshes.
        #[arg(short, long, default_value_t = 2.0, value_parser = positive_secs)]
        interval: f64,
        /// Stop after this many refreshes.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Sets a tunable of /sys/kernel/mm/uksm/ (the kernel's reason is shown if it refuses).
    Set {
        /// The tunable, e.g. sleep_millisecs.
        name: String,
        /// The value, a plain decimal number.
        value: String,
    },
    /// Samples memory saved and uksmd's CPU time into a CSV file.
    Record {
        /// Seconds between samples.
        #[arg(short, long, default_value_t = 1.0, value_parser = positive_secs)]
        interval: f64,
        /// Seconds to record.
        #[arg(short, long, value_parser = positive_secs)]
        duration: f64,
        /// The CSV file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Draws a recording as an SVG chart: memory saved and uksmd's CPU use over time.
    Plot {
        /// The CSV file `record` wrote.
        input: PathBuf,
        /// The SVG file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// The chart's title.
        #[arg(long, default_value = "uksm: memory saved and scanner CPU")]
        title: String,
    },
}

fn positive_secs(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

fn run(cli: Cli) -> Result<()> {
    let paths = Paths {
        sysfs: cli.sysfs,
        proc: cli.proc,
        kmsg: cli.kmsg,
    };
    let io = |e: std::io::Error| uksmctl::Error(e.to_string());
    match cli.command {
        Command::Status => print!("{}", uksmctl::status(&paths)?),
        Command::Top { count } => print!("{}", uksmctl::top(&paths, count)?),
        Command::Watch { interval, count } => {
            let mut n = 0;
            loop {
                let report = format!(
                    "{}\n{}",
                    uksmctl::status(&paths)?,
                    uksmctl::top(&paths, 10)?
                );
                // Clear the screen, then draw.
                print!("\x1b[2J\x1b[H{report}");
                std::io::stdout().flush().map_err(io)?;
                n += 1;
                if count.is_some_and(|c| n >= c) {
                    break;
                }
                sleep(Duration::from_secs_f64(interval));
            }
        }
        Command::Set { name, value } => {
            uksmctl::set(&paths, &name, &value)?;
            println!("{name} = {value}");
        }
        Command::Record {
            interval,
            duration,
            output,
        } => {
            let mut out = std::fs::File::create(&output)
                .map_err(|e| uksmctl::Error(format!("{}: {e}", output.display())))?;
            writeln!(out, "{}", uksmctl::CSV_HEADER).map_err(io)?;
            let start = Instant::now();
            let mut next = 0.0;
            let mut samples = 0;
            while next <= duration {
                let wait = next - start.elapsed().as_secs_f64();
                if wait > 0.0 {
                    sleep(Duration::from_secs_f64(wait));
                }
                let s = uksmctl::sample(&paths, start.elapsed().as_secs_f64())?;
                writeln!(out, "{}", uksmctl::csv_line(&s)).map_err(io)?;
                out.flush().map_err(io)?;
                samples += 1;
                next += interval;
            }
            println!("{samples} samples written to {}", output.display());
        }
        Command::Plot {
            input,
            output,
            title,
        } => {
            let text = std::fs::read_to_string(&input)
                .map_err(|e| uksmctl::Error(format!("{}: {e}", input.display())))?;
            let samples = uksmctl::parse_csv(&text)?;
            let svg = uksmctl::plot_svg(&samples, &title)?;
            std::fs::write(&output, svg)
                .map_err(|e| uksmctl::Error(format!("{}: {e}", output.display())))?;
            println!("{} samples drawn to {}", samples.len(), output.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uksmctl: {e}");
            ExitCode::FAILURE
        }
    }
}
