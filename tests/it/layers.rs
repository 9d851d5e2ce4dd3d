//! The source tree is the pipeline: modules form layers and every `crate::` reference points to
//! a lower layer (or stays in its own module), so there is no import circle and no arrow back
//! up. The command line (`src/cli/`, binary only) may use anything of the library; nothing of
//! the library uses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules, lowest layer first; a module may use those of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["util", "image", "device"],
    &["metrics"],
    &["data", "model"],
    &["report", "score"],
    &["train"],
    &["detector"],
    &["calibrate"],
    &["eval"],
    &["pipeline"],
    &["bench"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::<module>` references of non-test code, by top-level module of the file.
fn references() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut refs: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if ["lib", "main", "cli"].contains(&top.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                refs.entry(top.clone())
                    .or_default()
                    .entry(name)
                    .or_insert_with(|| rel.to_path_buf());
            }
        }
    }
    refs
}

#[test]
fn every_module_uses_only_lower_layers() {
    let refs = references();
    assert!(refs.contains_key("pipeline") && refs.contains_key("train"));
    let mut upward = Vec::new();
    for (module, used) in &refs {
        let own = layer_of(module)
            .unwrap_or_else(|| panic!("src/{module} is in no layer: add it to LAYERS"));
        for (target, file) in used {
            let Some(theirs) = layer_of(target) else {
                continue; // a crate-level item of lib.rs, e.g. DEFAULT_SEED
            };
            if theirs >= own {
                upward.push(format!("{} uses crate::{target}", file.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "arrows that do not point down:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_library_never_uses_the_command_line() {
    let refs = references();
    let users: Vec<&String> = refs
        .iter()
        .filter(|(_, used)| used.contains_key("cli"))
        .map(|(m, _)| m)
        .collect();
    assert!(users.is_empty(), "{users:?} use the CLI");
    let lib = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .unwrap();
    assert!(
        !lib.contains("mod cli"),
        "the CLI is part of the binary only"
    );
}
