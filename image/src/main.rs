//! `halcyon`: the host side of Halcyon. Builds the bootable image and runs WebAssembly
//! workloads in it under QEMU, the way `wasmtime run` runs them on the host.
#![deny(unsafe_code)]

mod build_cmd;
mod bundle_cmd;
mod elf_image;
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
    /// Check the kernel and write the bootable image
    Build {
        /// Kernel ELF to package [default: target/x86_64-unknown-none/kernel/halcyon-kernel]
        #[arg(long, value_name = "PATH")]
        kernel: Option<PathBuf>,
        /// Where to write the image [default: target/halcyon/halcyon.elf]
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Run a WebAssembly module (or a bundle of them) in a Halcyon VM
    Run(RunArgs),
    /// Pack several workloads into one bundle for a single boot
    Bundle {
        /// Where to write the bundle
        #[arg(short, long, value_name = "PATH")]
        output: PathBuf,
        /// A manifest (`*.toml`, see README) or one or more `.wasm` modules
        #[arg(required = true, value_name = "MANIFEST|MODULE")]
        inputs: Vec<PathBuf>,
    },
    /// Print the expected launch measurement of an image (not implemented yet)
    Measure,
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
struct RunArgs {
    /// Pass an environment variable to the workload (NAME=VALUE, or NAME to inherit it)
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// argv[0] for the workload [default: the module's file name]
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,
    /// Stop the workload after this much fuel (about one unit per wasm instruction)
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Limit the workload's linear memory (e.g. 64KiB, 16MiB)
    #[arg(long, value_name = "SIZE", value_parser = size::parse_size)]
    memory: Option<u64>,
    /// Guest RAM
    #[arg(long, value_name = "SIZE", value_parser = size::parse_size, default_value = "64MiB")]
    ram: u64,
    /// Number of vCPUs
    #[arg(long, value_name = "N", default_value_t = 1)]
    vcpus: u32,
    /// How QEMU runs the guest: tcg (emulation, works everywhere) or kvm
    #[arg(long, value_enum, default_value = "tcg")]
    accel: qemu::Accel,
    /// The image to boot [default: target/halcyon/halcyon.elf]
    #[arg(long, value_name = "PATH", env = "HALCYON_IMAGE")]
    image: Option<PathBuf>,
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
    /// The module (.wasm) or bundle to run
    #[arg(value_name = "MODULE")]
    module: PathBuf,
    /// Arguments passed to the workload
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    args: Vec<String>,
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    match args.platform {
        Platform::Plain => {}
        Platform::Snp | Platform::Tdx => anyhow::bail!(
            "--platform snp and --platform tdx are not supported yet: Halcyon boots as a plain VM only (see README, Status)"
        ),
    }
    let timeout = match args.timeout {
        Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
        Some(_) => anyhow::bail!("--timeout takes a positive number of seconds"),
        None => None,
    };
    run::run(run::RunOptions {
        module: args.module,
        args: args.args,
        env: args.env,
        argv0: args.argv0,
        fuel: args.fuel,
        memory: args.memory,
        ram: args.ram,
        vcpus: args.vcpus,
        accel: args.accel,
        image: args.image,
        qemu: args.qemu,
        verbose: args.verbose,
        log: args.log,
        timeout,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build { kernel, output } => build_cmd::build(kernel, output).map(|()| 0),
        Command::Run(args) => run(args),
        Command::Bundle { output, inputs } => bundle_cmd::bundle(&output, &inputs).map(|()| 0),
        Command::Measure | Command::Verify | Command::Deploy => {
            eprintln!("halcyon: this command is not implemented yet (it arrives with the SEV-SNP and TDX support)");
            return ExitCode::from(2);
        }
    };
    match result {
        // Exit statuses are 8 bits on Unix; the workload's own code is truncated the same way.
        Ok(code) => ExitCode::from(code as u8),
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
        assert_eq!(args.module, PathBuf::from("m.wasm"));
        assert_eq!(args.args, vec!["--exit", "3", "-v"]);
        assert!(!args.verbose);
    }

    #[test]
    fn sizes_and_defaults() {
        let cli = Cli::try_parse_from(["halcyon", "run", "--memory", "16MiB", "m.wasm"]).unwrap();
        let Command::Run(args) = cli.command else { panic!() };
        assert_eq!(args.memory, Some(16 << 20));
        assert_eq!(args.ram, 64 << 20);
        assert!(Cli::try_parse_from(["halcyon", "run", "--memory", "lots", "m.wasm"]).is_err());
    }
}
