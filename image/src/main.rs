//! `halcyon`: the host side of Halcyon. Builds the bootable image and runs WebAssembly
//! workloads in it under QEMU, the way `wasmtime run` runs them on the host.
#![deny(unsafe_code)]

mod build_cmd;
mod bundle_cmd;
mod elf_image;
mod firmware;
mod measure;
mod paths;
mod qemu;
mod run;
mod size;
#[cfg(test)]
mod test_elf;
mod verify;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "halcyon", version, about = "Build and run Halcyon confidential-computing unikernel images")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the kernel and write the bootable images: the PVH ELF and the `-bios` firmware
    Build {
        /// Kernel ELF to package [default: target/x86_64-unknown-none/kernel/halcyon-kernel]
        #[arg(long, value_name = "PATH")]
        kernel: Option<PathBuf>,
        /// Where to write the image [default: target/halcyon/halcyon.elf]; the firmware form
        /// goes beside it as `.fd` (or give the `.fd` path, and the ELF goes beside it as `.elf`)
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Run a WebAssembly module (or a bundle of them) in a Halcyon VM
    Run(Box<RunArgs>),
    /// Pack several workloads into one bundle for a single boot
    Bundle {
        /// Where to write the bundle
        #[arg(short, long, value_name = "PATH")]
        output: PathBuf,
        /// A manifest (`*.toml`, see README) or one or more `.wasm` modules
        #[arg(required = true, value_name = "MANIFEST|MODULE")]
        inputs: Vec<PathBuf>,
    },
    /// Print the expected launch measurement (hex) of an OVMF-compatible firmware
    Measure {
        /// Which measurement: the SEV-SNP launch digest or the TDX MRTD
        #[arg(long, value_enum)]
        platform: measure::MeasurePlatform,
        /// Number of vCPUs the guest is launched with (SNP only) [default: 1]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
        vcpus: Option<u32>,
        /// QEMU `-cpu` model the guest is launched with (SNP only) [default: EPYC-v4]
        #[arg(long, value_name = "TYPE")]
        vcpu_type: Option<String>,
        /// The firmware (`-bios` image) [default: target/halcyon/halcyon.fd]; given Halcyon's ELF
        /// image, its firmware form beside it (`.fd`) is measured
        #[arg(value_name = "FIRMWARE", env = "HALCYON_IMAGE")]
        firmware: Option<PathBuf>,
    },
    /// Verify attestation evidence (an SEV-SNP report or a TD quote) and check it against what you expect
    Verify(VerifyArgs),
    /// Attest a running Halcyon VM and send it a workload (not implemented yet)
    Deploy,
}

/// Where attestation evidence comes from.
#[derive(Clone, Copy, ValueEnum)]
enum EvidencePlatform {
    /// AMD SEV-SNP: an ATTESTATION_REPORT signed by the chip's VCEK
    Snp,
    /// Intel TDX: a TD quote (version 4 or 5) signed by the quoting enclave
    Tdx,
}

#[derive(Args)]
struct VerifyArgs {
    /// Which kind of evidence EVIDENCE is
    #[arg(long, value_enum)]
    platform: EvidencePlatform,
    /// The evidence: an SNP ATTESTATION_REPORT (1184 bytes) or a TD quote, binary or hex
    #[arg(value_name = "EVIDENCE")]
    evidence: PathBuf,
    /// SNP: the VCEK certificate (DER or PEM, from AMD KDS) that signed the report; in a PEM chain
    /// the first certificate (AMD's ASK and ARK are built in: Milan, Genoa, Turin)
    #[arg(long, value_name = "FILE")]
    vcek: Option<PathBuf>,
    /// TDX: the quote's collateral (JSON: Intel PCS TCB info, QE identity, CRLs; as dcap-qvl writes it)
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// The launch measurement to expect (SNP MEASUREMENT, TDX MRTD; 48 bytes hex)
    #[arg(long, value_name = "HEX")]
    expected_measurement: Option<String>,
    /// The report data to expect (up to 64 bytes hex; shorter values are zero-extended)
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// Guest policy (SNP) or TD attributes (TDX) to require, comma-separated:
    /// exact=0xHEX, FLAG (must be set), no-FLAG (must be clear), min-abi=MAJOR.MINOR (SNP)
    #[arg(long, value_name = "SPEC")]
    policy: Option<String>,
    /// Accept a guest whose policy or attributes allow debugging
    #[arg(long)]
    allow_debug: bool,
    /// TDX: Halcyon's measurement log (`KIND NAME sha256:HEX` lines) to replay into RTMR1 and RTMR2
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,
    /// TDX: an RTMR value to expect, INDEX=HEX (48 bytes); may be repeated
    #[arg(long = "rtmr", value_name = "INDEX=HEX")]
    rtmr: Vec<String>,
    /// TDX: platform TCB statuses to accept
    #[arg(long, value_name = "STATUS", value_delimiter = ',', default_value = verify::tdx::DEFAULT_TCB_STATUS)]
    tcb_status: Vec<String>,
    /// Verify as at this time (seconds since 1970) instead of now, e.g. old evidence with its collateral
    #[arg(long, value_name = "UNIX_SECS")]
    now: Option<u64>,
}

#[derive(Args)]
#[command(override_usage = "halcyon run [OPTIONS] <MODULE> [ARGS]...")]
struct RunArgs {
    /// Pass an environment variable to the workload (NAME=VALUE, or NAME to inherit it)
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// argv[0] for the workload [default: the module's file name]
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,
    /// Stop the workload after this much fuel (about one unit per wasm instruction)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    fuel: Option<u64>,
    /// Limit the workload's linear memory (e.g. 64KiB, 16MiB)
    #[arg(long, value_name = "SIZE", value_parser = size::parse_nonzero_size)]
    memory: Option<u64>,
    /// Guest RAM
    #[arg(long, value_name = "SIZE", value_parser = size::parse_nonzero_size, default_value = "64MiB")]
    ram: u64,
    /// Number of vCPUs
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=255))]
    vcpus: u32,
    /// How QEMU runs the guest: tcg (emulation, works everywhere) or kvm [default: tcg for
    /// a plain VM, kvm for snp and tdx]
    #[arg(long, value_enum)]
    accel: Option<qemu::Accel>,
    /// The image to boot [default: target/halcyon/halcyon.elf]
    #[arg(long, value_name = "PATH", env = "HALCYON_IMAGE")]
    image: Option<PathBuf>,
    /// How QEMU starts the kernel: pvh (`-kernel` the image) or firmware (`-bios` its `.fd`
    /// form; boot data through fw_cfg) [default: pvh for a plain VM; snp and tdx boot the
    /// firmware only]
    #[arg(long, value_enum)]
    boot: Option<qemu::Boot>,
    /// The QEMU binary
    #[arg(long, value_name = "PATH", env = "HALCYON_QEMU", default_value = "qemu-system-x86_64")]
    qemu: PathBuf,
    /// Show the kernel log on stderr
    #[arg(short, long)]
    verbose: bool,
    /// Write the kernel log to this file
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Which kind of VM to launch: plain (qemu/plain.args), snp (qemu/snp.args; needs an
    /// SEV-SNP host) or tdx (qemu/tdx.args; needs a TDX host)
    #[arg(long, value_enum, default_value = "plain")]
    platform: qemu::Platform,
    /// Stop the VM after this many seconds
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Listen on HOST:PORT and hand the workload the listening socket as fd 3 (then 4, ...),
    /// as `wasmtime run --tcplisten` does; gives the VM a network card
    #[arg(long = "tcplisten", value_name = "HOST:PORT")]
    tcp_listen: Vec<std::net::SocketAddr>,
    /// WASI option, as wasmtime's `-S`: `inherit-network` (a network card for outgoing
    /// connections), `tcplisten=HOST:PORT`
    #[arg(short = 'S', value_name = "KEY[=VALUE]")]
    wasi_options: Vec<String>,
    /// Name server the guest uses instead of QEMU's (which forwards to the host's resolver)
    #[arg(long, value_name = "IPV4")]
    dns_server: Option<std::net::Ipv4Addr>,
    /// Extra words for the kernel command line (diagnostics, e.g. `virtio.bounce=on`)
    #[arg(long, value_name = "WORD", hide = true)]
    kernel_arg: Vec<String>,
    /// The module (.wasm) or bundle to run, then the arguments passed to the workload
    /// (everything after MODULE goes to the workload, as with `wasmtime run`)
    #[arg(required = true, trailing_var_arg = true, value_name = "MODULE")]
    module_and_args: Vec<String>,
}

impl RunArgs {
    /// Splits `MODULE [ARGS]...` (clap guarantees at least MODULE).
    fn module_and_args(&self) -> (PathBuf, Vec<String>) {
        match self.module_and_args.split_first() {
            Some((module, args)) => (PathBuf::from(module), args.to_vec()),
            None => (PathBuf::new(), Vec::new()),
        }
    }
}

/// The boot and accelerator `--platform` implies, checked against what was asked for.
fn boot_and_accel(args: &RunArgs) -> anyhow::Result<(qemu::Boot, qemu::Accel)> {
    let name = match args.platform {
        qemu::Platform::Plain => return Ok((args.boot.unwrap_or(qemu::Boot::Pvh), args.accel.unwrap_or(qemu::Accel::Tcg))),
        qemu::Platform::Snp => "snp",
        qemu::Platform::Tdx => "tdx",
    };
    if args.boot == Some(qemu::Boot::Pvh) {
        anyhow::bail!("--platform {name} boots the measured firmware image only: leave out --boot pvh");
    }
    if args.accel == Some(qemu::Accel::Tcg) {
        anyhow::bail!("--platform {name} needs KVM on a host with that TEE: leave out --accel tcg");
    }
    Ok((qemu::Boot::Firmware, qemu::Accel::Kvm))
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    let (boot, accel) = boot_and_accel(&args)?;
    if args.ram < qemu::MIN_RAM_BYTES {
        anyhow::bail!(
            "--ram {} MiB is too little: the VM needs at least {} MiB (the kernel alone takes about 2 MiB)",
            args.ram >> 20,
            qemu::MIN_RAM_BYTES >> 20
        );
    }
    let timeout = match args.timeout {
        Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
        Some(_) => anyhow::bail!("--timeout takes a positive number of seconds"),
        None => None,
    };
    let (module, workload_args) = args.module_and_args();
    let mut tcp_listen = args.tcp_listen;
    let mut inherit_network = false;
    for option in &args.wasi_options {
        let (key, value) = option.split_once('=').unwrap_or((option, "y"));
        let yes = |value: &str| match value {
            "y" | "yes" | "true" => Ok(true),
            "n" | "no" | "false" => Ok(false),
            _ => anyhow::bail!("-S {key}={value}: expected y or n"),
        };
        match key {
            "inherit-network" | "allow-ip-name-lookup" | "tcp" | "udp" => inherit_network |= yes(value)?,
            "tcplisten" => tcp_listen.push(value.parse().map_err(|_| anyhow::anyhow!("-S tcplisten={value}: expected HOST:PORT"))?),
            _ => anyhow::bail!("-S {key}: unknown or unsupported WASI option (supported: inherit-network, tcplisten=HOST:PORT)"),
        }
    }
    let mut kernel_cmdline = args.kernel_arg;
    if let Some(dns) = args.dns_server {
        kernel_cmdline.push(format!("net.dns={dns}"));
        inherit_network = true;
    }
    run::run(run::RunOptions {
        module,
        args: workload_args,
        env: args.env,
        argv0: args.argv0,
        fuel: args.fuel,
        memory: args.memory,
        ram: args.ram,
        vcpus: args.vcpus,
        accel,
        image: args.image,
        boot,
        platform: args.platform,
        qemu: args.qemu,
        verbose: args.verbose,
        log: args.log,
        timeout,
        tcp_listen,
        inherit_network,
        kernel_cmdline,
    })
}

/// `halcyon verify`: prints each check that passed; exit 0 only if all did.
fn verify_evidence(args: VerifyArgs) -> anyhow::Result<i32> {
    use anyhow::Context;
    use verify::{Expectations, PolicyRequirement, Verified, VerifyTime};
    let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let flags = match args.platform {
        EvidencePlatform::Snp => verify::snp::policy_flags(),
        EvidencePlatform::Tdx => verify::tdx::policy_flags(),
    };
    let is_snp = matches!(args.platform, EvidencePlatform::Snp);
    let event_log = match &args.event_log {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let entries = halcyon_hal::evidence::rtmr::parse_event_log(&text).with_context(|| format!("--event-log {}", path.display()))?;
            Some(entries)
        }
        None => None,
    };
    let expect = Expectations {
        measurement: match &args.expected_measurement {
            Some(text) => {
                let bytes = verify::parse_hex_arg("--expected-measurement", text, 48)?;
                anyhow::ensure!(bytes.len() == 48, "--expected-measurement: {} bytes, a measurement has 48", bytes.len());
                Some(bytes)
            }
            None => None,
        },
        report_data: args.report_data.as_deref().map(|t| verify::parse_hex_arg("--report-data", t, 64)).transpose()?,
        policy: args.policy.as_deref().map(|spec| PolicyRequirement::parse(spec, &flags, is_snp)).transpose()?,
        allow_debug: args.allow_debug,
        event_log,
        rtmrs: args.rtmr.iter().map(|text| verify::parse_rtmr_arg(text)).collect::<Result<_, _>>()?,
        tcb_statuses: args.tcb_status.clone(),
    };
    let now = VerifyTime(match args.now {
        Some(secs) => std::time::UNIX_EPOCH + Duration::from_secs(secs),
        None => std::time::SystemTime::now(),
    });
    let evidence = verify::evidence_bytes(&read(&args.evidence)?);
    let mut out = Verified::default();
    let result = match args.platform {
        EvidencePlatform::Snp => {
            let vcek = args.vcek.as_ref().context("--platform snp needs --vcek FILE (the VCEK certificate from AMD KDS)")?;
            verify::snp::verify_into(&evidence, &read(vcek)?, &expect, now, &mut out)
        }
        EvidencePlatform::Tdx => {
            let collateral = args.collateral.as_ref().context("--platform tdx needs --collateral FILE (the quote's Intel collateral, JSON)")?;
            verify::tdx::verify_into(&evidence, &read(collateral)?, &expect, now, &mut out)
        }
    };
    for line in &out.lines {
        println!("ok: {line}");
    }
    match result {
        Ok(()) => {
            println!("verified: {}", args.evidence.display());
            Ok(0)
        }
        Err(e) => anyhow::bail!("verification failed: {e}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build { kernel, output } => build_cmd::build(kernel, output).map(|()| 0),
        Command::Run(args) => run(*args),
        Command::Bundle { output, inputs } => bundle_cmd::bundle(&output, &inputs).map(|()| 0),
        Command::Measure { platform, vcpus, vcpu_type, firmware } => {
            measure::measure(platform, vcpus, vcpu_type.as_deref(), firmware).map(|digest| {
                println!("{digest}");
                0
            })
        }
        Command::Verify(args) => verify_evidence(args),
        Command::Deploy => {
            eprintln!("halcyon: this command is not implemented yet (it arrives with the SEV-SNP and TDX support)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => ExitCode::from(run::process_status(code)),
        Err(e) => {
            eprintln!("halcyon: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_arguments_go_to_the_workload() {
        let cli = Cli::try_parse_from(["halcyon", "run", "--env", "A=1", "--fuel", "5", "m.wasm", "--exit", "3", "-v"]).unwrap();
        let Command::Run(args) = cli.command else { panic!() };
        assert_eq!(args.env, vec!["A=1"]);
        assert_eq!(args.fuel, Some(5));
        assert_eq!(args.module_and_args(), (PathBuf::from("m.wasm"), vec!["--exit".into(), "3".into(), "-v".into()]));
        assert!(!args.verbose);
    }

    fn run_args(argv: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = Cli::try_parse_from(["halcyon", "run"].iter().chain(argv))?;
        let Command::Run(args) = cli.command else { panic!("not a run") };
        Ok(*args)
    }

    #[test]
    fn sizes_and_defaults() {
        let args = run_args(&["--memory", "16MiB", "m.wasm"]).unwrap();
        assert_eq!(args.memory, Some(16 << 20));
        assert_eq!(args.ram, 64 << 20);
        assert_eq!(args.vcpus, 1);
        assert_eq!(args.fuel, None);
        assert!(matches!(args.platform, qemu::Platform::Plain));
        assert_eq!(boot_and_accel(&args).unwrap(), (qemu::Boot::Pvh, qemu::Accel::Tcg));
        let firmware = run_args(&["--boot", "firmware", "m.wasm"]).unwrap();
        assert_eq!(boot_and_accel(&firmware).unwrap(), (qemu::Boot::Firmware, qemu::Accel::Tcg));
        // snp and tdx imply the firmware boot under KVM, and refuse anything else.
        for platform in ["snp", "tdx"] {
            let args = run_args(&["--platform", platform, "m.wasm"]).unwrap();
            assert_eq!(boot_and_accel(&args).unwrap(), (qemu::Boot::Firmware, qemu::Accel::Kvm));
            let args = run_args(&["--platform", platform, "--boot", "firmware", "--accel", "kvm", "m.wasm"]).unwrap();
            assert_eq!(boot_and_accel(&args).unwrap(), (qemu::Boot::Firmware, qemu::Accel::Kvm));
            let pvh = boot_and_accel(&run_args(&["--platform", platform, "--boot", "pvh", "m.wasm"]).unwrap());
            assert!(pvh.unwrap_err().to_string().contains("firmware image only"));
            let tcg = boot_and_accel(&run_args(&["--platform", platform, "--accel", "tcg", "m.wasm"]).unwrap());
            assert!(tcg.unwrap_err().to_string().contains("needs KVM"));
        }
        assert!(run_args(&["--boot", "bios", "m.wasm"]).is_err());
        assert_eq!(args.module_and_args(), (PathBuf::from("m.wasm"), vec![]));
        assert!(run_args(&["--memory", "lots", "m.wasm"]).is_err());
        assert!(run_args(&["--memory", "0", "m.wasm"]).is_err());
        assert!(run_args(&["--fuel", "0", "m.wasm"]).is_err());
        assert!(run_args(&["--vcpus", "0", "m.wasm"]).is_err());
        assert_eq!(run_args(&["--ram", "1GiB", "m.wasm"]).unwrap().ram, 1 << 30);
        assert!(run_args(&[]).is_err(), "MODULE is required");
    }

    #[test]
    fn options_before_the_module_belong_to_halcyon() {
        let args = run_args(&[
            "-v", "--env", "A=1", "--env", "HOME", "--argv0", "prog", "--timeout", "2.5", "--log", "k.log",
            "--platform", "tdx", "--qemu", "/q", "--image", "/i", "m.wasm", "--env", "B=2",
        ])
        .unwrap();
        assert!(args.verbose);
        assert_eq!(args.env, ["A=1", "HOME"]);
        assert_eq!(args.argv0.as_deref(), Some("prog"));
        assert_eq!(args.timeout, Some(2.5));
        assert_eq!(args.log, Some(PathBuf::from("k.log")));
        assert!(matches!(args.platform, qemu::Platform::Tdx));
        assert_eq!(args.qemu, PathBuf::from("/q"));
        assert_eq!(args.image, Some(PathBuf::from("/i")));
        assert_eq!(args.module_and_args().1, ["--env", "B=2"]);
        // Flags halcyon knows go to the workload once MODULE is given.
        let args = run_args(&["m.wasm", "-v", "--fuel", "3"]).unwrap();
        assert!(!args.verbose);
        assert_eq!(args.fuel, None);
        assert_eq!(args.module_and_args().1, ["-v", "--fuel", "3"]);
        // `--` before MODULE ends halcyon's options; after it, it is the workload's.
        assert_eq!(run_args(&["--", "m.wasm", "x"]).unwrap().module_and_args().1, ["x"]);
        assert_eq!(run_args(&["m.wasm", "--", "x"]).unwrap().module_and_args().1, ["--", "x"]);
    }

    #[test]
    fn unsupported_platforms_and_commands_say_so() {
        // A confidential platform is never faked with a plain boot.
        let args = run_args(&["--platform", "snp", "--boot", "pvh", "m.wasm"]).unwrap();
        assert!(run(args).unwrap_err().to_string().contains("firmware image only"));
        assert!(run_args(&["--platform", "sev", "m.wasm"]).is_err());
        let args = run_args(&["--timeout", "0", "m.wasm"]).unwrap();
        assert!(run(args).unwrap_err().to_string().contains("--timeout"));
        let args = run_args(&["--ram", "1MiB", "m.wasm"]).unwrap();
        assert!(run(args).unwrap_err().to_string().contains("at least 4 MiB"));
        assert!(Cli::try_parse_from(["halcyon", "deploy"]).is_ok());
    }

    #[test]
    fn measure_arguments() {
        let cli = Cli::try_parse_from(["halcyon", "measure", "--platform", "snp", "--vcpus", "4", "--vcpu-type", "EPYC-Milan", "fw.fd"]).unwrap();
        let Command::Measure { platform, vcpus, vcpu_type, firmware } = cli.command else { panic!() };
        assert_eq!(platform, measure::MeasurePlatform::Snp);
        assert_eq!((vcpus, vcpu_type.as_deref(), firmware), (Some(4), Some("EPYC-Milan"), Some(PathBuf::from("fw.fd"))));
        let cli = Cli::try_parse_from(["halcyon", "measure", "--platform", "tdx"]).unwrap();
        assert!(matches!(cli.command, Command::Measure { platform: measure::MeasurePlatform::Tdx, vcpus: None, .. }));
        assert!(Cli::try_parse_from(["halcyon", "measure"]).is_err(), "--platform is required");
        assert!(Cli::try_parse_from(["halcyon", "measure", "--platform", "sev"]).is_err());
        assert!(Cli::try_parse_from(["halcyon", "measure", "--platform", "snp", "--vcpus", "0"]).is_err());
    }

    #[test]
    fn verify_arguments() {
        let cli = Cli::try_parse_from([
            "halcyon", "verify", "--platform", "tdx", "q.bin", "--collateral", "c.json", "--report-data", "ab",
            "--event-log", "log.txt", "--tcb-status", "UpToDate,SWHardeningNeeded", "--now", "5",
        ])
        .unwrap();
        let Command::Verify(args) = cli.command else { panic!() };
        assert!(matches!(args.platform, EvidencePlatform::Tdx));
        assert_eq!(args.evidence, PathBuf::from("q.bin"));
        assert_eq!(args.tcb_status, ["UpToDate", "SWHardeningNeeded"]);
        assert_eq!((args.now, args.allow_debug), (Some(5), false));
        let cli = Cli::try_parse_from(["halcyon", "verify", "--platform", "snp", "r.bin", "--vcek", "v.der"]).unwrap();
        let Command::Verify(args) = cli.command else { panic!() };
        assert_eq!(args.tcb_status, ["UpToDate"]);
        assert!(args.policy.is_none() && args.expected_measurement.is_none());
        assert!(Cli::try_parse_from(["halcyon", "verify", "r.bin"]).is_err(), "--platform is required");
        assert!(Cli::try_parse_from(["halcyon", "verify", "--platform", "plain", "r.bin"]).is_err());
        assert!(Cli::try_parse_from(["halcyon", "verify", "--platform", "snp"]).is_err(), "EVIDENCE is required");
    }

    /// `halcyon verify` end to end on the published vectors (see `verify::testdata`).
    #[test]
    fn verify_command_on_published_evidence() {
        use verify::testdata::{package_dir, DCAP_QVL, SEV};
        let (Some(sev), Some(dcap)) = (package_dir(SEV), package_dir(DCAP_QVL)) else { return };
        let run = |argv: &[String]| {
            let cli = Cli::try_parse_from(["halcyon", "verify"].iter().map(|s| s.to_string()).chain(argv.iter().cloned())).unwrap();
            let Command::Verify(args) = cli.command else { panic!() };
            verify_evidence(args)
        };
        let path = |dir: &std::path::Path, file: &str| dir.join(file).display().to_string();
        let snp = |extra: &[&str]| {
            let mut argv = vec![
                "--platform".to_string(), "snp".into(), path(&sev, "tests/certs_data/report_milan.hex"),
                "--vcek".into(), path(&sev, "tests/certs_data/vcek_milan.der"), "--now".into(), "1735689600".into(),
            ];
            argv.extend(extra.iter().map(|s| s.to_string()));
            run(&argv)
        };
        assert_eq!(snp(&["--report-data", "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd"]).unwrap(), 0);
        let e = snp(&["--expected-measurement", &"00".repeat(48)]).unwrap_err().to_string();
        assert!(e.starts_with("verification failed: measurement is 7a1e5c26"), "{e}");
        assert!(snp(&["--policy", "no-smt"]).unwrap_err().to_string().contains("sets SMT"));
        assert!(snp(&["--event-log", "/nonexistent"]).is_err());
        let tdx = |extra: &[&str]| {
            let mut argv = vec![
                "--platform".to_string(), "tdx".into(), path(&dcap, "sample/tdx_quote"),
                "--collateral".into(), path(&dcap, "sample/tdx_quote_collateral.json"), "--now".into(), "1750329147".into(),
            ];
            argv.extend(extra.iter().map(|s| s.to_string()));
            run(&argv)
        };
        assert_eq!(tdx(&[]).unwrap(), 0);
        let rtmr0 = "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0";
        assert_eq!(tdx(&["--rtmr", &format!("0={rtmr0}"), "--rtmr", &format!("3={}", "00".repeat(48))]).unwrap(), 0);
        let e = tdx(&["--rtmr", &format!("3={rtmr0}")]).unwrap_err().to_string();
        assert!(e.contains("RTMR3 is 0000"), "{e}");
        assert!(snp(&["--rtmr", &format!("0={rtmr0}")]).is_err());
        let e = tdx(&["--tcb-status", "OutOfDate"]).unwrap_err().to_string();
        assert!(e.contains("TCB status is UpToDate"), "{e}");
        let log = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(log.path(), "workload hello sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n").unwrap();
        let e = tdx(&["--event-log", &log.path().display().to_string()]).unwrap_err().to_string();
        assert!(e.contains("RTMR1 is 0084452c"), "{e}");
        std::fs::write(log.path(), "firmware x sha256:00\n").unwrap();
        let e = tdx(&["--event-log", &log.path().display().to_string()]).unwrap_err();
        assert!(format!("{e:#}").contains("line 1: kind is not"), "{e:#}");
        // Without --vcek / --collateral.
        assert!(run(&["--platform".into(), "snp".into(), path(&sev, "tests/certs_data/report_milan.hex")]).is_err());
        assert!(run(&["--platform".into(), "tdx".into(), path(&dcap, "sample/tdx_quote")]).is_err());
    }

    #[test]
    fn bundle_and_build_arguments() {
        let cli = Cli::try_parse_from(["halcyon", "bundle", "-o", "b.hcb", "a.wasm", "b.wasm"]).unwrap();
        let Command::Bundle { output, inputs } = cli.command else { panic!() };
        assert_eq!(output, PathBuf::from("b.hcb"));
        assert_eq!(inputs.len(), 2);
        assert!(Cli::try_parse_from(["halcyon", "bundle", "a.wasm"]).is_err(), "--output is required");
        assert!(Cli::try_parse_from(["halcyon", "bundle", "-o", "b"]).is_err(), "inputs are required");
        let cli = Cli::try_parse_from(["halcyon", "build"]).unwrap();
        assert!(matches!(cli.command, Command::Build { kernel: None, output: None }));
    }
}
