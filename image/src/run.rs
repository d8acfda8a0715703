//! `halcyon run`: boots the image in QEMU with a workload and behaves like `wasmtime run`.
//!
//! The workload's stdout and stderr arrive as frames on the workload channel (QEMU's
//! stdout) and are copied to ours byte for byte; the kernel log goes to a file (or live
//! to stderr with `--verbose`); the exit code is the workload's.

use crate::bundle_cmd::read_input;
use crate::qemu::{self, KernelLog, VmConfig};
use crate::{elf_image, paths};
use anyhow::{bail, Context, Result};
use halcyon_hal::bundle::{self, Workload};
use halcyon_hal::channel::{Decoder, OwnedFrame, Outcome, Stream};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
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
/// How long QEMU may take to exit after the kernel reported the run complete.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How often `--verbose` looks for new kernel log lines.
const LOG_POLL: Duration = Duration::from_millis(10);

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
    /// PVH (`-kernel`) or firmware (`-bios`) boot.
    pub boot: qemu::Boot,
    /// Which launch configuration (`qemu/*.args`).
    pub platform: qemu::Platform,
    pub qemu: PathBuf,
    pub verbose: bool,
    pub log: Option<PathBuf>,
    pub timeout: Option<Duration>,
    /// Host addresses to listen on; each becomes a preopened listening socket (fd 3...).
    pub tcp_listen: Vec<std::net::SocketAddr>,
    /// Give the guest a network card even without `tcp_listen` (outgoing connections).
    pub inherit_network: bool,
    /// Extra words for the kernel command line (`net.dns=...`, `virtio.bounce=on`).
    pub kernel_cmdline: Vec<String>,
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

/// The exit status of a whole run: the first workload status that is not 0, else 0
/// (for a single workload, simply its status).
pub fn run_exit_code(outcomes: &[Outcome]) -> i32 {
    outcomes.iter().map(|o| exit_code(*o)).find(|code| *code != 0).unwrap_or(0)
}

/// The process exit status for a run status. Unix keeps 8 bits, as it does for
/// wasmtime; a non-zero status whose low byte is 0 becomes 1 so failure is not lost.
pub fn process_status(code: i32) -> u8 {
    match u8::try_from(code) {
        Ok(byte) => byte,
        Err(_) if code as u8 == 0 => 1,
        Err(_) => code as u8,
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
        let per_workload = !options.args.is_empty()
            || !options.env.is_empty()
            || options.argv0.is_some()
            || options.fuel.is_some()
            || options.memory.is_some()
            || !options.tcp_listen.is_empty();
        if per_workload {
            bail!(
                "{} is a bundle: its workloads carry their own arguments, environment and limits \
                 (drop ARGS, --env, --argv0, --fuel, --memory and --tcplisten, or put them in the bundle's manifest)",
                options.module.display()
            );
        }
        bundle::parse(input).with_context(|| format!("{} is a malformed bundle", options.module.display()))?;
        return Ok(input.to_vec());
    }
    let name = file_name(&options.module);
    let env = resolve_env(&options.env, |k| std::env::var(k).ok())?;
    // The guest listens on every address, on the port the host forwards.
    let guest_listen: Vec<String> = options.tcp_listen.iter().map(|a| format!("0.0.0.0:{}", a.port())).collect();
    let mut args = vec![options.argv0.clone().unwrap_or_else(|| name.clone())];
    args.extend(options.args.iter().cloned());
    let workload = Workload {
        name: &name,
        wasm: input,
        args: args.iter().map(String::as_str).collect(),
        env: env.iter().map(String::as_str).collect(),
        tcp_listen: guest_listen.iter().map(String::as_str).collect(),
        fuel: options.fuel,
        memory_limit: options.memory,
    };
    Ok(bundle::encode(&[workload]))
}

/// The file QEMU boots: the ELF for PVH, its `.fd` form for a firmware boot. `--image` may
/// name either of the pair `halcyon build` writes (see `firmware::output_paths`); the ELF is
/// checked in both cases, since its notes say which protocols the kernel speaks.
fn image_path(options: &RunOptions) -> Result<PathBuf> {
    let given = options.image.clone().unwrap_or_else(paths::default_image);
    let (image, fd) = crate::firmware::output_paths(&given);
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
    if options.boot == qemu::Boot::Pvh {
        return Ok(image);
    }
    // The firmware form beside the ELF, built from the same kernel by the same `halcyon build`.
    let elf = image;
    let bytes = std::fs::read(&fd)
        .with_context(|| format!("cannot read the firmware {} (build it with `make image` or `halcyon build`)", fd.display()))?;
    halcyon_boot::firmware_layout::FirmwareLayout::read(&bytes)
        .with_context(|| format!("{} is not a Halcyon firmware image: rebuild it with `make image`", fd.display()))?;
    if let (Ok(e), Ok(f)) = (std::fs::metadata(&elf), std::fs::metadata(&fd)) {
        if let (Ok(em), Ok(fm)) = (e.modified(), f.modified()) {
            if em > fm {
                bail!("the firmware {} is older than the image {}: run `make image` (or `halcyon build`)", fd.display(), elf.display());
            }
        }
    }
    Ok(fd)
}

enum Event {
    Frame(OwnedFrame),
    ChannelError(String),
    ChannelClosed,
    /// `halcyon` itself was asked to stop (SIGTERM, SIGHUP, SIGINT).
    Signal(i32),
}

/// The signals after which `halcyon run` stops its QEMU and exits, instead of dying and
/// leaving the VM running without anyone reading its output.
const STOP_SIGNALS: [i32; 3] = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP, signal_hook::consts::SIGINT];

/// Exit status after a stop signal, as a shell reports a process it killed (128 + signal).
pub fn signal_exit_code(signal: i32) -> i32 {
    128 + signal
}

/// Turns the stop signals into [`Event::Signal`] until the returned handle is closed.
fn forward_stop_signals(events: mpsc::Sender<Event>) -> Result<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new(STOP_SIGNALS).context("cannot install signal handlers")?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if events.send(Event::Signal(signal)).is_err() {
                return;
            }
        }
    });
    Ok(handle)
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

/// `--verbose`: copies the kernel log file to stderr as QEMU appends to it, until `stop`
/// is set and everything written so far has been copied.
fn spawn_log_follower(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut file) = std::fs::File::open(&path) else { return };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // Read the flag before draining, so bytes written before it was set are copied.
            let stopping = stop.load(Ordering::Acquire);
            match file.read(&mut buf) {
                Ok(0) if stopping => return,
                Ok(0) => std::thread::sleep(LOG_POLL),
                Ok(n) => {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(&buf[..n]).and_then(|()| err.flush());
                }
                Err(_) => return,
            }
        }
    })
}

/// Collects a pipe to its end. Read the result with a timeout: a process QEMU started
/// (or a wrapper script's child) may hold the pipe open after QEMU is gone.
fn spawn_collector(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        let _ = tx.send(out);
    });
    rx
}

fn spawn_qemu(options: &RunOptions, config: &VmConfig<'_>) -> Result<Child> {
    let mut command = Command::new(&options.qemu);
    // With --verbose QEMU shares our stderr; otherwise its messages are kept and shown
    // only if the run fails.
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
    /// Whether any frame arrived (the kernel got as far as running workloads).
    frames: bool,
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
    record.frames = true;
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
    let input = read_input(&options.module)?;
    let image = image_path(&options)?;
    let bundle_bytes = bundle_for(&options, &input)?;

    let scratch = tempfile::Builder::new().prefix("halcyon-run-").tempdir().context("cannot create a temporary directory")?;
    let bundle_path = scratch.path().join("workloads.hcb");
    std::fs::write(&bundle_path, &bundle_bytes).context("cannot write the workload bundle")?;
    // The kernel log always goes to a file (--log's, or a temporary one) so its end can
    // be shown if the kernel fails; --verbose follows that file live.
    let log_path = options.log.clone().unwrap_or_else(|| scratch.path().join("kernel.log"));
    std::fs::write(&log_path, b"").with_context(|| format!("cannot write the log file {}", log_path.display()))?;
    let network = (options.inherit_network || !options.tcp_listen.is_empty())
        .then(|| qemu::NetworkConfig { tcp_forwards: options.tcp_listen.clone() });
    let launch = options.platform.launch_config();
    let config = VmConfig {
        platform: options.platform,
        launch,
        image: &image,
        boot: options.boot,
        bundle: &bundle_path,
        ram_bytes: options.ram,
        vcpus: options.vcpus,
        accel: options.accel,
        kernel_log: KernelLog::File(log_path.clone()),
        network: network.as_ref(),
        kernel_cmdline: &options.kernel_cmdline,
    };

    let (events_tx, events) = mpsc::channel();
    // Installed before QEMU starts, so there is no moment at which a signal would end
    // halcyon and leave the VM behind.
    let signals = forward_stop_signals(events_tx.clone())?;
    let mut child = spawn_qemu(&options, &config)?;
    spawn_channel_reader(child.stdout.take().context("QEMU stdout")?, events_tx);
    let qemu_stderr = child.stderr.take().map(spawn_collector);
    let stop_following = Arc::new(AtomicBool::new(false));
    let follower = options.verbose.then(|| spawn_log_follower(log_path.clone(), stop_following.clone()));

    let user_deadline = options.timeout.map(|t| Instant::now() + t);
    let mut record = RunRecord::default();
    let mut sink = Sink { stdout_open: true };
    let mut timed_out = false;
    let mut stopped_by = None;
    loop {
        // After DONE the kernel only has to switch the VM off; do not wait forever for it.
        let grace = record.done.then(|| Instant::now() + EXIT_GRACE);
        let deadline = [user_deadline, grace].into_iter().flatten().min();
        let event = match deadline {
            Some(deadline) => match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = !record.done;
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
            Event::Signal(signal) => {
                stopped_by = Some(signal);
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait().context("waiting for QEMU")?;
    stop_following.store(true, Ordering::Release);
    if let Some(follower) = follower {
        let _ = follower.join();
    }
    signals.close();
    if let Some(signal) = stopped_by {
        eprintln!("halcyon: stopped by signal {signal}; the VM was stopped too");
        return Ok(signal_exit_code(signal));
    }
    let qemu_stderr = qemu_stderr.and_then(|rx| rx.recv_timeout(Duration::from_secs(1)).ok()).unwrap_or_default();
    let qemu_stderr = String::from_utf8_lossy(&qemu_stderr).into_owned();

    let show_log_tail = || {
        if options.verbose {
            return; // already on stderr
        }
        let log = std::fs::read(&log_path).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        if !log.trim().is_empty() {
            eprintln!("--- last lines of the kernel log ({}) ---\n{}", log_path.display(), tail(&log, LOG_TAIL_LINES));
        }
    };
    if timed_out {
        let secs = options.timeout.unwrap_or_default().as_secs_f64();
        eprintln!("halcyon: the VM did not finish within {secs}s (--timeout) and was stopped");
        show_log_tail();
        return Ok(EXIT_TIMEOUT);
    }
    if record.done {
        let outcomes: Vec<Outcome> = record.outcomes.iter().map(|(_, o)| *o).collect();
        return Ok(run_exit_code(&outcomes));
    }

    // No DONE frame: the kernel did not complete its run.
    let kernel_logged = std::fs::metadata(&log_path).is_ok_and(|m| m.len() > 0);
    let why = match (record.channel_error, status.code()) {
        (Some(e), _) => format!("the workload channel broke ({e})"),
        // QEMU's own errors (bad option, missing device, no KVM) end it with status 1
        // before the kernel says anything.
        (None, Some(1)) if !kernel_logged && !record.frames => {
            "QEMU could not start the VM (exit status 1)".to_string()
        }
        (None, Some(3)) => "the kernel stopped with a fatal error".to_string(),
        (None, Some(0)) => "the VM reset (triple fault) or QEMU stopped it".to_string(),
        (None, Some(code)) => format!("QEMU exited with status {code}"),
        (None, None) => "QEMU was killed by a signal".to_string(),
    };
    eprintln!("halcyon: the kernel failed: {why}");
    show_log_tail();
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
    fn a_run_exits_with_the_first_failure() {
        assert_eq!(run_exit_code(&[]), 0);
        assert_eq!(run_exit_code(&[Outcome::Exited(0), Outcome::Exited(0)]), 0);
        assert_eq!(run_exit_code(&[Outcome::Exited(7)]), 7);
        assert_eq!(run_exit_code(&[Outcome::Exited(0), Outcome::Trap, Outcome::Exited(5)]), 134);
        assert_eq!(run_exit_code(&[Outcome::Exited(0), Outcome::LinkError, Outcome::Trap]), 1);
        assert_eq!(run_exit_code(&[Outcome::Exited(-1)]), -1);
    }

    #[test]
    fn process_status_keeps_failures_failures() {
        assert_eq!(process_status(0), 0);
        assert_eq!(process_status(42), 42);
        assert_eq!(process_status(255), 255);
        assert_eq!(process_status(-1), 255);
        assert_eq!(process_status(257), 1);
        assert_eq!(process_status(256), 1);
        assert_eq!(process_status(i32::MIN), 1);
    }

    #[test]
    fn bundles_refuse_per_workload_options() {
        let bundle = bundle::encode(&[]);
        let options = |args: Vec<String>, argv0: Option<String>| RunOptions {
            module: PathBuf::from("b.hcb"),
            args,
            env: vec![],
            argv0,
            fuel: None,
            memory: None,
            ram: 64 << 20,
            vcpus: 1,
            accel: qemu::Accel::Tcg,
            image: None,
            boot: qemu::Boot::Pvh,
            platform: qemu::Platform::Plain,
            qemu: PathBuf::from("qemu-system-x86_64"),
            verbose: false,
            log: None,
            timeout: None,
            tcp_listen: vec![],
            inherit_network: false,
            kernel_cmdline: vec![],
        };
        assert_eq!(bundle_for(&options(vec![], None), &bundle).unwrap(), bundle);
        assert!(bundle_for(&options(vec!["x".into()], None), &bundle).unwrap_err().to_string().contains("is a bundle"));
        assert!(bundle_for(&options(vec![], Some("a".into())), &bundle).is_err());
        // A module becomes a one-workload bundle whose argv[0] is the file name or --argv0.
        let module = b"\0asm\x01\0\0\0";
        let bytes = bundle_for(&options(vec!["--x".into()], Some("prog".into())), module).unwrap();
        let parsed = bundle::parse(&bytes).unwrap();
        assert_eq!(parsed[0].name, "b.hcb");
        assert_eq!(parsed[0].args, ["prog", "--x"]);
        assert_eq!(parsed[0].wasm, module);
    }

    #[test]
    fn log_tail() {
        let log: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        assert_eq!(tail(&log, 2), "line 29\nline 30");
        assert_eq!(tail("one", 20), "one");
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
