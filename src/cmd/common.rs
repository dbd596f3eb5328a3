//! Arguments and steps shared by the commands that take a config.

use crate::scoring::Scoring;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::{self, Config, Sources};
use crate::pipeline::Run;
use crate::sampler::{SampleReport, Stop};

use super::{BudgetReached, Interrupted, ServersFailing, Unfinished};
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

/// Resolves the config ([`config::resolve`]: types, shapes, ranges, the
/// resume rules) and runs the checks of the sections other modules own, in
/// the order their errors are reported: hygiene's keys, the verifier (the
/// scoring registry builds the run's [`Scoring`], once), the formatters.
pub fn resolve_checked(
    sources: &Sources,
    allow_changes: &[&str],
) -> Result<(config::Resolved, Scoring), config::ConfigError> {
    let resolved = config::resolve(sources, allow_changes)?;
    resolved.check(&[crate::hygiene::check_section])?;
    let scoring =
        crate::scoring::from_section(&resolved.config).map_err(|e| resolved.invalid(e))?;
    resolved.check(&[crate::formatter::check::check_section])?;
    Ok((resolved, scoring))
}

/// Resolves the config and opens its work dir; `allow_changes` lists frozen
/// keys this command may change on resume.
pub fn open_run(args: &ConfigArgs, allow_changes: &[&str]) -> anyhow::Result<Run> {
    open_run_as(args, allow_changes, None)
}

/// [`open_run`] for sampling task `task` when given: the work dir is
/// opened without its lock (the task takes it shared once the work dir is
/// prepared), never removed on failure (other tasks share it), and the
/// task logs to `logs/task-I-of-N.log`.
pub fn open_run_as(
    args: &ConfigArgs,
    allow_changes: &[&str],
    task: Option<crate::store::Task>,
) -> anyhow::Result<Run> {
    let sources = args.sources()?;
    let from_env = sources.env.iter().any(|(k, _)| k.starts_with("RSR_"));
    if sources.file.is_none() && args.args.is_empty() && !from_env {
        bail!(
            "nothing to run: give a config file (rsr run examples/gsm8k.yaml), or the work dir \
             to resume (rsr run work_dir=output/20261206_143052)"
        );
    }
    let (mut resolved, scoring) = resolve_checked(&sources, allow_changes)?;
    servers_from_file(&mut resolved.config.sampler)?;
    let root = resolved.work_dir().to_path_buf();
    let created = !root.exists();
    if created && sources.file.is_none() && args.args.iter().any(|a| a.starts_with("work_dir=")) {
        // Most likely a resume with a mistyped directory.
        let near = similar_work_dir(&root)
            .map(|d| format!(" (did you mean {}?)", d.display()))
            .unwrap_or_default();
        tracing::warn!(
            "{} is not a work dir{near}: this starts a new run there, with no config file",
            root.display()
        );
    }
    let wd = match task {
        Some(task) => WorkDir::for_task(&root, task)?,
        None => WorkDir::create_or_open(&root)?,
    };
    let log = wd.run_log_path();
    crate::logging::attach_run_log(&log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    if resolved.resumed {
        tracing::info!(work_dir = %root.display(), "resuming");
    }
    Ok(Run {
        resolved,
        scoring,
        wd,
        created: created && task.is_none(),
        judge: None,
        sandbox: None,
    })
}

/// `sampler.base_url` filled from `sampler.endpoints_file` (read again by
/// the client while it runs).
fn servers_from_file(s: &mut config::SamplerConfig) -> anyhow::Result<()> {
    let Some(path) = &s.endpoints_file else {
        return Ok(());
    };
    if s.base_url.is_some() {
        bail!(
            "sampler.base_url and sampler.endpoints_file are both set: give one (the file's URLs \
             are read again when it changes; to use base_url instead, add sampler.endpoints_file=null)"
        );
    }
    let urls = config::read_endpoints_file(path).map_err(anyhow::Error::msg)?;
    s.base_url = Some(config::Endpoints::Many(urls));
    Ok(())
}

/// The work dir beside `root` whose name is closest to its name, when one
/// is within two edits.
fn similar_work_dir(root: &Path) -> Option<PathBuf> {
    let name = root.file_name()?.to_str()?;
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::read_dir(parent)
        .ok()?
        .flatten()
        .filter(|e| WorkDir::has_saved_config(&e.path()))
        .filter_map(|e| {
            let other = e.file_name().to_str()?.to_string();
            let d = config::edit_distance(name, &other);
            (d <= 2).then(|| (d, root.with_file_name(other)))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| p)
}

/// Opens a sampled work dir with its saved config plus `overrides` (not
/// saved back; `allow_changes` lists the frozen keys they may change). Commands that write into it then take its lock
/// ([`WorkDir::locked`]).
pub fn open_saved(
    dir: &Path,
    overrides: &[String],
    allow_changes: &[&str],
) -> anyhow::Result<(WorkDir, Config, Scoring)> {
    let wd = WorkDir::open_prepared(dir)?;
    if !WorkDir::has_saved_config(dir) {
        bail!("{} has no config.yaml: not an rsr work dir", dir.display());
    }
    let mut all = vec![format!("work_dir={}", dir.display())];
    all.extend(overrides.iter().cloned());
    let (resolved, scoring) =
        resolve_checked(&Sources::from_process_env(None, all), allow_changes)?;
    let rollouts = crate::store::rollout::rollout_dir(wd.root());
    if !crate::store::rollout::has_parquet(&rollouts) {
        bail!(
            "{} has no rollouts yet: sample it first (rsr sample work_dir={}, or rsr run work_dir={}); nothing was written",
            dir.display(),
            dir.display(),
            dir.display()
        );
    }
    crate::logging::attach_run_log(&wd.run_log_path())?;
    Ok((wd, resolved.config, scoring))
}

/// Refuses overrides outside the key prefixes `command` takes (`rsr format`
/// takes `formatter` and `export.`): the others would be ignored.
pub fn check_overrides(
    command: &str,
    overrides: &[String],
    prefixes: &[&str],
) -> anyhow::Result<()> {
    for o in overrides {
        if !prefixes.iter().any(|p| o.starts_with(p)) {
            let taken: Vec<String> = prefixes
                .iter()
                .map(|p| format!("{}.*", p.trim_end_matches('.')))
                .collect();
            bail!(
                "`{o}`: rsr {command} takes only {} overrides",
                taken.join(" and ")
            );
        }
    }
    Ok(())
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

/// Logs the run's totals and its failures by cause; a run stopped early
/// ends with [`Interrupted`] or [`ServersFailing`].
pub fn finish(run: &Run, report: &SampleReport) -> anyhow::Result<()> {
    let c = &report.counters;
    tracing::info!(
        "sampled in {:.1} s: {} requests, {} rollouts ({} valid, {} passed, {} truncated), {} rollout(s) in failed requests, {} retries, {} part file(s)",
        report.elapsed.as_secs_f64(),
        c.requests,
        c.rollouts,
        c.valid,
        c.passed,
        c.truncated,
        c.errors,
        c.retries,
        report.parts
    );
    match &report.verdicts {
        Some(("judge", v)) => tracing::info!(
            "judged while sampling: {} verdicts ({} without a request: no response, unclosed thinking, rules or saved answers), {} judge requests ({} failed), {} prompt + {} completion judge tokens",
            v.verdicts,
            v.settled,
            v.requests,
            v.failed_requests,
            v.prompt_tokens,
            v.completion_tokens
        ),
        Some((name, v)) => tracing::info!(
            "{name} verdicts while sampling: {} ({} without a run: no code, another language, no tests or a saved verdict), {} program(s) run",
            v.verdicts,
            v.settled,
            v.requests
        ),
        None => {}
    }
    if !report.failures.is_empty() {
        let total: u64 = report.failures.iter().map(|g| g.requests).sum();
        tracing::warn!("{total} request(s) failed after their retries, by cause:");
        for g in &report.failures {
            tracing::warn!("  {}", g.line());
        }
    }
    let resume = resume(run);
    match &report.stopped {
        Some(Stop::Interrupted) => Err(Interrupted { resume }.into()),
        Some(Stop::Budget(stop)) => Err(budget_reached(&run.wd, stop.clone()).into()),
        Some(Stop::ServersFailing(message)) => Err(ServersFailing {
            message: message.clone(),
            resume,
        }
        .into()),
        Some(Stop::Paused) | None => Ok(()),
    }
}

/// The command that resumes `run`: `rsr run work_dir=W`, or for a sampling
/// task `rsr sample work_dir=W --task I/N` (the other tasks may still run).
fn resume(run: &Run) -> String {
    let dir = format!("work_dir={}", run.wd.root().display());
    match run.wd.task() {
        Some(task) => crate::formatter::card::shell_command(
            "rsr",
            &["sample".into(), dir, "--task".into(), task.to_string()],
        ),
        None => crate::formatter::card::shell_command("rsr", &["run".into(), dir]),
    }
}

/// The run's end when prompts were left unfinished by failures:
/// [`Unfinished`], after everything else was written.
pub fn unfinished(run: &Run, report: &SampleReport) -> anyhow::Result<()> {
    let prompts = report.counters.prompts_unfinished;
    if prompts == 0 {
        return Ok(());
    }
    Err(Unfinished {
        prompts,
        cause: report
            .failures
            .first()
            .map_or_else(|| "unknown".into(), |g| g.line()),
        resume: resume(run),
    }
    .into())
}

/// The scores a command reads: the label given, else the run's verifier's
/// when it scores after sampling (a model verifier or majority vote: its
/// verdicts live only in `scores/<label>/`), else the inline verdicts
/// (`None`).
pub fn scores_label<'a>(config: &'a Config, given: Option<&'a str>) -> Option<&'a str> {
    given.or_else(|| {
        crate::scoring::scored_after_sampling(&config.verifier.kind)
            .then(|| config.verifier.label())
    })
}

/// The scoring step after sampling for the verifiers that need it
/// ([`crate::scoring::Family::scores_after_sampling`]): the judge or the
/// vote.
pub async fn score_after_sampling(run: &crate::pipeline::Run) -> anyhow::Result<()> {
    let (wd, config) = (&run.wd, &run.resolved.config);
    match &run.scoring {
        Scoring::Model(spec) => judge(wd, config, spec, false, run.judge.as_ref()).await,
        Scoring::Majority(_) => majority(wd, config).await,
        Scoring::Code(spec) => code(wd, config, spec, run.sandbox.as_ref()).await,
        Scoring::Rule(_) => Ok(()),
    }
}

/// Scores the saved rollouts of `wd` by running their programs in
/// `sandbox` (opened here when `None`; saved verdicts are read back, not
/// run again) and logs what it found.
pub async fn code(
    wd: &WorkDir,
    config: &Config,
    spec: &crate::execute::CodeSpec,
    sandbox: Option<&crate::sandbox::Sandbox>,
) -> anyhow::Result<()> {
    let opened;
    let sandbox = match sandbox {
        Some(s) => s,
        None => {
            opened = crate::execute::open_sandbox(spec)?;
            &opened
        }
    };
    let r = crate::execute::rescore::score(wd, config, spec, sandbox).await?;
    fn join<K: std::fmt::Display>(m: &std::collections::BTreeMap<K, u64>) -> String {
        m.iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    tracing::info!(
        "scored {} rollouts with {} -> {} ({} shard file(s)): {} pass; {}; tests {}; {} program(s) run in {:.1} s, {} verdict(s) read from saved runs",
        r.scored,
        config.verifier.kind,
        crate::store::rollout::scores_dir(wd.root())
            .join(config.verifier.label())
            .display(),
        r.shards,
        r.passed,
        join(&r.outcomes),
        join(&r.statuses),
        r.runs,
        r.running.as_secs_f64(),
        r.cached
    );
    let no_tests = r.outcomes.get("no_tests").copied().unwrap_or(0);
    if no_tests > 0 {
        tracing::warn!(
            "{no_tests} of {} rollouts have no score: their prompt's gold holds no tests code-rlvr can read \
             (rsr sql WORK_DIR --scores {} \"SELECT id, detail FROM scores WHERE outcome = 'no_tests'\" says why; \
             the shapes it reads are in docs/verifiers.md)",
            r.scored,
            config.verifier.label()
        );
    }
    Ok(())
}

/// Labels the prompts of `wd` by majority vote and logs what it found.
pub async fn majority(wd: &WorkDir, config: &Config) -> anyhow::Result<()> {
    let r = crate::scoring::majority::label(wd, config).await?;
    let label = config.verifier.label();
    let pct = |a: u64, b: u64| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * a as f64 / b as f64)
        }
    };
    tracing::info!(
        "majority vote -> {}: {} of {} prompts labelled ({}); {} of {} scored rollouts agree with their label; {}",
        crate::store::rollout::scores_dir(wd.root())
            .join(label)
            .display(),
        r.labelled,
        r.prompts,
        pct(r.labelled, r.prompts),
        r.agree,
        r.scored,
        if r.with_gold > 0 {
            format!(
                "the label equals the gold answer for {} of the {} labelled prompts that have one ({})",
                r.label_is_gold,
                r.with_gold,
                pct(r.label_is_gold, r.with_gold)
            )
        } else {
            "no labelled prompt has a gold answer".to_string()
        }
    );
    Ok(())
}

/// Judges the saved rollouts of `wd` (the judge step) on `connection`
/// (opened here when `None`); a stop at a budget becomes [`BudgetReached`]
/// (exit status 5).
pub async fn judge(
    wd: &WorkDir,
    config: &Config,
    spec: &crate::judge::Spec,
    refresh: bool,
    connection: Option<&crate::scoring::judge::JudgeConnection>,
) -> anyhow::Result<()> {
    let report = crate::scoring::judge::judge(wd, config, spec, refresh, connection).await?;
    match report.budget_stop {
        Some(mut stop) => {
            stop.message = format!(
                "{}; {} of {} shard(s) scored",
                stop.message, report.shards, report.shards_total
            );
            Err(budget_reached(wd, stop).into())
        }
        None => Ok(()),
    }
}

/// [`BudgetReached`] for `stop`, with the command that resumes what
/// stopped: the same subcommand (`rsr run`/`rsr sample` resume from the
/// saved config, `rsr verify` needs its overrides again) with the budget
/// raised to the suggested value.
fn budget_reached(wd: &WorkDir, stop: crate::sampler::BudgetStop) -> BudgetReached {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut resume = resume_command(&argv, wd.root(), stop.key, &stop.suggested);
    if let Some(task) = wd.task() {
        resume.push_str(&format!(" --task {task}"));
    }
    BudgetReached {
        message: stop.message,
        key: stop.key,
        suggested: stop.suggested,
        resume,
    }
}

/// `rsr SUBCOMMAND ... KEY=VALUE` for the command line `argv` (without the
/// program name) that stopped in `work_dir`.
fn resume_command(argv: &[String], work_dir: &Path, key: &str, value: &str) -> String {
    let sub = argv
        .iter()
        .find(|a| !a.starts_with('-'))
        .map_or("run", String::as_str);
    let set = format!("{key}={value}");
    let mut words = vec!["rsr".to_string(), sub.to_string()];
    if sub == "verify" {
        // Everything after the subcommand but an earlier value of the key.
        let after = argv.iter().skip_while(|a| a.as_str() != "verify").skip(1);
        words.extend(
            after
                .filter(|a| !a.starts_with(&format!("{key}=")))
                .cloned(),
        );
    } else {
        words.push(format!("work_dir={}", work_dir.display()));
    }
    words.push(set);
    crate::formatter::card::shell_command(&words[0], &words[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(overrides: &[&str]) -> Sources {
        Sources {
            file: None,
            env: Vec::new(),
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn section_checks_name_the_key_of_the_module_that_owns_it() {
        let err = |overrides: &[&str]| {
            resolve_checked(&sources(overrides), &[])
                .unwrap_err()
                .to_string()
        };
        let e = err(&["formatter.0.type=best"]);
        assert!(e.contains("formatter.0.type"), "{e}");
        let e = err(&["verifier.type=math"]);
        assert!(e.contains("invalid `verifier.type`"), "{e}");
        assert!(
            e.contains("known verifiers: math-rlvr, mcq-rlvr, numeric"),
            "{e}"
        );
        let e = err(&["verifier.options.tolerance=-1"]);
        assert!(e.contains("invalid `verifier.options.tolerance`"), "{e}");
        let e = err(&["formatter.0.type=top_k"]);
        assert!(e.contains("invalid `formatter.0.k`"), "{e}");
        let e = err(&["data.dedup.threshold=0"]);
        assert!(e.contains("invalid `data.dedup.threshold`"), "{e}");
    }

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_resume_command_repeats_what_stopped_with_the_raised_budget() {
        let wd = Path::new("output/ds");
        assert_eq!(
            resume_command(
                &argv("run my/paid.yaml work_dir=output/ds budget.max_cost=0.5"),
                wd,
                "budget.max_cost",
                "5.9"
            ),
            "rsr run work_dir=output/ds budget.max_cost=5.9"
        );
        assert_eq!(
            resume_command(
                &argv(
                    "-q verify output/ds verifier.type=llm-judge budget.max_cost=0.2 judge.model=a b"
                ),
                wd,
                "budget.max_cost",
                "0.4"
            ),
            "rsr verify output/ds verifier.type=llm-judge judge.model=a b budget.max_cost=0.4"
        );
    }
}
