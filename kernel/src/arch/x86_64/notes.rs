//! The ELF note that tells the host tool which protocols this kernel speaks
//! (layout documented at `halcyon_boot::HALCYON_NOTE_NAME`).

core::arch::global_asm!(
    ".pushsection .note.halcyon, \"a\", @note",
    ".balign 4",
    ".long 8",                 // n_namesz: "Halcyon\0"
    ".long 8",                 // n_descsz
    ".long {note_type}",
    ".asciz \"Halcyon\"",
    ".balign 4",
    ".long {channel_version}",
    ".long {bundle_version}",
    ".balign 4",
    ".popsection",
    note_type = const halcyon_boot::HALCYON_NOTE_TYPE,
    channel_version = const halcyon_hal::channel::PROTOCOL_VERSION,
    bundle_version = const halcyon_hal::bundle::VERSION,
    options(att_syntax)
);
