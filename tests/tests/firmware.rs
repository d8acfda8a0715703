//! The firmware image (`target/halcyon/halcyon.fd`): its OVMF table and SEV/TDVF metadata read
//! as QEMU reads them and agree with the layout description, its contents are the kernel's,
//! `halcyon measure` measures it, and it boots a workload with `-bios` (`--boot firmware`).
mod common;
use common::*;
use halcyon_boot::firmware_layout::{
    FirmwareLayout, ResetVectorTargets, FIRMWARE_SIZE_ALIGN, PT_HALCYON_RESET_CODE, PT_HALCYON_RESET_VECTOR,
    RESET_CODE_GPA, RESET_CODE_MAX, RESET_VECTOR_GPA, SNP_CPUID_PAGE_GPA, SNP_SECRETS_PAGE_GPA, TD_HOB_GPA,
};
use halcyon_boot::ovmf::sev::SevSectionType;
use halcyon_boot::ovmf::tdvf::TdvfSectionType;
use halcyon_boot::ovmf::Firmware;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::Endianness;
use std::path::PathBuf;
use std::process::Command;

fn firmware_path() -> PathBuf {
    let path = root().join("target/halcyon/halcyon.fd");
    assert!(path.exists(), "{} is missing: run `make image`", path.display());
    path
}

#[test]
fn firmware_metadata_reads_as_qemu_reads_it() {
    let image = std::fs::read(firmware_path()).unwrap();
    let elf_bytes = std::fs::read(image_path()).unwrap();
    let fw = Firmware::parse(&image).expect("OVMF table, SEV and TDVF metadata parse");
    let (layout, descriptor) = FirmwareLayout::read(&image).expect("payload descriptor");

    // QEMU's -bios rules: a multiple of 64 KiB, mapped to end at 4 GiB.
    assert_eq!(image.len() as u64 % FIRMWARE_SIZE_ALIGN, 0);
    assert_eq!(fw.base_gpa(), Some(u64::from(layout.base_gpa())));
    // Every block is there and says what the layout description says.
    let sev: Vec<_> = fw.sev_metadata.expect("SEV metadata").sections().collect();
    assert_eq!(sev, layout.sev_sections());
    assert_eq!(
        sev.iter().map(|s| (s.base, s.section_type)).collect::<Vec<_>>(),
        [
            (descriptor.destination.get(), SevSectionType::SnpSecMem),
            (SNP_SECRETS_PAGE_GPA, SevSectionType::SnpSecrets),
            (SNP_CPUID_PAGE_GPA, SevSectionType::Cpuid)
        ]
    );
    let tdvf: Vec<_> = fw.tdvf.expect("TDVF metadata").sections().collect();
    assert_eq!(tdvf, layout.tdvf_sections());
    assert_eq!(tdvf[0].section_type, TdvfSectionType::Bfv);
    assert_eq!((tdvf[0].data_offset, tdvf[0].raw_data_size as usize), (0, image.len()));
    assert!(tdvf[0].attributes.mr_extend());
    assert_eq!((tdvf[2].section_type, tdvf[2].memory_address), (TdvfSectionType::TdHob, u64::from(TD_HOB_GPA)));
    assert_eq!(fw.sev_es_reset_block.expect("SEV-ES reset block").reset_addr(), RESET_CODE_GPA);

    // The contents are the kernel's: its PT_LOAD segments flat from the lowest link address,
    // its reset code and vector where the CPU fetches them (read here with `object`, not the
    // builder's code).
    let elf = ElfFile64::<Endianness>::parse(elf_bytes.as_slice()).unwrap();
    let endian = elf.endian();
    let base = u64::from(layout.base_gpa());
    let mut lowest = u64::MAX;
    let mut reset_segments = 0;
    for ph in elf.elf_program_headers() {
        let data = ph.data(endian, elf_bytes.as_slice()).unwrap();
        let paddr = ph.p_paddr(endian);
        match ph.p_type(endian) {
            object::elf::PT_LOAD => lowest = lowest.min(paddr),
            PT_HALCYON_RESET_CODE => {
                assert_eq!(paddr, u64::from(RESET_CODE_GPA));
                let at = (paddr - base) as usize;
                assert_eq!(&image[at..at + data.len()], data, "reset code");
                reset_segments += 1;
            }
            PT_HALCYON_RESET_VECTOR => {
                assert_eq!(paddr, u64::from(RESET_VECTOR_GPA));
                assert_eq!(&image[image.len() - 16..], data, "reset vector");
                reset_segments += 1;
            }
            _ => {}
        }
    }
    assert_eq!(reset_segments, 2);
    assert_eq!(u64::from(descriptor.destination.get()), lowest);
    for ph in elf.elf_program_headers().iter().filter(|ph| ph.p_type(endian) == object::elf::PT_LOAD) {
        let data = ph.data(endian, elf_bytes.as_slice()).unwrap();
        let at = (ph.p_paddr(endian) - lowest) as usize;
        assert_eq!(&image[at..at + data.len()], data, "PT_LOAD at {:#x}", ph.p_paddr(endian));
    }
    // The reset vector decodes in both modes: real mode reaches the reset code's start, 32-bit
    // protected mode (a TD) a place inside the reset code.
    let targets = ResetVectorTargets::decode(&image[image.len() - 16..]).expect("dual-mode reset vector");
    assert_eq!(targets.real_mode, RESET_CODE_GPA);
    assert!(targets.inside_reset_code(RESET_CODE_MAX), "{targets:x?}");
}

/// `objdump -D -b binary -m <machine>` of `bytes` loaded at `vma`: one normalised
/// "address: instruction" line per instruction (`None` without binutils).
fn disassemble(bytes: &[u8], machine: &str, vma: u64) -> Option<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("halcyon-objdump-{}-{machine}-{vma:x}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("code.bin");
    std::fs::write(&file, bytes).unwrap();
    let output = Command::new("objdump")
        .args(["-D", "-b", "binary", "-m", machine, &format!("--adjust-vma={vma:#x}")])
        .arg(&file)
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    // "    fff0:\t0f 20 c0             \tmov    %cr0,%eax" -> "fff0: mov %cr0,%eax"
    Some(
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split('\t');
                let address = parts.next()?.trim().strip_suffix(':')?;
                let instruction = parts.nth(1)?.split_whitespace().collect::<Vec<_>>().join(" ");
                Some(format!("{address}: {instruction}"))
            })
            .collect(),
    )
}

/// The TD entry needs the vector to work in 32-bit protected mode too (every vCPU of a TD starts
/// there with CR0.PE set): binutils decodes the image's bytes in both modes as the design says.
#[test]
fn the_reset_vector_means_the_same_in_real_and_protected_mode() {
    let image = std::fs::read(firmware_path()).unwrap();
    let vector = &image[image.len() - 16..];
    let Some(real) = disassemble(vector, "i8086", 0xfff0) else {
        eprintln!("objdump not found: the byte-table check in firmware_metadata_reads_as_qemu_reads_it still ran");
        return;
    };
    assert_eq!(real[..3], ["fff0: mov %cr0,%eax", "fff3: test $0x1,%al", "fff5: je 0xfffc"], "{real:#?}");
    // Real mode takes the branch: the near jump at +12, decoded on its own.
    let jump = disassemble(&vector[12..15], "i8086", 0xfffc).unwrap();
    assert_eq!(jump, [format!("fffc: jmp {:#x}", RESET_CODE_GPA & 0xffff)]);

    let protected = disassemble(vector, "i386", u64::from(RESET_VECTOR_GPA)).unwrap();
    let targets = ResetVectorTargets::decode(vector).unwrap();
    assert_eq!(
        protected[..4],
        [
            "fffffff0: mov %cr0,%eax".to_string(),
            "fffffff3: test $0x1,%al".into(),
            "fffffff5: je 0xfffffffc".into(),
            format!("fffffff7: jmp {:#x}", targets.protected_mode),
        ],
        "{protected:#?}"
    );
    // The TD entry starts with CLI, CLD and the CPUID leaf 21h check, in 32-bit code.
    let code_at = image.len() - (RESET_VECTOR_GPA - targets.protected_mode) as usize - 16;
    let td_entry = disassemble(&image[code_at..code_at + 16], "i386", u64::from(targets.protected_mode)).unwrap();
    let ops: Vec<&str> = td_entry.iter().map(|l| l.split_once(": ").unwrap().1).collect();
    assert_eq!(ops[..4], ["cli", "cld", "mov $0x21,%eax", "xor %ecx,%ecx"], "{td_entry:#?}");
}

fn image_path() -> PathBuf {
    image()
}

fn measure(platform: &str, extra: &[&str]) -> String {
    let mut args = vec!["measure", "--platform", platform];
    args.extend_from_slice(extra);
    let output = halcyon(&args).output().unwrap();
    assert_exit(&output, 0);
    let digest = stdout(&output).trim().to_string();
    assert_eq!(digest.len(), 96, "{digest}");
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()), "{digest}");
    digest
}

/// `sev-snp-measure` (PyPI; `.ci/ensure-tools` installs it): `$SEV_SNP_MEASURE`, `PATH`, `~/.local/bin`.
fn sev_snp_measure() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SEV_SNP_MEASURE") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    path.into_iter()
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/bin")))
        .map(|dir| dir.join("sev-snp-measure"))
        .find(|tool| tool.is_file())
}

#[test]
fn measure_prints_digests_of_the_firmware() {
    // HALCYON_IMAGE names the ELF; measure takes its firmware form beside it.
    let tdx = measure("tdx", &[]);
    assert_eq!(tdx, measure("tdx", &[path_str(&firmware_path())]));
    let snp = measure("snp", &[]);
    assert_ne!(snp, tdx);
    assert_ne!(snp, measure("snp", &["--vcpus", "2"]));
    let Some(tool) = sev_snp_measure() else {
        panic!("sev-snp-measure (PyPI) is not installed: run .ci/ensure-tools (or set SEV_SNP_MEASURE)");
    };
    for (vcpus, cpu) in [("1", "EPYC-v4"), ("4", "EPYC-Milan")] {
        let output = Command::new(&tool)
            .args(["--mode", "snp", "--output-format", "hex", "--vcpus", vcpus, "--vcpu-type", cpu, "--ovmf"])
            .arg(firmware_path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let reference = String::from_utf8(output.stdout).unwrap().trim().to_string();
        assert_eq!(measure("snp", &["--vcpus", vcpus, "--vcpu-type", cpu]), reference, "{vcpus} x {cpu}");
    }
}

#[test]
fn hello_world_through_the_firmware_boot() {
    let hello = guest("hello");
    let output = halcyon(&[
        "run", "--boot", "firmware", "--timeout", "120", "--env", "TEST_A=1", "--env", "TEST_EMPTY=",
        path_str(&hello), "x", "y z", "--exit", "3",
    ])
    .output()
    .unwrap();
    assert_exit(&output, 3);
    assert_eq!(
        stdout(&output),
        "hello from halcyon\narg[0]=hello.wasm\narg[1]=x\narg[2]=y z\narg[3]=--exit\narg[4]=3\n\
         env TEST_A=1\nenv TEST_EMPTY=\n"
    );
    assert_eq!(stderr(&output), "this line goes to stderr\n");
}

#[test]
fn firmware_boot_reads_the_command_line_from_fw_cfg() {
    let hello = guest("hello");
    let output = halcyon(&[
        "run", "--boot", "firmware", "--image", path_str(&firmware_path()), "--timeout", "120", "-v", "--kernel-arg",
        "virtio.bounce=on", "--kernel-arg", "test.comma=a,b", path_str(&hello),
    ])
    .output()
    .unwrap();
    assert_exit(&output, 0);
    let log = stderr(&output);
    assert!(log.contains("boot: entered from the firmware reset vector"), "{log}");
    assert!(log.contains("boot: command line: virtio.bounce=on test.comma=a,b\n"), "{log}");
    assert!(log.contains("'hello.wasm': exited with status 0"), "{log}");
}

/// QEMU started by hand (not through `halcyon run`) on `halcyon.fd` with a hello bundle; returns
/// the kernel log. `machine` are the options that differ between the cases, `label` names the
/// case's scratch directory.
fn boot_by_hand(label: &str, machine: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!("halcyon-fw-{}-{label}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("hello.hcb");
    let log = dir.join("kernel.log");
    let _ = std::fs::remove_file(&log);
    let output = halcyon(&["bundle", "-o", path_str(&bundle), path_str(&guest("hello"))]).output().unwrap();
    assert_exit(&output, 0);
    let qemu = std::env::var("HALCYON_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    let status = Command::new(qemu)
        .args(machine)
        .args(["-cpu", "max", "-m", "64M", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-bios", path_str(&firmware_path())])
        .arg("-fw_cfg")
        .arg(format!("name=opt/halcyon/bundle,file={}", path_str(&bundle).replace(',', ",,")))
        .args(["-fw_cfg", "name=opt/halcyon/cmdline,string=by.hand=1"])
        .arg("-serial")
        .arg(format!("file:{}", path_str(&log)))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    // isa-debug-exit: the kernel wrote 0 (run complete), QEMU exits (0 << 1) | 1.
    assert_eq!(status.code(), Some(1), "{log}");
    log
}

#[test]
fn firmware_boot_without_fw_cfg_dma_uses_the_ports() {
    let log = boot_by_hand("no-dma", &["-M", "microvm,x-option-roms=off,rtc=on,pit=on", "-global", "fw_cfg_io.dma_enabled=off"]);
    assert!(log.contains("boot: command line: by.hand=1\n"), "{log}");
    assert!(log.contains("'hello.wasm': exited with status 0"), "{log}");
}

#[test]
fn the_same_firmware_boots_q35_without_seabios() {
    let log = boot_by_hand("q35", &["-M", "q35"]);
    assert!(log.contains("boot: entered from the firmware reset vector"), "{log}");
    assert!(log.contains("'hello.wasm': exited with status 0"), "{log}");
}
