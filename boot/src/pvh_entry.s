/*
 * PVH entry: the VMM (QEMU `-kernel`, or any PVH loader) starts us here in 32-bit
 * protected mode, paging off, interrupts off, flat segments, %ebx = physical address
 * of the hvm_start_info (Xen public/arch-x86/hvm/start_info.h, "PVH boot ABI").
 *
 * We clear .bss, identity-map the first 4 GiB (the first 2 MiB with 4 KiB pages, so that
 * single low pages can be shared later, the rest with 2 MiB pages: enough to reach the
 * kernel, the start info, the modules and the local APIC/IO-APIC MMIO), enter long
 * mode and call `halcyon_main(start_info_paddr)`.
 *
 * The firmware entry (firmware_entry.s) joins at `boot32_common` with the SEV-SNP C-bit in
 * %edx (as a mask of each entry's high dword; 0 on a plain VM) and SEV_STATUS in %ebp. The
 * PVH entry is never a confidential one (QEMU boots SEV guests through firmware), so it
 * passes zeros. The Rust side replaces these page
 * tables with fine-grained ones (W^X, NX, stack guard) as soon as it has a frame allocator.
 */

/* ELF note read by the VMM: Xen public/elfnote.h, XEN_ELFNOTE_PHYS32_ENTRY = 18.
 * QEMU aligns the name size to the PT_NOTE segment's alignment, so keep it 4. */
.section .note.Xen, "a", @note
.balign 4
.long 4                 /* n_namesz: "Xen\0" */
.long 4                 /* n_descsz */
.long 18                /* n_type: XEN_ELFNOTE_PHYS32_ENTRY */
.asciz "Xen"
.balign 4
.long pvh_start32
.balign 4

.set CR0_PE,    1 << 0
.set CR0_WP,    1 << 16
.set CR0_PG,    1 << 31
.set CR4_PAE,   1 << 5
.set MSR_EFER,  0xC0000080
.set EFER_LME,  1 << 8
.set EFER_NXE,  1 << 11
.set PTE_PRESENT_WRITABLE, 0x3
.set PTE_HUGE_PRESENT_WRITABLE, 0x83
.set BOOT_CODE64_SELECTOR, 0x08
.set BOOT_DATA_SELECTOR,   0x10

.section .text.boot32, "ax"
.code32
.global pvh_start32
pvh_start32:
    cli
    cld
    xorl %edx, %edx                 /* no C-bit */
    xorl %ebp, %ebp                 /* no SEV_STATUS */

.global boot32_common
boot32_common:
    movl %ebx, %esi                 /* keep the start info pointer across the setup */

    /* Zero .bss (the page tables below live there). */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
    movl %ebp, halcyon_boot_sev_status

    /* PML4[0] -> PDPT; PDPT[0..4] -> the four page directories; each PD maps 1 GiB; PD[0]
     * -> a page table for the first 2 MiB. Every entry's high dword is %edx: the C-bit on
     * SEV-SNP (private memory; tables too, as the APM's examples set it at every level). */
    movl $boot_pdpt, %eax
    orl $PTE_PRESENT_WRITABLE, %eax
    movl %eax, boot_pml4
    movl %edx, boot_pml4 + 4

    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $12, %eax
    addl $boot_pd, %eax
    orl $PTE_PRESENT_WRITABLE, %eax
    movl %eax, boot_pdpt(,%ecx,8)
    movl %edx, boot_pdpt + 4(,%ecx,8)
    incl %ecx
    cmpl $4, %ecx
    jb 1b

    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $PTE_HUGE_PRESENT_WRITABLE, %eax
    movl %eax, boot_pd(,%ecx,8)
    movl %edx, boot_pd + 4(,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb 2b

    movl $boot_pt, %eax
    orl $PTE_PRESENT_WRITABLE, %eax
    movl %eax, boot_pd
    xorl %ecx, %ecx
3:  movl %ecx, %eax
    shll $12, %eax
    orl $PTE_PRESENT_WRITABLE, %eax
    movl %eax, boot_pt(,%ecx,8)
    movl %edx, boot_pt + 4(,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jb 3b

    /* Long mode: PAE, CR3, EFER.LME (+NXE for the Rust page tables), then paging. */
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    /* EFER is written only when LME or NXE is missing. A TD starts with both set (EFER =
     * 901h, TDX module base architecture spec, "Initial State of a TD vCPU") and a WRMSR
     * of EFER there raises #VE, which before the IDT is a triple fault; RDMSR of EFER is
     * answered by the CPU. A plain VM starts with EFER = 0 and gets the write. */
    movl $MSR_EFER, %ecx
    rdmsr
    movl %eax, %edi
    orl $(EFER_LME | EFER_NXE), %eax
    cmpl %eax, %edi
    je 4f
    wrmsr
4:
    movl %cr0, %eax
    orl $(CR0_PE | CR0_WP | CR0_PG), %eax
    movl %eax, %cr0

    lgdt boot_gdt_pointer
    ljmpl $BOOT_CODE64_SELECTOR, $pvh_start64

.code64
pvh_start64:
    movw $BOOT_DATA_SELECTOR, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq $__boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl %esi, %edi                 /* zero-extends: start info physical address */
    call halcyon_main
4:  cli
    hlt
    jmp 4b

/* The descriptors have their "accessed" bit (type bit 0, SDM vol. 3A §3.4.5.1) already
 * set: otherwise the CPU sets it in memory when a segment register is loaded, and this
 * read-only table is part of the kernel's measured image (measurement log), which must
 * stay as the image file has it. */
.section .rodata.boot_gdt, "a"
.balign 16
boot_gdt:
    .quad 0                         /* null */
    .quad 0x00AF9B000000FFFF        /* 0x08: 64-bit code, DPL0, accessed */
    .quad 0x00CF93000000FFFF        /* 0x10: data, DPL0, accessed */
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

.section .bss.boot_page_tables, "aw", @nobits
.balign 4096
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4096 * 4
.global boot_pt
boot_pt:    .skip 4096

/* SEV_STATUS (C001_0131h) as the firmware entry read it, for the kernel's platform
 * detection (0 on the PVH path and on a plain VM). */
.section .bss.boot_sev_status, "aw", @nobits
.balign 8
.global halcyon_boot_sev_status
halcyon_boot_sev_status: .skip 8
