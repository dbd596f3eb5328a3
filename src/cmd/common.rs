//! Arguments and steps shared by the commands that take a config.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::{self, Resolved, Sources};
use crate::store::WorkDir;

/// `[CONFIG] [key=value ...]` with `--config FILE`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// YAML config file (also accepted as the first positional argument
    /// ending in .yaml or .yml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides as dotted key paths, values parsed as YAML:
    /// sampling.max_rollouts=32 formatter.0.type=dpo work_dir=output/run1
    #[arg(value_name = "CONFIG.yaml | KEY=VALUE")]
    pub args: Vec<String>,
}

impl ConfigArgs {
    /// Splits the positional arguments and reads the process environment.
    pub fn sources(&self) -> anyhow::Result<Sources> {
        let mut file = self.config.clone();
        let mut overrides = Vec::new();
        for arg in &self.args {
            let is_yaml = arg.ends_with(".yaml") || arg.ends_with(".yml");
            if arg.contains('=') {
                overrides.push(arg.clone());
            } else if is_yaml && file.is_none() {
                file = Some(PathBuf::from(arg));
            } else if is_yaml {
                bail!("more than one config file given (`{arg}`); merge them into one file");
            } else {
                bail!(
                    "unexpected argument `{arg}`: expected a .yaml config file or key.path=value"
                );
            }
        }
        Ok(Sources::from_process_env(file, overrides))
    }
}

/// A resolved config with its work dir opened (created when new) and the
/// run log attached.
pub struct Run {
    /// The resolved config.
    pub resolved: Resolved,
    /// The work dir.
    pub wd: WorkDir,
    /// Whether this command created the work dir.
    pub created: bool,
}

/// Resolves the config and opens its work dir; `allow_changes` lists frozen
/// keys this command may change on resume.
pub fn open_run(args: &ConfigArgs, allow_changes: &[&str]) -> anyhow::Result<Run> {
    let resolved = config::resolve(&args.sources()?, allow_changes)?;
    let root = resolved.work_dir().to_path_buf();
    let created = !root.exists();
    let wd = WorkDir::create_or_open(&root)?;
    crate::logging::attach_run_log(&wd.run_log_path())
        .with_context(|| format!("cannot open {}", wd.run_log_path().display()))?;
    if resolved.resumed {
        tracing::info!(work_dir = %root.display(), "resuming");
    }
    Ok(Run {
        resolved,
        wd,
        created,
    })
}

impl Run {
    /// Saves the resolved config as `WORK_DIR/config.yaml`.
    pub fn save_config(&self) -> anyhow::Result<()> {
        let path = self.wd.config_path();
        crate::store::write_atomic(&path, self.resolved.to_yaml().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Removes a work dir this command created, after it failed before
    /// producing anything.
    pub fn discard_if_new(&self) {
        if self.created {
            let _ = std::fs::remove_dir_all(self.wd.root());
        }
    }
}

/// Runs a command over `dirs`; a Parquet read failure names the damaged
/// files ([`name_damaged`]).
pub async fn naming_damaged(
    dirs: Vec<PathBuf>,
    command: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    command.await.map_err(|e| {
        let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        name_damaged(&dirs, e)
    })
}

/// When `err` is a Parquet read failure, names the damaged files of the
/// work dirs (`data/`, `rollout/`, `scores/`) and what to do; else `err`.
pub fn name_damaged(dirs: &[&Path], err: anyhow::Error) -> anyhow::Error {
    if !format!("{err:#}").contains("Parquet error") {
        return err;
    }
    let damaged: Vec<(PathBuf, String)> = dirs
        .iter()
        .flat_map(|d| crate::store::parquet::unreadable(d))
        .collect();
    let Some((first, problem)) = damaged.first() else {
        return err;
    };
    let more = match damaged.len() {
        1 => String::new(),
        n => format!(
            " ({} more damaged: {})",
            n - 1,
            damaged[1..]
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    anyhow::anyhow!(
        "{} is not a readable Parquet file ({problem}){more}. rsr writes every file whole and \
         renames it into place, so this one was damaged or copied in afterwards (a full disk, \
         a partial copy). Move it out of the work dir to query the rest; its rows are then \
         missing",
        first.display()
    )
}
