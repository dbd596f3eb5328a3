//! Every shipped config and example resolves without unknown keys, and
//! the input files they name exist.

use std::path::Path;

use rsr::config::{Sources, resolve};

#[test]
fn shipped_configs_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for dir in ["configs", "examples", "recipes/cpu-smollm2"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
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
            // in a config file are relative to the file.
            if let Some(input) = &resolved.config.data.input_path {
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
    assert!(checked >= 6, "found only {checked} configs");
}
