//! Putting the QEMU command line together: the launch configuration from `qemu/` plus
//! what this run needs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The plain-VM launch configuration, compiled in so the documented file and the code
/// that uses it cannot drift apart.
const PLAIN_ARGS: &str = include_str!("../../qemu/plain.args");
/// The SEV-SNP launch configuration, compiled in likewise.
const SNP_ARGS: &str = include_str!("../../qemu/snp.args");
/// The TDX launch configuration, compiled in likewise.
const TDX_ARGS: &str = include_str!("../../qemu/tdx.args");
/// Replaced in a launch configuration by the guest RAM size (as given to `-m`).
const RAM_PLACEHOLDER: &str = "${RAM}";

/// Which kind of VM `halcyon run` launches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// A plain VM (no memory encryption): qemu/plain.args
    Plain,
    /// An AMD SEV-SNP guest (needs an SNP host; firmware boot, KVM): qemu/snp.args
    Snp,
    /// An Intel TDX trust domain (needs a TDX host; firmware boot, KVM): qemu/tdx.args
    Tdx,
}

impl Platform {
    /// Confidential guests boot only from the measured firmware image, under KVM.
    pub fn is_confidential(self) -> bool {
        self != Platform::Plain
    }

    /// The launch configuration's text.
    pub fn launch_config(self) -> &'static str {
        match self {
            Platform::Plain => PLAIN_ARGS,
            Platform::Snp => SNP_ARGS,
            Platform::Tdx => TDX_ARGS,
        }
    }
}

/// The least guest RAM `halcyon run` accepts. Below about 2 MiB the image does not fit
/// (QEMU then hangs or the guest triple-faults); 4 MiB runs a small module.
pub const MIN_RAM_BYTES: u64 = 4 << 20;

/// Where the kernel log goes.
pub enum KernelLog {
    /// Appended to the file (or device) at this path.
    File(PathBuf),
}

/// How QEMU starts the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Boot {
    /// `-kernel halcyon.elf`: QEMU's PVH loader enters the kernel with a start info
    /// (bundle as `-initrd`, command line as `-append`)
    Pvh,
    /// `-bios halcyon.fd`: the CPU starts at the firmware's reset vector, and the kernel reads
    /// the memory map, bundle and command line from fw_cfg
    Firmware,
}

/// The fw_cfg file the firmware boot reads the bundle from (`halcyon_boot::fw_cfg::BUNDLE_FILE`).
const FW_CFG_BUNDLE: &str = halcyon_boot::fw_cfg::BUNDLE_FILE;
/// The fw_cfg file the firmware boot reads the command line from.
const FW_CFG_CMDLINE: &str = halcyon_boot::fw_cfg::CMDLINE_FILE;

/// A value for QEMU's option syntax, where a comma ends the value unless doubled.
fn option_value(value: &std::ffi::OsStr) -> OsString {
    let text = value.to_string_lossy();
    OsString::from(text.replace(',', ",,"))
}

pub struct VmConfig<'a> {
    pub platform: Platform,
    /// The launch configuration ([`Platform::launch_config`]).
    pub launch: &'a str,
    /// The PVH ELF (`Boot::Pvh`) or the firmware (`Boot::Firmware`).
    pub image: &'a Path,
    pub boot: Boot,
    pub bundle: &'a Path,
    pub ram_bytes: u64,
    pub vcpus: u32,
    pub accel: Accel,
    pub kernel_log: KernelLog,
    /// A virtio-net card on QEMU's user-mode network, when the workload may use it.
    pub network: Option<&'a NetworkConfig>,
    /// Words for the kernel command line (`-append`).
    pub kernel_cmdline: &'a [String],
}

/// The guest's network: a virtio-net card behind QEMU's user-mode NAT (the guest is
/// 10.0.2.15, the host is reachable as 10.0.2.2, name service at 10.0.2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Host addresses forwarded to the same port in the guest (`--tcplisten`).
    pub tcp_forwards: Vec<std::net::SocketAddr>,
}

impl NetworkConfig {
    fn netdev(&self) -> String {
        let mut netdev = String::from("user,id=halcyon-net");
        for host in &self.tcp_forwards {
            netdev.push_str(&format!(",hostfwd=tcp:{}:{}-:{}", host.ip(), host.port(), host.port()));
        }
        netdev
    }
}

fn base_args(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// How QEMU executes the guest. TCG (emulation) works everywhere; KVM needs a usable
/// /dev/kvm, which an open() test cannot establish (nested setups open it and then fail),
/// so it is the user's explicit choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    Tcg,
    Kvm,
}

pub fn args(config: &VmConfig<'_>) -> Vec<OsString> {
    // QEMU takes a suffix-less -m as MiB; round up so small sizes are not lost.
    let ram = format!("{}M", config.ram_bytes.div_ceil(1 << 20));
    let mut args: Vec<OsString> = base_args(config.launch)
        .map(|arg| arg.replace(RAM_PLACEHOLDER, &ram))
        .map(|arg| match (config.network, arg.starts_with("microvm,")) {
            // The card sits on microvm's PCIe host bridge, which exists only when asked
            // for (without it the kernel does not look for PCI at all).
            (Some(_), true) => OsString::from(format!("{arg},pcie=on")),
            _ => OsString::from(arg),
        })
        .collect();
    if let Some(network) = config.network {
        args.extend(["-netdev", &network.netdev()].map(OsString::from));
        // `romfile=`: the card's boot ROM is for firmware, which microvm does not run.
        args.extend(["-device", "virtio-net-pci,netdev=halcyon-net,romfile="].map(OsString::from));
    }
    if !config.kernel_cmdline.is_empty() {
        let cmdline = config.kernel_cmdline.join(" ");
        match config.boot {
            Boot::Pvh => args.extend(["-append".into(), cmdline.into()]),
            Boot::Firmware => args.extend([
                "-fw_cfg".into(),
                format!("name={FW_CFG_CMDLINE},string={}", cmdline.replace(',', ",,")).into(),
            ]),
        }
    }
    let mut push = |a: &str| args.push(OsString::from(a));
    match config.accel {
        Accel::Tcg => push("-accel"),
        // Under KVM the guest sees the host CPU (RDRAND included); `max` adds features
        // KVM cannot always provide. A confidential guest keeps its configuration's CPU
        // model: the launch measurement depends on it.
        Accel::Kvm if config.platform.is_confidential() => push("-accel"),
        Accel::Kvm => {
            push("-cpu");
            push("host");
            push("-accel");
        }
    }
    push(match config.accel {
        Accel::Tcg => "tcg",
        Accel::Kvm => "kvm",
    });
    push("-m");
    push(&ram);
    push("-smp");
    push(&config.vcpus.to_string());
    push("-chardev");
    push("stdio,id=halcyon-channel,signal=off");
    let KernelLog::File(path) = &config.kernel_log;
    let mut log = OsString::from("file,id=halcyon-log,append=on,path=");
    log.push(path.as_os_str());
    args.push(OsString::from("-chardev"));
    args.push(log);
    match config.boot {
        Boot::Pvh => {
            args.push(OsString::from("-kernel"));
            args.push(config.image.as_os_str().to_owned());
            args.push(OsString::from("-initrd"));
            args.push(config.bundle.as_os_str().to_owned());
        }
        Boot::Firmware => {
            args.push(OsString::from("-bios"));
            args.push(config.image.as_os_str().to_owned());
            args.push(OsString::from("-fw_cfg"));
            let mut bundle = OsString::from(format!("name={FW_CFG_BUNDLE},file="));
            bundle.push(option_value(config.bundle.as_os_str()));
            args.push(bundle);
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_configuration_parses() {
        let args: Vec<&str> = base_args(PLAIN_ARGS).collect();
        assert!(args.windows(2).any(|w| w == ["-cpu", "max"]));
        assert!(args.iter().any(|a| a.starts_with("isa-debug-exit,iobase=0xf4")));
        assert!(args.iter().any(|a| a.contains("chardev=halcyon-channel")));
        assert!(args.iter().all(|a| !a.starts_with('#')));
    }

    #[test]
    fn run_arguments() {
        let config = VmConfig {
            platform: Platform::Plain,
            launch: PLAIN_ARGS,
            image: Path::new("/img"),
            boot: Boot::Pvh,
            bundle: Path::new("/b"),
            ram_bytes: (48 << 20) + 1,
            vcpus: 2,
            accel: Accel::Tcg,
            kernel_log: KernelLog::File(PathBuf::from("/log")),
            network: None,
            kernel_cmdline: &[],
        };
        let args: Vec<String> = args(&config).into_iter().map(|a| a.into_string().unwrap()).collect();
        assert!(args.windows(2).any(|w| w == ["-m", "49M"]));
        assert!(args.windows(2).any(|w| w == ["-kernel", "/img"]));
        assert!(args.windows(2).any(|w| w == ["-initrd", "/b"]));
        assert!(!args.iter().any(|a| a.contains("pcie=on") || a == "-netdev" || a == "-append"));
        assert!(args.iter().any(|a| a == "file,id=halcyon-log,append=on,path=/log"));
    }

    #[test]
    fn network_arguments() {
        let network = NetworkConfig { tcp_forwards: vec!["127.0.0.1:8080".parse().unwrap()] };
        let cmdline = ["net.dns=10.0.2.2".to_string()];
        let config = VmConfig {
            platform: Platform::Plain,
            launch: PLAIN_ARGS,
            image: Path::new("/img"),
            boot: Boot::Pvh,
            bundle: Path::new("/b"),
            ram_bytes: 64 << 20,
            vcpus: 1,
            accel: Accel::Tcg,
            kernel_log: KernelLog::File(PathBuf::from("/log")),
            network: Some(&network),
            kernel_cmdline: &cmdline,
        };
        let args: Vec<String> = args(&config).into_iter().map(|a| a.into_string().unwrap()).collect();
        assert!(args.iter().any(|a| a.starts_with("microvm,") && a.ends_with(",pcie=on")));
        assert!(args.windows(2).any(|w| w == ["-netdev", "user,id=halcyon-net,hostfwd=tcp:127.0.0.1:8080-:8080"]));
        assert!(args.windows(2).any(|w| w == ["-device", "virtio-net-pci,netdev=halcyon-net,romfile="]));
        assert!(args.windows(2).any(|w| w == ["-append", "net.dns=10.0.2.2"]));
    }

    #[test]
    fn snp_arguments() {
        let launch = Platform::Snp.launch_config();
        let config = VmConfig {
            platform: Platform::Snp,
            launch,
            image: Path::new("/t/halcyon.fd"),
            boot: Boot::Firmware,
            bundle: Path::new("/b.hcb"),
            ram_bytes: 96 << 20,
            vcpus: 2,
            accel: Accel::Kvm,
            kernel_log: KernelLog::File(PathBuf::from("/log")),
            network: None,
            kernel_cmdline: &[],
        };
        let args: Vec<String> = args(&config).into_iter().map(|a| a.into_string().unwrap()).collect();
        let pair = |a: &str, b: &str| args.windows(2).any(|w| w == [a, b]);
        assert!(pair("-machine", "q35,confidential-guest-support=sev0,memory-backend=ram1"));
        // The shared memory backend has exactly the guest's RAM.
        assert!(pair("-object", "memory-backend-memfd,id=ram1,size=96M,share=true,reserve=false"));
        assert!(pair("-m", "96M"));
        assert!(pair("-object", "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1"));
        assert!(pair("-bios", "/t/halcyon.fd"));
        assert!(pair("-accel", "kvm"));
        // The measured CPU model stays; no -kernel (an SNP guest boots from the firmware only).
        assert!(pair("-cpu", "EPYC-v4"));
        assert!(!args.iter().any(|a| a == "host" || a == "-kernel" || a == "-initrd" || a == "-append" || a.contains("${")));
        assert!(pair("-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"));
        assert!(pair("-fw_cfg", "name=opt/halcyon/bundle,file=/b.hcb"));
    }

    #[test]
    fn tdx_launch_configuration() {
        let launch = Platform::Tdx.launch_config();
        let lines: Vec<&str> = launch.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
        let pair = |a: &str, b: &str| lines.windows(2).any(|w| w == [a, b]);
        assert!(pair("-M", "q35,kernel-irqchip=split,confidential-guest-support=tdx0"), "{lines:?}");
        assert!(pair("-object", "tdx-guest,id=tdx0"));
        assert!(pair("-device", "isa-debugcon,iobase=0xe9,chardev=halcyon-channel"));
        // halcyon adds these itself: a TD boots from the firmware only.
        assert!(!lines.iter().any(|a| ["-kernel", "-bios", "-accel", "-m", "-smp"].contains(a)));
        assert_eq!(Platform::Plain.launch_config(), PLAIN_ARGS);
    }

    #[test]
    fn firmware_boot_arguments() {
        let cmdline = ["virtio.bounce=on".to_string(), "a,b".to_string()];
        let config = VmConfig {
            platform: Platform::Plain,
            launch: PLAIN_ARGS,
            image: Path::new("/t/halcyon.fd"),
            boot: Boot::Firmware,
            bundle: Path::new("/tmp/x,y/b.hcb"),
            ram_bytes: 64 << 20,
            vcpus: 1,
            accel: Accel::Tcg,
            kernel_log: KernelLog::File(PathBuf::from("/log")),
            network: None,
            kernel_cmdline: &cmdline,
        };
        let args: Vec<String> = args(&config).into_iter().map(|a| a.into_string().unwrap()).collect();
        assert!(args.windows(2).any(|w| w == ["-bios", "/t/halcyon.fd"]));
        assert!(args.windows(2).any(|w| w == ["-fw_cfg", "name=opt/halcyon/bundle,file=/tmp/x,,y/b.hcb"]));
        assert!(args.windows(2).any(|w| w == ["-fw_cfg", "name=opt/halcyon/cmdline,string=virtio.bounce=on a,,b"]));
        assert!(!args.iter().any(|a| a == "-kernel" || a == "-initrd" || a == "-append"));
    }
}
