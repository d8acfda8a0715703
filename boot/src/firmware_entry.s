/*
 * Firmware entry: the reset code (reset_vector.s) jumps here after copying the kernel, in
 * 32-bit protected mode with flat segments (its GDT: code 0x08, data 0x10), paging off,
 * interrupts off. Before the common PVH path builds page tables, find out whether this is
 * an SEV-SNP guest and, if so, where the C-bit is. The rules and constants are in
 * boot/src/snp_entry.rs (`decide`, host-tested); this is the same logic before paging.
 *
 * Nothing the hypervisor controls is trusted here: the general registers are set before use
 * (%ebx = 0 from the reset code); SEV_STATUS is read from the CPU; the C-bit comes from the
 * CPUID page the PSP validated at launch, parsed with bounds checks. With paging off every
 * data access of an SEV guest is private (AMD APM vol. 2 §15.34.5), so the CPUID page and
 * the kernel's pre-validated RAM are read as the launch wrote them.
 *
 * Out: %ebp = SEV_STATUS (low half; 0 on a plain VM), %edx = the C-bit as a mask of the high
 * dword of a page-table entry (0 on a plain VM), %ebx = 0; then `boot32_common`.
 */

.set FW_CODE32_SELECTOR, 0x08
.set GATE32_INTERRUPT_PRESENT, 0x8E00   /* P=1, DPL 0, type 0xE: 32-bit interrupt gate */
.set GP_VECTOR, 13

.section .text.boot32, "ax"
.code32
.global firmware_start32
firmware_start32:
    cli
    cld
    movl $__boot_stack_top, %esp    /* the #GP guard needs a stack; the boot stack is RAM */
    xorl %ebx, %ebx
    xorl %ebp, %ebp
    xorl %edx, %edx

    /* An IDT whose only present gate is #GP, so that RDMSR of SEV_STATUS on a CPU without
     * it is survived (every other exception finds a zero gate and ends in a shutdown). */
    movl $fw_gp_handler, %eax
    movl %eax, %ecx
    andl $0xFFFF, %eax
    orl $(FW_CODE32_SELECTOR << 16), %eax
    movl %eax, fw_idt32 + GP_VECTOR * 8
    andl $0xFFFF0000, %ecx
    orl $GATE32_INTERRUPT_PRESENT, %ecx
    movl %ecx, fw_idt32 + GP_VECTOR * 8 + 4
    lidt fw_idt32_pointer

    movl ${SEV_STATUS_MSR}, %ecx
    xorl %eax, %eax
fw_sev_status_rdmsr:
    rdmsr                           /* #GP: the handler resumes after it with %eax = 0 */
    lidt fw_no_idt_pointer          /* from here on any exception shuts the VM down */
    movl %eax, %ebp
    xorl %edx, %edx

    testl $({SEV_STATUS_SEV} | {SEV_STATUS_SEV_ES} | {SEV_STATUS_SNP}), %eax
    jz fw_plain
    andl $({SEV_STATUS_SEV} | {SEV_STATUS_SEV_ES} | {SEV_STATUS_SNP}), %eax
    cmpl $({SEV_STATUS_SEV} | {SEV_STATUS_SEV_ES} | {SEV_STATUS_SNP}), %eax
    je fw_snp
    testl $({SEV_STATUS_SEV_ES} | {SEV_STATUS_SNP}), %eax
    jz fw_halt                      /* SEV alone has no GHCB to report through */
    movl ${TERMINATE_SNP_UNSUPPORTED}, %eax
    jmp fw_terminate

fw_snp:
    /* Find CPUID Fn8000_001F in the CPUID page: 1 <= count <= 64 entries. */
    movl {CPUID_PAGE}, %ecx
    testl %ecx, %ecx
    jz fw_bad_cpuid_page
    cmpl ${CPUID_PAGE_COUNT_MAX}, %ecx
    ja fw_bad_cpuid_page
    movl ${CPUID_PAGE} + {CPUID_PAGE_ENTRIES}, %esi
1:  cmpl ${ENCRYPTION_LEAF}, {CPUID_ENTRY_EAX_IN}(%esi)
    je 2f
    addl ${CPUID_ENTRY_SIZE}, %esi
    decl %ecx
    jnz 1b
    jmp fw_bad_cpuid_page
2:  movl {CPUID_ENTRY_EAX}(%esi), %eax
    andl ${ENCRYPTION_EAX_REQUIRED}, %eax
    cmpl ${ENCRYPTION_EAX_REQUIRED}, %eax
    jne fw_bad_cpuid_page
    movl {CPUID_ENTRY_EBX}(%esi), %ecx
    andl ${C_BIT_FIELD}, %ecx
    cmpl ${C_BIT_MIN}, %ecx
    jb fw_bad_cpuid_page
    cmpl ${C_BIT_MAX}, %ecx
    ja fw_bad_cpuid_page
    subl $32, %ecx
    movl $1, %edx
    shll %cl, %edx                  /* the C-bit in the high dword of an entry */
    xorl %esi, %esi
fw_plain:
    jmp boot32_common

fw_bad_cpuid_page:
    movl ${TERMINATE_CPUID_PAGE}, %eax
fw_terminate:
    /* GHCB MSR protocol termination request (GHCB spec 56421 §2.3.6), then VMGEXIT. */
    movl ${GHCB_MSR}, %ecx
    xorl %edx, %edx
    wrmsr
    rep vmmcall                     /* VMGEXIT: F3 0F 01 D9 */
fw_halt:
    hlt
    jmp fw_halt

/* #GP in 32-bit protected mode at CPL 0 pushes EFLAGS, CS, EIP and an error code (AMD APM
 * vol. 2 §8.9). Only the RDMSR of SEV_STATUS may fault: skip it (2 bytes, 0F 32), as if it
 * had read 0. Anything else is a bug: halt. */
fw_gp_handler:
    cmpl $fw_sev_status_rdmsr, 4(%esp)
    jne fw_halt
    addl $2, 4(%esp)
    xorl %eax, %eax
    xorl %edx, %edx
    addl $4, %esp                   /* drop the error code */
    iretl

.section .rodata.fw_idt, "a"
.balign 8
fw_idt32_pointer:
    .word (GP_VECTOR + 1) * 8 - 1
    .long fw_idt32
fw_no_idt_pointer:
    .word 0
    .long 0

.section .data.fw_idt, "aw"
.balign 8
fw_idt32:
    .fill (GP_VECTOR + 1) * 8, 1, 0
