//! Per-prompt rollout policy: which rollouts a prompt requests next and when
//! it is finished. Pure state, shared by live sampling and by resume, which
//! replays saved rows through the same steps so that both decide alike.

use crate::config::Config;
pub use crate::formatter::Goal;
use crate::store::rollout::{ScoreMeaning, Validity};

/// The rollout policy of a run (`sampling.*` plus the formatters' goals).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Valid rollouts after which a prompt stops.
    pub max_rollouts: u32,
    /// Rollouts per step.
    pub step_size: u32,
    /// Steps per prompt at most.
    pub max_steps: u32,
    /// Stop once every goal is met.
    pub early_stop: bool,
    /// Which finished rollouts count.
    pub validity: Validity,
    /// One goal per formatter.
    pub goals: Vec<Goal>,
    /// Failed requests per prompt and run after which the prompt is left
    /// unfinished (for the next resume) instead of retried again.
    pub max_failed_attempts: u32,
}

impl Policy {
    /// The policy of a resolved config whose verdicts have `meaning` (the
    /// pass and fail scores the formatters' goals default to).
    pub fn from_config(c: &Config, meaning: &ScoreMeaning) -> Self {
        let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            max_rollouts: to_u32(c.sampling.max_rollouts.get()),
            step_size: to_u32(c.sampling.step_size.get()),
            max_steps: to_u32(c.sampling.max_steps.get()),
            early_stop: c.sampling.early_stop,
            validity: Validity {
                drop_truncated: c.sampler.drop_truncated,
            },
            goals: c
                .formatter
                .iter()
                .map(|f| crate::formatter::goal(f, meaning))
                .collect(),
            max_failed_attempts: to_u32(c.sampling.max_failed_attempts.get()),
        }
    }

    /// Why early stop cannot end a prompt before `max_rollouts`, when it
    /// cannot (early stop off is not a reason: the user chose it): the
    /// formatter whose goal is never met, or `None` when it can.
    pub fn cannot_stop_early(&self, names: &[&str]) -> Option<String> {
        if !self.early_stop || self.goals.is_empty() || self.max_rollouts <= self.step_size {
            return None;
        }
        let max = self.max_rollouts as usize;
        self.goals.iter().zip(names).find_map(|(g, name)| {
            g.never_met(max)
                .map(|why| format!("formatter `{name}` {why}"))
        })
    }

    /// Whether a finished rollout counts toward `max_rollouts`.
    pub fn is_valid(&self, has_response: bool, error: bool, truncated: bool) -> bool {
        self.validity.is_valid(has_response, error, truncated)
    }
}

/// One step's worth of rollouts to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    /// Step number, from 0.
    pub step: u32,
    /// `rollout_idx` of each requested rollout with its ordinal (the
    /// rollout's position among all the prompt has requested, which replay
    /// uses to pick a saved response).
    pub rollouts: Vec<(u32, u32)>,
}

/// Where one prompt stands.
///
/// A failed request is not an outcome: its rollouts keep their step and
/// `rollout_idx` and are requested again ([`PromptState::record_failure`]),
/// so failures never use up the prompt's steps. Only finished responses
/// ([`PromptState::record`]) move the policy.
#[derive(Debug, Clone, Default)]
pub struct PromptState {
    steps_started: u32,
    requested: u32,
    n_valid: u32,
    scores: Vec<f64>,
    exhausted: bool,
    failed_attempts: u32,
}

impl PromptState {
    /// Whether the prompt needs no more rollouts.
    pub fn finished(&self, p: &Policy) -> bool {
        self.exhausted
            || self.n_valid >= p.max_rollouts
            || self.steps_started >= p.max_steps
            || (p.early_stop
                && !p.goals.is_empty()
                && p.goals.iter().all(|g| g.satisfied(&self.scores)))
    }

    /// Starts the next step, or `None` when the prompt is finished. A step
    /// asks for at most the valid rollouts still missing; its rollouts are
    /// numbered `step * step_size + j`.
    pub fn start_step(&mut self, p: &Policy) -> Option<StepPlan> {
        if self.finished(p) {
            return None;
        }
        let step = self.steps_started;
        let want = p.step_size.min(p.max_rollouts - self.n_valid);
        let rollouts = (0..want)
            .map(|j| (step * p.step_size + j, self.requested + j))
            .collect();
        self.steps_started += 1;
        self.requested += want;
        Some(StepPlan { step, rollouts })
    }

    /// Records one finished rollout; `score` counts only when `valid`.
    pub fn record(&mut self, valid: bool, score: Option<f64>) {
        if valid {
            self.n_valid += 1;
            if let Some(s) = score {
                self.scores.push(s);
            }
        }
    }

    /// Records a failed request of this prompt. Returns whether its
    /// rollouts may be requested again in this run; `false` once the prompt
    /// has failed `max_failed_attempts` times, when it is left unfinished
    /// for the next resume.
    pub fn record_failure(&mut self, p: &Policy) -> bool {
        self.failed_attempts += 1;
        self.failed_attempts < p.max_failed_attempts
    }

    /// The backend has no more responses for this prompt (replay).
    pub fn mark_exhausted(&mut self) {
        self.exhausted = true;
    }

    /// Valid rollouts so far.
    pub fn n_valid(&self) -> u32 {
        self.n_valid
    }
}

/// A saved rollout, as resume needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SavedRollout {
    /// `rollout_idx`.
    pub rollout_idx: u32,
    /// `step`.
    pub step: u32,
    /// Counts toward `max_rollouts`.
    pub valid: bool,
    /// Inline score.
    pub score: Option<f64>,
    /// The request failed (the row records its error): the rollout is still
    /// to be requested.
    pub failed: bool,
}

/// Rebuilds a prompt's state from its saved rollouts by replaying the
/// policy step by step. Returns the state and the rollouts of the step that
/// was interrupted and must still be requested (empty when none). Failed
/// rows are left out: their rollouts are requested again.
pub fn resume(p: &Policy, mut saved: Vec<SavedRollout>) -> (PromptState, Option<StepPlan>) {
    let mut state = PromptState::default();
    saved.retain(|r| !r.failed);
    saved.sort_by_key(|r| (r.step, r.rollout_idx));
    let mut rows = saved.as_slice();
    while let Some(first) = rows.first() {
        let Some(plan) = state.start_step(p) else {
            break;
        };
        let in_step = rows.iter().take_while(|r| r.step == plan.step).count();
        let (this, rest) = rows.split_at(if first.step == plan.step { in_step } else { 0 });
        for r in this {
            state.record(r.valid, r.score);
        }
        rows = rest;
        let missing: Vec<(u32, u32)> = plan
            .rollouts
            .iter()
            .copied()
            .filter(|(idx, _)| !this.iter().any(|r| r.rollout_idx == *idx))
            .collect();
        if !missing.is_empty() {
            return (
                state,
                Some(StepPlan {
                    step: plan.step,
                    rollouts: missing,
                }),
            );
        }
    }
    (state, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(goals: Vec<Goal>) -> Policy {
        Policy {
            max_rollouts: 8,
            step_size: 4,
            max_steps: 4,
            early_stop: true,
            validity: Validity::default(),
            goals,
            max_failed_attempts: 3,
        }
    }

    fn sft() -> Goal {
        Goal::Passes { k: 1, pass: 1.0 }
    }

    #[test]
    fn steps_number_rollouts_and_stop_at_max_rollouts() {
        let p = policy(vec![]);
        let mut s = PromptState::default();
        let a = s.start_step(&p).unwrap();
        assert_eq!(a.rollouts, vec![(0, 0), (1, 1), (2, 2), (3, 3)]);
        for _ in 0..3 {
            s.record(true, Some(0.0));
        }
        s.record(false, None);
        let b = s.start_step(&p).unwrap();
        assert_eq!(b.step, 1);
        assert_eq!(b.rollouts, vec![(4, 4), (5, 5), (6, 6), (7, 7)]);
        for _ in 0..4 {
            s.record(true, Some(0.0));
        }
        // 7 valid: the next step asks only for the one still missing.
        let c = s.start_step(&p).unwrap();
        assert_eq!(c.rollouts, vec![(8, 8)]);
        s.record(true, Some(0.0));
        assert!(s.start_step(&p).is_none());
    }

    #[test]
    fn early_stop_per_formatter() {
        let mut s = PromptState::default();
        let p = policy(vec![sft()]);
        s.start_step(&p);
        s.record(true, Some(0.0));
        assert!(!s.finished(&p));
        s.record(true, Some(1.0));
        assert!(s.finished(&p));

        let dpo = policy(vec![Goal::PassAndFail {
            pass: 1.0,
            fail: 0.0,
            margin: 0.0,
        }]);
        let mut s = PromptState::default();
        s.start_step(&dpo);
        s.record(true, Some(1.0));
        s.record(true, Some(1.0));
        assert!(!s.finished(&dpo));
        s.record(true, Some(0.0));
        assert!(s.finished(&dpo));

        let top3 = policy(vec![Goal::Passes { k: 3, pass: 1.0 }, sft()]);
        let mut s = PromptState::default();
        s.start_step(&top3);
        s.record(true, Some(1.0));
        s.record(true, Some(1.0));
        assert!(!s.finished(&top3));
        s.record(true, Some(1.0));
        assert!(s.finished(&top3));

        // Invalid (truncated) passes do not count; `Never` keeps sampling.
        let never = policy(vec![sft(), Goal::Never]);
        let mut s = PromptState::default();
        s.start_step(&never);
        s.record(false, Some(1.0));
        s.record(true, Some(1.0));
        assert!(!s.finished(&never));
        assert!(s.finished(&policy(vec![sft()])));
    }

    #[test]
    fn reward_goals_use_the_label_thresholds_and_the_dpo_margin() {
        use crate::config::FormatterConfig;
        let reward = ScoreMeaning::split_at(0.0, None);
        let item = |yaml: &str| -> FormatterConfig { serde_yaml_ng::from_str(yaml).unwrap() };
        // sft on rewards: a reward of 0 or more passes.
        let sft = crate::formatter::goal(&item("type: sft"), &reward);
        assert!(sft.satisfied(&[-1.5, 0.25]));
        assert!(!sft.satisfied(&[-1.5, -0.25]));
        // dpo: highest against lowest reward, at least min_margin apart.
        let dpo = crate::formatter::goal(
            &item("type: dpo\npass_threshold: -1.0e9\nfail_threshold: 1.0e9\nmin_margin: 2.0"),
            &reward,
        );
        assert!(!dpo.satisfied(&[0.5]), "one response is no pair");
        assert!(!dpo.satisfied(&[0.5, -1.0]), "1.5 apart");
        assert!(dpo.satisfied(&[0.5, -1.0, 1.2]), "2.2 apart");
        // A rated judge passes from 7 of 10, not at 1.
        let rated = ScoreMeaning {
            pass: 6.0 / 9.0,
            fail: 3.0 / 9.0,
            max: Some(1.0),
        };
        let sft = crate::formatter::goal(&item("type: sft"), &rated);
        assert!(sft.satisfied(&[7.0 / 9.0]));
        // multi_sft without k needs every rollout: said before sampling.
        let mut p = policy(vec![
            sft.clone(),
            crate::formatter::goal(&item("type: multi_sft"), &rated),
        ]);
        let why = p.cannot_stop_early(&["sft", "multi_sft"]).unwrap();
        assert!(why.contains("`multi_sft` keeps every passing"), "{why}");
        p.goals.pop();
        assert_eq!(p.cannot_stop_early(&["sft"]), None);
    }

    #[test]
    fn max_steps_bounds_a_prompt_that_never_passes() {
        let p = policy(vec![sft()]);
        let mut s = PromptState::default();
        let mut steps = 0;
        while s.start_step(&p).is_some() {
            steps += 1;
            s.record(false, None);
        }
        assert_eq!(steps, 4);
    }

    fn saved(rollout_idx: u32, step: u32, valid: bool, score: f64) -> SavedRollout {
        SavedRollout {
            rollout_idx,
            step,
            valid,
            score: Some(score),
            failed: false,
        }
    }

    fn failed(rollout_idx: u32, step: u32) -> SavedRollout {
        SavedRollout {
            rollout_idx,
            step,
            valid: false,
            score: None,
            failed: true,
        }
    }

    #[test]
    fn failures_use_up_no_step_and_are_requested_again() {
        let p = policy(vec![sft()]);
        // A whole step failed, then the server came back: step 0 again.
        let (state, pending) = resume(&p, (0..4).map(|i| failed(i, 0)).collect());
        assert!(pending.is_none());
        let mut state = state;
        assert_eq!(state.start_step(&p).unwrap().step, 0);

        // Two rollouts of step 1 failed (one of them twice); the other two
        // and all of step 0 finished: only the failed ones are pending.
        let mut rows: Vec<_> = (0..4).map(|i| saved(i, 0, true, 0.0)).collect();
        rows.extend([
            saved(4, 1, true, 0.0),
            failed(5, 1),
            failed(5, 1),
            failed(6, 1),
            saved(7, 1, true, 0.0),
        ]);
        let (state, pending) = resume(&p, rows.clone());
        assert_eq!(state.n_valid(), 6);
        assert_eq!(
            pending.unwrap().rollouts,
            vec![(5, 5), (6, 6)],
            "failed rollouts keep their index"
        );

        // A failed rollout that later succeeded is not requested again.
        rows.extend([saved(5, 1, true, 0.0), saved(6, 1, true, 0.0)]);
        let (state, pending) = resume(&p, rows);
        assert!(pending.is_none());
        assert_eq!(state.n_valid(), 8);
        assert!(state.finished(&p));
    }

    #[test]
    fn failed_attempts_are_bounded_per_run() {
        let p = policy(vec![sft()]);
        let mut s = PromptState::default();
        s.start_step(&p);
        assert!(s.record_failure(&p));
        assert!(s.record_failure(&p));
        assert!(!s.record_failure(&p), "the third failure leaves it");
        assert!(!s.finished(&p), "left unfinished, not finished");
    }

    #[test]
    fn resume_requests_only_what_is_missing() {
        let p = policy(vec![sft()]);
        // Step 0 complete (all fail), step 1 interrupted after two rows.
        let rows = vec![
            saved(5, 1, true, 0.0),
            saved(0, 0, true, 0.0),
            saved(1, 0, false, 0.0),
            saved(2, 0, true, 0.0),
            saved(3, 0, true, 0.0),
            saved(7, 1, true, 0.0),
        ];
        let (state, pending) = resume(&p, rows);
        assert_eq!(state.n_valid(), 5);
        assert_eq!(
            pending,
            Some(StepPlan {
                step: 1,
                rollouts: vec![(4, 4), (6, 6)]
            })
        );

        // A prompt whose saved rows already satisfy the policy is finished.
        let (state, pending) = resume(
            &p,
            vec![
                saved(0, 0, true, 1.0),
                saved(1, 0, true, 0.0),
                saved(2, 0, true, 0.0),
                saved(3, 0, true, 0.0),
            ],
        );
        assert!(pending.is_none());
        assert!(state.finished(&p));

        // Between steps: nothing pending, the next step continues the numbering.
        let (mut state, pending) = resume(&p, (0..4).map(|i| saved(i, 0, true, 0.0)).collect());
        assert!(pending.is_none());
        assert_eq!(state.start_step(&p).unwrap().rollouts[0], (4, 4));
    }
}
