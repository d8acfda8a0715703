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

fn read_module(path: &Path) -> Result<Vec<u8>> {
    let wasm = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if wasm.len() > u32::MAX as usize {
        bail!("{} is larger than 4 GiB", path.display());
    }
    Ok(wasm)
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
            let memory = match w.memory {
                None => None,
                Some(Size::Bytes(b)) => Some(b),
                Some(Size::Text(t)) => Some(parse_size(&t)?),
            };
            let mut args = vec![file.clone()];
            args.extend(w.args);
            Ok(Owned {
                name: w.name.unwrap_or(file),
                wasm: read_module(&module)?,
                args,
                env: w.env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
                fuel: w.fuel,
                memory,
            })
        })
        .collect()
}

fn load(inputs: &[PathBuf]) -> Result<Vec<Owned>> {
    match inputs {
        [one] if one.extension().is_some_and(|e| e == "toml") => from_manifest(one),
        modules => modules
            .iter()
            .map(|m| {
                let name = module_name(m);
                Ok(Owned { name: name.clone(), wasm: read_module(m)?, args: vec![name], env: vec![], fuel: None, memory: None })
            })
            .collect(),
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
    if let Some(bad) = owned.iter().flat_map(|w| &w.env).find(|e| e.starts_with('=')) {
        bail!("environment entry '{bad}' has an empty name");
    }
    let workloads: Vec<Workload<'_>> = owned
        .iter()
        .map(|w| Workload {
            name: &w.name,
            wasm: &w.wasm,
            args: w.args.iter().map(String::as_str).collect(),
            env: w.env.iter().map(String::as_str).collect(),
            fuel: w.fuel,
            memory_limit: w.memory,
        })
        .collect();
    let bytes = bundle::encode(&workloads);
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
        assert_eq!(parsed[1].memory_limit, Some(65536));
    }

    #[test]
    fn bad_manifests_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.toml"), "[[workload]]\nmodule = \"missing.wasm\"\n").unwrap();
        assert!(bundle(&dir.path().join("b"), &[dir.path().join("w.toml")]).is_err());
        std::fs::write(dir.path().join("x.toml"), "[[workload]]\nmodul = \"typo\"\n").unwrap();
        assert!(bundle(&dir.path().join("b"), &[dir.path().join("x.toml")]).is_err());
    }
}
