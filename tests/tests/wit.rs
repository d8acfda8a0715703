//! The HAL contract in `wit/` is valid WIT and whole: one package, every interface the
//! spec's tables name, and a `workload` world that imports them all.

use std::path::Path;

const INTERFACES: [&str; 12] = [
    "capabilities", "clock", "random", "crypto", "attestation", "storage", "sockets", "tls",
    "gpu", "resources", "events", "communication",
];

#[test]
fn the_hal_package_parses_and_is_complete() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let mut resolve = wit_parser::Resolve::default();
    let (package_id, _) = resolve.push_dir(&dir).unwrap_or_else(|e| panic!("wit/ does not parse: {e:?}"));
    let package = &resolve.packages[package_id];
    assert_eq!(package.name.namespace, "elastic");
    assert_eq!(package.name.name, "hal");
    assert_eq!(package.name.version.as_ref().map(|v| v.to_string()).as_deref(), Some("0.1.0"));
    for name in INTERFACES {
        assert!(package.interfaces.contains_key(name), "interface {name} is missing");
    }
    let world_id = package.worlds.get("workload").expect("world `workload`");
    let world = &resolve.worlds[*world_id];
    assert_eq!(world.imports.len(), INTERFACES.len(), "the workload world imports every interface");
    assert!(world.exports.is_empty());
}

/// WIT function names as `capabilities` reports them: `[constructor]r` → `r`,
/// `[method]r.f` and `[static]r.f` → `r.f`.
fn capability_name(wit_name: &str) -> &str {
    wit_name.rsplit_once(']').map_or(wit_name, |(_, rest)| rest)
}

#[test]
fn capabilities_list_exactly_the_functions_of_the_contract() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let mut resolve = wit_parser::Resolve::default();
    let (package_id, _) = resolve.push_dir(&dir).expect("wit/ parses");
    let mut from_wit: Vec<(String, String)> = Vec::new();
    for (name, id) in &resolve.packages[package_id].interfaces {
        for function in resolve.interfaces[*id].functions.keys() {
            from_wit.push((name.clone(), capability_name(function).to_string()));
        }
    }
    let mut from_table: Vec<(String, String)> = halcyon_hal::support::FUNCTIONS
        .iter()
        .flat_map(|(interface, functions)| functions.iter().map(move |(f, _)| (interface.to_string(), f.to_string())))
        .collect();
    from_wit.sort();
    from_table.sort();
    assert_eq!(from_table, from_wit, "hal/src/support.rs and wit/ disagree");
}
