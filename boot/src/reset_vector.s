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
 */

.set RESET_CODE32_SELECTOR, 0x08
.set RESET_DATA32_SELECTOR, 0x10

.section .reset16, "ax"
.code16
.global halcyon_reset16
halcyon_reset16:
    cli
    cld
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
    movl $firmware_start32, %eax
    jmp *%eax

reset_halt:
    hlt
    jmp reset_halt

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

/* The 16 bytes at 4 GiB - 16: a near jump (relative to CS base FFFF0000h) to the code above,
 * padded with HLT. */
.section .reset_vector, "ax"
.code16
reset_vector_start:
    jmp halcyon_reset16
    .fill 16 - (. - reset_vector_start), 1, 0xf4
