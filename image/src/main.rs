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
    /// Verify attestation evidence against an expected measurement (not implemented yet)
    Verify,
    /// Attest a running Halcyon VM and send it a workload (not implemented yet)
    Deploy,
}

#[derive(Clone, Copy, ValueEnum)]
enum Platform {
    /// A plain VM (no memory encryption)
    Plain,
    /// AMD SEV-SNP (not supported yet)
    Snp,
    /// Intel TDX (not supported yet)
    Tdx,
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
    /// How QEMU runs the guest: tcg (emulation, works everywhere) or kvm
    #[arg(long, value_enum, default_value = "tcg")]
    accel: qemu::Accel,
    /// The image to boot [default: target/halcyon/halcyon.elf]
    #[arg(long, value_name = "PATH", env = "HALCYON_IMAGE")]
    image: Option<PathBuf>,
    /// How QEMU starts the kernel: pvh (`-kernel` the image) or firmware (`-bios` its `.fd`
    /// form; boot data through fw_cfg)
    #[arg(long, value_enum, default_value = "pvh")]
    boot: qemu::Boot,
    /// The QEMU binary
    #[arg(long, value_name = "PATH", env = "HALCYON_QEMU", default_value = "qemu-system-x86_64")]
    qemu: PathBuf,
    /// Show the kernel log on stderr
    #[arg(short, long)]
    verbose: bool,
    /// Write the kernel log to this file
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Which kind of VM to launch
    #[arg(long, value_enum, default_value = "plain")]
    platform: Platform,
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

fn run(args: RunArgs) -> anyhow::Result<i32> {
    match args.platform {
        Platform::Plain => {}
        Platform::Snp | Platform::Tdx => anyhow::bail!(
            "--platform snp and --platform tdx are not supported yet: Halcyon boots as a plain VM only (see README, Status)"
        ),
    }
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
        accel: args.accel,
        image: args.image,
        boot: args.boot,
        qemu: args.qemu,
        verbose: args.verbose,
        log: args.log,
        timeout,
        tcp_listen,
        inherit_network,
        kernel_cmdline,
    })
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
        Command::Verify | Command::Deploy => {
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
        assert!(matches!(args.platform, Platform::Plain));
        assert_eq!(args.boot, qemu::Boot::Pvh);
        assert_eq!(run_args(&["--boot", "firmware", "m.wasm"]).unwrap().boot, qemu::Boot::Firmware);
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
        assert!(matches!(args.platform, Platform::Tdx));
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
        let args = run_args(&["--platform", "snp", "m.wasm"]).unwrap();
        assert!(run(args).unwrap_err().to_string().contains("not supported yet"));
        assert!(run_args(&["--platform", "sev", "m.wasm"]).is_err());
        let args = run_args(&["--timeout", "0", "m.wasm"]).unwrap();
        assert!(run(args).unwrap_err().to_string().contains("--timeout"));
        let args = run_args(&["--ram", "1MiB", "m.wasm"]).unwrap();
        assert!(run(args).unwrap_err().to_string().contains("at least 4 MiB"));
        for command in ["verify", "deploy"] {
            assert!(Cli::try_parse_from(["halcyon", command]).is_ok());
        }
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
