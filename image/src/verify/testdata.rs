//! Published test vectors, read at test time from the crates.io packages that ship them
//! (dependencies of this crate, so cargo has them unpacked in its registry source
//! directory): nothing here is copied into the repository.
//!
//! - `sev` 8.0.0 (virtee/sev), `tests/certs_data/`: `report_milan.hex` (a real version 2
//!   SNP attestation report from a Milan part, hex), `vcek_milan.der` (its VCEK, from AMD
//!   KDS), `vcek_turin.der` and `cert_chain_turin`/`cert_chain_milan` (ASK + ARK, PEM).
//! - `dcap-qvl` 0.7.1 (Phala-Network/dcap-qvl), `sample/`: `tdx_quote` (a real v4 TD
//!   quote) with `tdx_quote_collateral.json`, `tdx_quote_td15ex` (v5, TD 1.5 body with
//!   extensions) and `tdx_quote_outdated` (v5, TD 1.5 body, out-of-date TCB), each with
//!   its `*_collateral.json` (Intel PCS collateral at the time the quote was taken).

//!
//! Published vectors no crates.io package ships are read, when present, from
//! `<repo>/../shared/testdata/` (or `$HALCYON_TESTDATA`), and the tests that need them
//! are skipped with a note otherwise (see [`shared`]).

use std::path::PathBuf;

pub const SEV: &str = "sev-8.0.0";
pub const DCAP_QVL: &str = "dcap-qvl-0.7.1";

/// `$CARGO_HOME/registry/src/<index>/<package>`, if cargo has unpacked it.
pub fn package_dir(package: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    std::fs::read_dir(home.join("registry").join("src"))
        .ok()?
        .filter_map(Result::ok)
        .map(|index| index.path().join(package))
        .find(|dir| dir.is_dir())
}

/// A file of a package, or `None` (with a note on stderr) when the package is not
/// unpacked where cargo normally puts it (vendored builds): the test is then skipped.
pub fn read(package: &str, file: &str) -> Option<Vec<u8>> {
    let path = package_dir(package).map(|dir| dir.join(file));
    match path.as_ref().map(std::fs::read) {
        Some(Ok(bytes)) => Some(bytes),
        _ => {
            eprintln!("note: skipped: {package}/{file} is not in cargo's registry source directory");
            None
        }
    }
}

/// A fixed time inside the validity of every certificate and collateral used (the
/// Milan VCEK was issued 2023-04-03; the dcap-qvl v4 sample collateral 2025-06-19).
pub fn unix(secs: u64) -> super::VerifyTime {
    super::VerifyTime(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// A published file under the shared test-data directory (`$HALCYON_TESTDATA`, else
/// `<repo>/../shared/testdata`), or `None` with a note on stderr when it is not there.
pub fn shared(file: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("HALCYON_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    match std::fs::read(dir.join(file)) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            eprintln!("note: skipped: shared test data {file} is not in {}", dir.display());
            None
        }
    }
}
