//! `halcyon bundle`: packs several workloads into one bundle for a single boot, from a
//! TOML manifest or from a list of modules.

use crate::size::parse_size;
use anyhow::{bail, Context, Result};
use halcyon_hal::bundle::{self, Workload};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    workload: Vec<ManifestWorkload>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestWorkload {
    name: Option<String>,
    module: PathBuf,
    argv0: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    fuel: Option<u64>,
    memory: Option<Size>,
}

/// A workload with owned data, before encoding.
struct Owned {
    name: String,
    wasm: Vec<u8>,
    args: Vec<String>,
    env: Vec<String>,
    fuel: Option<u64>,
    memory: Option<u64>,
}

fn module_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "module.wasm".into())
}

/// The largest module (or bundle) `halcyon` hands to a VM: far beyond what fits in guest
/// RAM, and well inside what the bundle layout's 32-bit lengths can express.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Reads a module or bundle from the host, refusing absurd sizes before reading.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let too_big = |len: u64| len > MAX_INPUT_BYTES;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        bail!("{} is a directory, not a WebAssembly module", path.display());
    }
    if too_big(meta.len()) {
        bail!("{} is larger than 1 GiB", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if too_big(bytes.len() as u64) {
        bail!("{} is larger than 1 GiB", path.display());
    }
    Ok(bytes)
}

/// A limit of 0 would mean "no limit" in the bundle; refuse it rather than surprise.
fn positive(value: Option<u64>, what: &str, workload: &str) -> Result<Option<u64>> {
    match value {
        Some(0) => bail!("workload '{workload}': {what} must be greater than 0 (leave it out for no limit)"),
        other => Ok(other),
    }
}

fn from_manifest(path: &Path) -> Result<Vec<Owned>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let manifest: Manifest = toml::from_str(&text).with_context(|| format!("{} is not a valid manifest", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    manifest
        .workload
        .into_iter()
        .map(|w| {
            let module = base.join(&w.module);
            let file = module_name(&module);
            let name = w.name.unwrap_or_else(|| file.clone());
            let memory = match w.memory {
                None => None,
                Some(Size::Bytes(b)) => Some(b),
                Some(Size::Text(t)) => Some(parse_size(&t).with_context(|| format!("workload '{name}': memory"))?),
            };
            if let Some(key) = w.env.keys().find(|k| k.is_empty() || k.contains('=')) {
                bail!("workload '{name}': environment variable name '{key}' is empty or contains '='");
            }
            let mut args = vec![w.argv0.unwrap_or(file)];
            args.extend(w.args);
            Ok(Owned {
                fuel: positive(w.fuel, "fuel", &name)?,
                memory: positive(memory, "memory", &name)?,
                wasm: read_input(&module)?,
                args,
                env: w.env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
                name,
            })
        })
        .collect()
}

fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}

fn load(inputs: &[PathBuf]) -> Result<Vec<Owned>> {
    match inputs {
        [one] if is_manifest(one) => from_manifest(one),
        modules => {
            if let Some(manifest) = modules.iter().find(|m| is_manifest(m)) {
                bail!("{}: give either one manifest or a list of modules, not both", manifest.display());
            }
            modules
                .iter()
                .map(|m| {
                    let name = module_name(m);
                    let wasm = read_input(m)?;
                    if bundle::is_bundle(&wasm) {
                        bail!("{} is already a bundle; bundles do not nest", m.display());
                    }
                    Ok(Owned { name: name.clone(), wasm, args: vec![name], env: vec![], fuel: None, memory: None })
                })
                .collect()
        }
    }
}

pub fn bundle(output: &Path, inputs: &[PathBuf]) -> Result<()> {
    if inputs.is_empty() {
        bail!("give a manifest (workloads.toml) or one or more modules");
    }
    let owned = load(inputs)?;
    if owned.is_empty() {
        bail!("the manifest lists no workloads");
    }
    if owned.len() > bundle::MAX_WORKLOADS {
        bail!("{} workloads; a bundle holds at most {}", owned.len(), bundle::MAX_WORKLOADS);
    }
    let workloads: Vec<Workload<'_>> = owned
        .iter()
        .map(|w| Workload {
            name: &w.name,
            wasm: &w.wasm,
            args: w.args.iter().map(String::as_str).collect(),
            env: w.env.iter().map(String::as_str).collect(),
            tcp_listen: Vec::new(),
            fuel: w.fuel,
            memory_limit: w.memory,
        })
        .collect();
    let bytes = bundle::encode(&workloads);
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!("    Finished bundle {} ({} workloads, {} KiB)", output.display(), workloads.len(), bytes.len() / 1024);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_to_bundle() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(
            dir.path().join("w.toml"),
            r#"
            [[workload]]
            name = "first"
            module = "a.wasm"
            args = ["--x"]
            env = { K = "v" }
            fuel = 10
            memory = "1MiB"

            [[workload]]
            module = "a.wasm"
            argv0 = "prog"
            memory = 65536
            "#,
        )
        .unwrap();
        let out = dir.path().join("b.hcb");
        bundle(&out, &[dir.path().join("w.toml")]).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let parsed = bundle::parse(&bytes).unwrap();
        assert_eq!(parsed[0].name, "first");
        assert_eq!(parsed[0].args, vec!["a.wasm", "--x"]);
        assert_eq!(parsed[0].env, vec!["K=v"]);
        assert_eq!(parsed[0].fuel, Some(10));
        assert_eq!(parsed[0].memory_limit, Some(1 << 20));
        assert_eq!(parsed[1].name, "a.wasm");
        assert_eq!(parsed[1].args, vec!["prog"]);
        assert_eq!(parsed[1].memory_limit, Some(65536));
        assert_eq!(parsed[1].fuel, None);
    }

    #[test]
    fn modules_on_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(dir.path().join("b.wasm"), b"\0asm\x01\0\0\0").unwrap();
        let out = dir.path().join("sub/b.hcb");
        bundle(&out, &[dir.path().join("a.wasm"), dir.path().join("b.wasm")]).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let parsed = bundle::parse(&bytes).unwrap();
        assert_eq!(parsed.iter().map(|w| w.name).collect::<Vec<_>>(), ["a.wasm", "b.wasm"]);
        assert_eq!(parsed[1].args, vec!["b.wasm"]);
        assert!(parsed.iter().all(|w| w.env.is_empty() && w.fuel.is_none() && w.memory_limit.is_none()));

        // A bundle is not a module, and manifests do not mix with modules.
        assert!(bundle(&dir.path().join("c"), std::slice::from_ref(&out)).unwrap_err().to_string().contains("already a bundle"));
        std::fs::write(dir.path().join("w.toml"), "").unwrap();
        let err = bundle(&dir.path().join("c"), &[dir.path().join("a.wasm"), dir.path().join("w.toml")]).unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
    }

    #[test]
    fn bad_manifests_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.toml"), "[[workload]]\nmodule = \"missing.wasm\"\n").unwrap();
        assert!(bundle(&dir.path().join("b"), &[dir.path().join("w.toml")]).is_err());
        std::fs::write(dir.path().join("x.toml"), "[[workload]]\nmodul = \"typo\"\n").unwrap();
        assert!(bundle(&dir.path().join("b"), &[dir.path().join("x.toml")]).is_err());

        std::fs::write(dir.path().join("a.wasm"), b"\0asm\x01\0\0\0").unwrap();
        let fails = |manifest: &str| {
            std::fs::write(dir.path().join("m.toml"), manifest).unwrap();
            format!("{:#}", bundle(&dir.path().join("b"), &[dir.path().join("m.toml")]).unwrap_err())
        };
        assert!(fails("[[workload]]\nmodule = \"a.wasm\"\nfuel = 0\n").contains("fuel must be greater than 0"));
        assert!(fails("[[workload]]\nmodule = \"a.wasm\"\nmemory = \"0KiB\"\n").contains("memory must be greater than 0"));
        assert!(fails("[[workload]]\nmodule = \"a.wasm\"\nmemory = \"lots\"\n").contains("not a size"));
        assert!(fails("[[workload]]\nmodule = \"a.wasm\"\nenv = { \"\" = \"x\" }\n").contains("is empty"));
        assert!(fails("").contains("not a valid manifest") || fails("").contains("no workloads"));
        assert!(!dir.path().join("b").exists());
    }
}
