//! Every shipped config and example resolves without unknown keys, and
//! the input files they name exist.

use std::path::Path;

use rsr::config::{Sources, resolve};

#[test]
fn shipped_configs_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    // Every recipe folder (one level, and the GPU recipes below recipes/gpu).
    let mut dirs: Vec<std::path::PathBuf> = ["configs", "configs/eval", "examples"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    for parent in ["recipes", "recipes/gpu"] {
        for entry in std::fs::read_dir(root.join(parent)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && path.file_name() != Some("gpu".as_ref()) {
                dirs.push(path);
            }
        }
    }
    for dir in dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // Trainer configs (TRL, LLaMA-Factory) sit beside rsr's.
            if !name.ends_with(".yaml")
                || name.starts_with("trl_")
                || name.starts_with("llamafactory_")
            {
                continue;
            }
            let sources = Sources {
                file: Some(path.clone()),
                env: vec![],
                overrides: vec!["sampler.model=m".into()],
            };
            let resolved =
                resolve(&sources, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // An input the config names is found from any directory: paths
            // in a config file are relative to the file. A recipe that
            // fetches its input (fetch.sh) has it only once fetched.
            let fetched = path.with_file_name("fetch.sh").exists();
            if let Some(input) = resolved
                .config
                .data
                .input_path
                .as_ref()
                .filter(|_| !fetched)
            {
                assert!(
                    input.is_file(),
                    "{}: data.input_path {} does not exist",
                    path.display(),
                    input.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 24, "found only {checked} configs");
}
