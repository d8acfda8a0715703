/*
 * Firmware reset path: QEMU `-bios halcyon.fd` maps the image so it ends at 4 GiB and the
 * CPU starts at the reset vector. Addresses come from `firmware_layout.rs` (const operands);
 * the linker script puts .reset16 at RESET_CODE_GPA and .reset_vector at RESET_VECTOR_GPA.
 *
 * Reset state (Intel SDM Vol. 3A, "Processor Management and Initialization": table
 * "IA-32 and Intel 64 Processor States Following Power-up, Reset, or INIT" and section
 * "First Instruction Executed"): real mode, CS selector F000h with base FFFF0000h and limit
 * FFFFh, EIP 0000FFF0h, so the first fetch is at FFFFFFF0h; CR0 = 60000010h (PE and PG
 * clear), interrupts disabled, DS/ES/SS base 0.
 *
 * Mode switch (same chapter, "Switching to Protected Mode"): load a GDT with LGDT, set
 * CR0.PE, and execute a far JMP at once to load CS and flush the prefetched real-mode
 * instructions; then load the data segment registers. Paging stays off.
 *
 * Then the payload descriptor tells where the kernel payload is in the image and where it is
 * linked; the loop copies it there and jumps to the firmware entry `firmware_start32`
 * (firmware_entry.s: SEV-SNP detection), which joins the PVH path with %ebx = 0, meaning
 * "no PVH start info: ask fw_cfg".
 *
 * Intel TDX: every vCPU of a TD starts at the same vector, but in 32-bit protected mode with
 * paging off (Intel TDX Module v1.5 base architecture spec, "Initial State of a TD vCPU";
 * the module's TDH.VP.INIT sets it: RIP FFFFFFF0h, CR0 = 21h (PE, NE), CR4 = 2040h (MCE,
 * VMXE), IA32_EFER = 901h (SCE, LME, NXE), CS/DS/ES/FS/GS/SS flat 4 GiB with base 0, GDTR
 * base 0; RBX = the GPA width, RCX and R8 = a value the host chose, RDX = CPUID(1).EAX,
 * RSI[31:0] = the vCPU index, all other GPRs 0). The vector therefore decodes the same in
 * both modes up to a test of CR0.PE (the bytes are checked in both decodings by the boot
 * crate's tests): real mode goes on as above; protected mode enters `reset_td32`, which
 * checks the TDX CPUID signature, parks every vCPU but index 0, loads the GDT before any
 * segment load (GDTR base 0 would make the CPU read descriptors from guest page 0, which is
 * not accepted memory in a TD) and joins the copy above with %ebp = 1, after which it enters
 * `pvh_start32` directly instead of the SEV-SNP probe. The host-chosen RCX/R8 and RBX are
 * not used: the kernel asks the TDX module (TDG.VP.INFO) for the GPA width.
 */

.set RESET_CODE32_SELECTOR, 0x08
.set RESET_DATA32_SELECTOR, 0x10

.section .reset16, "ax"
.code16
.global halcyon_reset16
halcyon_reset16:
    cli
    cld
    xorl %ebp, %ebp                 /* not a TD (see reset_td32) */
    /* In real mode with a 16-bit operand size LGDT loads only 24 bits of the base: use the
     * 32-bit form (lgdtl) so the GDT in the top page of 4 GiB is addressable. DS has base 0
     * after reset, so address the pointer through CS (base RESET_CS_BASE). */
    lgdtl %cs:(reset_gdt_pointer - {RESET_CS_BASE})
    movl %cr0, %eax
    orl $1, %eax                    /* CR0.PE */
    movl %eax, %cr0
    ljmpl $RESET_CODE32_SELECTOR, $reset_start32

.code32
reset_start32:
    movl $RESET_DATA32_SELECTOR, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    cmpl ${PAYLOAD_SIGNATURE}, {PAYLOAD_DESCRIPTOR}
    jne reset_halt
    movl {PAYLOAD_DESCRIPTOR}+4, %esi    /* source: the payload in the mapped image */
    movl {PAYLOAD_DESCRIPTOR}+8, %edi    /* destination: its link address */
    movl {PAYLOAD_DESCRIPTOR}+12, %ecx   /* length */
    movl %ecx, %edx
    shrl $2, %ecx                   /* whole dwords first: a quarter of the iterations, */
    rep movsl                       /* which is what an emulator (TCG) pays for */
    movl %edx, %ecx
    andl $3, %ecx
    rep movsb
    xorl %ebx, %ebx                 /* no PVH start info */
    testl %ebp, %ebp
    jnz 1f
    movl $firmware_start32, %eax
    jmp *%eax
    /* A TD joins the PVH entry, which assumes no SEV: the SEV-SNP probe of firmware_start32
     * must not run in a TD, where RDMSR of an AMD MSR raises #VE (TDX module base
     * architecture spec, "MSR Virtualization"), and a #VE met by a #GP while it is
     * delivered is a double fault, which without an IDT gate ends the TD. */
1:  movl $pvh_start32, %eax
    jmp *%eax

reset_halt:
    hlt
    jmp reset_halt

/* TD entry (32-bit protected mode, flat segments, paging off; see the header). */
reset_td32:
    cli
    cld
    /* Only a TD starts here in protected mode; anything else is not a machine this image
     * knows: stop. CPUID leaf 21h is the TDX module's own (answered without a #VE) and
     * carries the signature "IntelTDX    " in EBX, EDX, ECX; elsewhere it reads as
     * something else (a CPU without the leaf returns its highest basic leaf). */
    movl $0x21, %eax
    xorl %ecx, %ecx
    cpuid
    cmpl ${TDX_SIGNATURE_EBX}, %ebx
    jne reset_halt
    cmpl ${TDX_SIGNATURE_EDX}, %edx
    jne reset_halt
    cmpl ${TDX_SIGNATURE_ECX}, %ecx
    jne reset_halt
    /* Every vCPU but index 0 (RSI[31:0]) parks here for good: Halcyon starts no APs. No
     * HLT: in a TD it raises #VE, and without an IDT that is a triple fault, which ends the
     * TD. PAUSE lets the host see the spin (pause-loop exiting). */
    testl %esi, %esi
    jnz reset_td_park
    movl $1, %ebp                   /* a TD: reset_start32 then skips the SEV-SNP probe */
    lgdtl reset_gdt_pointer
    ljmpl $RESET_CODE32_SELECTOR, $reset_start32

reset_td_park:
    pause
    jmp reset_td_park

/* Flat 4 GiB code and data descriptors. Their accessed bits (type bit 0) are preset: the
 * image may be ROM, where the CPU could not set them. */
.balign 8
reset_gdt:
    .quad 0                         /* null */
    .quad 0x00CF9B000000FFFF        /* 0x08: 32-bit code, DPL0, accessed */
    .quad 0x00CF93000000FFFF        /* 0x10: 32-bit data, DPL0, accessed */
reset_gdt_end:
reset_gdt_pointer:
    .word reset_gdt_end - reset_gdt - 1
    .long reset_gdt

/* The 16 bytes at 4 GiB - 16, which must mean the same in real mode (plain VM, SEV-SNP) and
 * in 32-bit protected mode (TD) until they branch on CR0.PE:
 *   0F 20 C0     mov %cr0, %eax   (MOV from a control register is 32-bit in both modes)
 *   A8 01        test $1, %al     (CR0.PE)
 *   74 05        jz 1f            (real mode: over the 32-bit jump)
 *   E9 rel32     jmp reset_td32   (protected mode only)
 * 1:E9 rel16     jmp halcyon_reset16 (real mode only; relative to CS base FFFF0000h)
 * padded with HLT. The tests disassemble these bytes in both modes. */
.section .reset_vector, "ax"
.code16
reset_vector_start:
    movl %cr0, %eax
    testb $1, %al
    jz 1f
.code32
    jmp reset_td32
.code16
1:
    jmp halcyon_reset16
    .fill 16 - (. - reset_vector_start), 1, 0xf4
