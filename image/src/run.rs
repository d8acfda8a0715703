//! `halcyon run`: boots the image in QEMU with a workload and behaves like `wasmtime run`.
//!
//! The workload's stdout and stderr arrive as frames on the workload channel (QEMU's
//! stdout) and are copied to ours byte for byte; the kernel log goes to a file (or live
//! to stderr with `--verbose`); the exit code is the workload's.

use crate::qemu::{self, KernelLog, VmConfig};
use crate::{elf_image, paths};
use anyhow::{bail, Context, Result};
use halcyon_hal::bundle::{self, Workload};
use halcyon_hal::channel::{Decoder, OwnedFrame, Outcome, Stream};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Exit status for traps, fuel exhaustion and memory-limit hits (wasmtime's: 128 + SIGABRT).
pub const EXIT_TRAP: i32 = 134;
/// Exit status when the module could not be run at all (invalid, unlinkable).
pub const EXIT_FAILED_TO_RUN: i32 = 1;
/// Exit status when the kernel itself failed (sysexits EX_SOFTWARE).
pub const EXIT_KERNEL_FAILURE: i32 = 70;
/// Exit status when `--timeout` expired (as `timeout(1)`).
pub const EXIT_TIMEOUT: i32 = 124;
/// Lines of the kernel log shown when the kernel failed.
const LOG_TAIL_LINES: usize = 20;

pub struct RunOptions {
    pub module: PathBuf,
    pub args: Vec<String>,
    /// `KEY=VALUE` or `KEY` (inherit from the host).
    pub env: Vec<String>,
    pub argv0: Option<String>,
    pub fuel: Option<u64>,
    pub memory: Option<u64>,
    pub ram: u64,
    pub vcpus: u32,
    pub accel: qemu::Accel,
    pub image: Option<PathBuf>,
    pub qemu: PathBuf,
    pub verbose: bool,
    pub log: Option<PathBuf>,
    pub timeout: Option<Duration>,
}

/// Resolves `--env` entries: `KEY=VALUE` as given, `KEY` from the host environment
/// (skipped if the host does not have it, as wasmtime does).
pub fn resolve_env(entries: &[String], host: impl Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in entries {
        match entry.split_once('=') {
            Some(("", _)) => bail!("--env '{entry}': the variable name is empty"),
            Some(_) => out.push(entry.clone()),
            None if entry.is_empty() => bail!("--env needs NAME or NAME=VALUE"),
            None => {
                if let Some(value) = host(entry) {
                    out.push(format!("{entry}={value}"));
                }
            }
        }
    }
    Ok(out)
}

/// The exit status for one workload outcome.
pub fn exit_code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Exited(code) => code,
        Outcome::Trap | Outcome::FuelExhausted | Outcome::MemoryLimit => EXIT_TRAP,
        Outcome::InvalidModule | Outcome::LinkError | Outcome::Other => EXIT_FAILED_TO_RUN,
    }
}

/// The one-line explanation printed on stderr for a workload that did not exit normally.
pub fn describe_failure(name: &str, outcome: Outcome, reason: &str) -> Option<String> {
    let what = match outcome {
        Outcome::Exited(_) => return None,
        Outcome::Trap => "trapped",
        Outcome::FuelExhausted => "ran out of fuel",
        Outcome::MemoryLimit => "hit its memory limit",
        Outcome::InvalidModule => "is not a valid module",
        Outcome::LinkError => "failed to link",
        Outcome::Other => "could not run",
    };
    Some(if reason.is_empty() {
        format!("halcyon: workload '{name}' {what}")
    } else {
        format!("halcyon: workload '{name}' {what}: {reason}")
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "module.wasm".into())
}

/// The bundle to boot: the file itself if it is one, else a one-workload bundle.
fn bundle_for(options: &RunOptions, input: &[u8]) -> Result<Vec<u8>> {
    if bundle::is_bundle(input) {
        if !options.args.is_empty() || !options.env.is_empty() || options.fuel.is_some() || options.memory.is_some() {
            bail!("{} is a bundle: its workloads carry their own arguments, environment and limits", options.module.display());
        }
        bundle::parse(input).with_context(|| format!("{} is a malformed bundle", options.module.display()))?;
        return Ok(input.to_vec());
    }
    let name = file_name(&options.module);
    let env = resolve_env(&options.env, |k| std::env::var(k).ok())?;
    let mut args = vec![options.argv0.clone().unwrap_or_else(|| name.clone())];
    args.extend(options.args.iter().cloned());
    let workload = Workload {
        name: &name,
        wasm: input,
        args: args.iter().map(String::as_str).collect(),
        env: env.iter().map(String::as_str).collect(),
        fuel: options.fuel,
        memory_limit: options.memory,
    };
    Ok(bundle::encode(&[workload]))
}

fn image_path(options: &RunOptions) -> Result<PathBuf> {
    let image = options.image.clone().unwrap_or_else(paths::default_image);
    if !image.exists() {
        bail!("no image at {}: build it with `make image` (or `halcyon build`)", image.display());
    }
    // A kernel newer than the image means someone rebuilt the kernel but not the image.
    let kernel = paths::default_kernel();
    if options.image.is_none() {
        if let (Ok(k), Ok(i)) = (std::fs::metadata(&kernel), std::fs::metadata(&image)) {
            if let (Ok(km), Ok(im)) = (k.modified(), i.modified()) {
                if km > im {
                    bail!("the image {} is older than the kernel {}: run `make image` (or `halcyon build`)", image.display(), kernel.display());
                }
            }
        }
    }
    elf_image::check_image(&image)?;
    Ok(image)
}

enum Event {
    Frame(OwnedFrame),
    ChannelError(String),
    ChannelClosed,
}

fn spawn_channel_reader(mut stdout: impl Read + Send + 'static, events: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            decoder.push(&buf[..n]);
            while let Some(frame) = decoder.next_frame() {
                let event = match frame {
                    Ok(frame) => Event::Frame(frame),
                    Err(e) => {
                        let _ = events.send(Event::ChannelError(e.to_string()));
                        return;
                    }
                };
                if events.send(event).is_err() {
                    return;
                }
            }
        }
        let _ = events.send(Event::ChannelClosed);
    });
}

fn spawn_collector(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

fn spawn_qemu(options: &RunOptions, config: &VmConfig<'_>) -> Result<Child> {
    let mut command = Command::new(&options.qemu);
    // With --verbose QEMU shares our stderr (the kernel log is written to /dev/stderr);
    // otherwise its messages are kept and shown only if the run fails.
    let stderr = if options.verbose { Stdio::inherit() } else { Stdio::piped() };
    command.args(qemu::args(config)).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
    command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!(
            "QEMU not found ({}): install it with `sudo apt-get install qemu-system-x86`, or pass --qemu PATH",
            options.qemu.display()
        ),
        _ => anyhow::Error::new(e).context(format!("cannot start {}", options.qemu.display())),
    })
}

/// What the run produced, as far as the host could tell.
#[derive(Default)]
struct RunRecord {
    names: BTreeMap<u8, String>,
    outcomes: Vec<(u8, Outcome)>,
    done: bool,
    channel_error: Option<String>,
}

/// Copies output to our stdout/stderr; a closed stdout (e.g. `| head`) stops copying but
/// not the run.
struct Sink {
    stdout_open: bool,
}

impl Sink {
    fn write(&mut self, stream: Stream, data: &[u8]) {
        match stream {
            Stream::Stdout if self.stdout_open => {
                let mut out = std::io::stdout().lock();
                if out.write_all(data).and_then(|()| out.flush()).is_err() {
                    self.stdout_open = false;
                }
            }
            Stream::Stdout => {}
            Stream::Stderr => {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(data).and_then(|()| err.flush());
            }
        }
    }
}

fn handle(record: &mut RunRecord, sink: &mut Sink, frame: OwnedFrame) {
    match frame {
        OwnedFrame::Output { stream, data, .. } => sink.write(stream, &data),
        OwnedFrame::Start { workload, name, .. } => {
            record.names.insert(workload, name);
        }
        OwnedFrame::Exit { workload, outcome, reason } => {
            let name = record.names.get(&workload).cloned().unwrap_or_else(|| format!("#{workload}"));
            if let Some(line) = describe_failure(&name, outcome, &reason) {
                eprintln!("{line}");
            }
            record.outcomes.push((workload, outcome));
        }
        OwnedFrame::Done { .. } => record.done = true,
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn run(options: RunOptions) -> Result<i32> {
    let input = std::fs::read(&options.module)
        .with_context(|| format!("cannot read {}", options.module.display()))?;
    if input.len() > u32::MAX as usize {
        bail!("{} is larger than 4 GiB", options.module.display());
    }
    let image = image_path(&options)?;
    let bundle_bytes = bundle_for(&options, &input)?;

    let scratch = tempfile::Builder::new().prefix("halcyon-run-").tempdir().context("cannot create a temporary directory")?;
    let bundle_path = scratch.path().join("workloads.hcb");
    std::fs::write(&bundle_path, &bundle_bytes).context("cannot write the workload bundle")?;
    let log_path = match (&options.log, options.verbose) {
        (Some(path), _) => {
            std::fs::write(path, b"").with_context(|| format!("cannot write the log file {}", path.display()))?;
            path.clone()
        }
        (None, true) => PathBuf::from("/dev/stderr"),
        (None, false) => scratch.path().join("kernel.log"),
    };
    let config = VmConfig {
        image: &image,
        bundle: &bundle_path,
        ram_bytes: options.ram,
        vcpus: options.vcpus,
        accel: options.accel,
        kernel_log: KernelLog::File(log_path.clone()),
    };

    let mut child = spawn_qemu(&options, &config)?;
    let (events_tx, events) = mpsc::channel();
    spawn_channel_reader(child.stdout.take().context("QEMU stdout")?, events_tx);
    let qemu_stderr = child.stderr.take().map(spawn_collector);

    let deadline = options.timeout.map(|t| Instant::now() + t);
    let mut record = RunRecord::default();
    let mut sink = Sink { stdout_open: true };
    let mut timed_out = false;
    loop {
        let event = match deadline {
            Some(deadline) => match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    let _ = child.kill();
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match events.recv() {
                Ok(event) => event,
                Err(_) => break,
            },
        };
        match event {
            Event::Frame(frame) => handle(&mut record, &mut sink, frame),
            Event::ChannelError(e) => {
                record.channel_error = Some(e);
                let _ = child.kill();
                break;
            }
            Event::ChannelClosed => break,
        }
    }
    let status = child.wait().context("waiting for QEMU")?;
    let qemu_stderr = qemu_stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    let qemu_stderr = String::from_utf8_lossy(&qemu_stderr).into_owned();

    if timed_out {
        eprintln!("halcyon: the VM did not finish within the timeout and was stopped");
        return Ok(EXIT_TIMEOUT);
    }
    if record.done {
        return Ok(record
            .outcomes
            .iter()
            .map(|(_, outcome)| exit_code(*outcome))
            .find(|code| *code != 0)
            .unwrap_or(0));
    }

    // No DONE frame: the kernel did not complete its run.
    let why = match (record.channel_error, status.code()) {
        (Some(e), _) => format!("the workload channel broke ({e})"),
        (None, Some(3)) => "the kernel stopped with a fatal error".to_string(),
        (None, Some(0)) => "the VM reset (triple fault) or QEMU stopped it".to_string(),
        (None, Some(code)) => format!("QEMU exited with status {code}"),
        (None, None) => "QEMU was killed by a signal".to_string(),
    };
    eprintln!("halcyon: the kernel failed: {why}");
    if !options.verbose {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if !log.trim().is_empty() {
            eprintln!("--- last lines of the kernel log ---\n{}", tail(&log, LOG_TAIL_LINES));
        }
    }
    if !qemu_stderr.trim().is_empty() {
        eprintln!("--- QEMU said ---\n{}", qemu_stderr.trim_end());
    }
    Ok(EXIT_KERNEL_FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_resolution() {
        let host = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let env = resolve_env(&["A=1".into(), "HOME".into(), "MISSING".into(), "B=x=y".into()], host).unwrap();
        assert_eq!(env, vec!["A=1", "HOME=/root", "B=x=y"]);
        assert!(resolve_env(&["=1".into()], host).is_err());
    }

    #[test]
    fn exit_codes_follow_wasmtime() {
        assert_eq!(exit_code(Outcome::Exited(0)), 0);
        assert_eq!(exit_code(Outcome::Exited(42)), 42);
        assert_eq!(exit_code(Outcome::Trap), 134);
        assert_eq!(exit_code(Outcome::FuelExhausted), 134);
        assert_eq!(exit_code(Outcome::MemoryLimit), 134);
        assert_eq!(exit_code(Outcome::InvalidModule), 1);
        assert_eq!(exit_code(Outcome::LinkError), 1);
    }

    #[test]
    fn failure_lines() {
        assert_eq!(describe_failure("x", Outcome::Exited(3), ""), None);
        assert_eq!(
            describe_failure("spin", Outcome::FuelExhausted, "all fuel consumed").unwrap(),
            "halcyon: workload 'spin' ran out of fuel: all fuel consumed"
        );
        assert_eq!(describe_failure("m", Outcome::MemoryLimit, "").unwrap(), "halcyon: workload 'm' hit its memory limit");
    }
}
