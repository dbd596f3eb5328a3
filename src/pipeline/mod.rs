//! The steps a run goes through before its scores, over one [`Run`] (a
//! resolved config with its work dir): prepare (the input validated, with
//! the hygiene columns), the checks and connections before sampling, and
//! sampling itself ([`connect_prepare_sample`], the sequence `rsr run` and
//! `rsr sample` share). Each step skips what the work dir already has, so
//! the same steps resume an interrupted run. Scoring after sampling is
//! [`crate::scoring`]'s; formatting and analysis are the formatter's and
//! analyze's; the commands parse arguments, call the steps and print.

mod prepare;
mod sample;

use anyhow::Context;

use crate::config::Resolved;
use crate::store::WorkDir;

pub use prepare::{prepare, prepare_once};
pub use sample::{
    Connection, check_before_batch_files, check_before_sampling, connect, connect_prepare_sample,
    fully_sampled, sample,
};

/// A resolved config with its work dir opened (created when new) and the
/// run log attached.
pub struct Run {
    /// The resolved config.
    pub resolved: Resolved,
    /// The run's verifier, built once from `resolved`'s `verifier` section.
    pub scoring: crate::scoring::Scoring,
    /// The work dir.
    pub wd: WorkDir,
    /// Whether this command created the work dir.
    pub created: bool,
    /// The judge server of a model verifier, once sampling opened it: its
    /// verdicts are asked while sampling, and the judge step after it
    /// reuses the connection (a launched judge starts once).
    pub judge: Option<crate::scoring::judge::JudgeConnection>,
    /// The sandbox of `code-rlvr`, once the check before sampling has
    /// probed it (sampling and the scoring after it use the same one).
    pub sandbox: Option<crate::sandbox::Sandbox>,
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
