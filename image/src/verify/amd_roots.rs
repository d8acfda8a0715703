//! AMD's published SEV-SNP root (ARK) and signing (ASK) certificates per product.
//!
//! The certificates are not stored in this repository: they are the PEM constants of
//! the `sev` crate's published crates.io package (virtee/sev 8.0.0,
//! `src/certs/snp/builtin/{milan,genoa,turin}/{ark,ask}.pem`, exposed as
//! `sev::certs::snp::builtin::*::{ARK, ASK}`), which ships them as AMD publishes them
//! through its Key Distribution Service (`/vcek/v1/{product}/cert_chain`, AMD 57230
//! "VCEK Certificate and KDS Interface Specification", section "Get Certificate Chain").
//! The version is pinned in Cargo.toml so the roots change only on purpose.

use sev::certs::snp::builtin::{genoa, milan, turin};

/// An SNP product line with its own ARK/ASK pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmdProduct {
    /// The product name as in the VCEK's productName extension (before any `-` stepping).
    pub name: &'static str,
    /// ARK, PEM.
    pub ark_pem: &'static [u8],
    /// ASK, PEM.
    pub ask_pem: &'static [u8],
}

/// Every product whose roots Halcyon knows, newest last.
pub const PRODUCTS: [AmdProduct; 3] = [
    AmdProduct { name: "Milan", ark_pem: milan::ARK, ask_pem: milan::ASK },
    AmdProduct { name: "Genoa", ark_pem: genoa::ARK, ask_pem: genoa::ASK },
    AmdProduct { name: "Turin", ark_pem: turin::ARK, ask_pem: turin::ASK },
];

/// The products a VCEK's productName (e.g. `Milan-B0`) may chain to: Siena parts use
/// Genoa's keys (AMD KDS serves Siena VCEKs under the Genoa chain). No product name
/// (it is optional in the certificate): every known product is tried.
pub fn candidates(product_name: Option<&str>) -> Vec<AmdProduct> {
    let Some(name) = product_name else { return PRODUCTS.to_vec() };
    let family = name.split('-').next().unwrap_or(name);
    let family = if family.eq_ignore_ascii_case("Siena") { "Genoa" } else { family };
    PRODUCTS.iter().copied().filter(|p| p.name.eq_ignore_ascii_case(family)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_names_pick_roots() {
        assert_eq!(candidates(Some("Milan-B0")), [PRODUCTS[0]]);
        assert_eq!(candidates(Some("Genoa")), [PRODUCTS[1]]);
        assert_eq!(candidates(Some("Siena-A0")), [PRODUCTS[1]]);
        assert_eq!(candidates(Some("Turin")), [PRODUCTS[2]]);
        assert!(candidates(Some("Naples")).is_empty());
        assert_eq!(candidates(None).len(), 3);
        for p in PRODUCTS {
            assert!(p.ark_pem.starts_with(b"-----BEGIN CERTIFICATE-----"), "{}", p.name);
            assert!(p.ask_pem.starts_with(b"-----BEGIN CERTIFICATE-----"), "{}", p.name);
        }
    }
}
