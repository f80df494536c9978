//! Unsent ops of a connection's state, in the order they were made: its
//! own, and groups' changes to their parts, which stay encoded once for
//! every member.

use std::sync::Arc;

use json_patch::PatchOperation;

use crate::mount::{MountedChange, MountedRun};

/// Ops that take the peer's copy of the state to the state.
#[derive(Debug, Default)]
pub(crate) struct OpRuns(Vec<Run>);

/// One run of [`OpRuns`].
#[derive(Debug)]
pub(crate) enum Run {
    /// Ops made for this connection, encoded when they go out.
    Own(Vec<PatchOperation>),
    /// A group's change to its part, encoded once for every member.
    Mounted(Arc<MountedChange>),
}

impl From<Vec<PatchOperation>> for Run {
    fn from(ops: Vec<PatchOperation>) -> Self {
        Run::Own(ops)
    }
}

impl From<MountedRun> for Run {
    fn from(run: MountedRun) -> Self {
        match run {
            MountedRun::Shared(mounted) => Run::Mounted(mounted),
            MountedRun::Whole(op) => Run::Own(vec![op]),
        }
    }
}

impl OpRuns {
    /// Runs holding `run` alone.
    pub(crate) fn of(run: impl Into<Run>) -> Self {
        let mut runs = OpRuns::default();
        runs.push(run);
        runs
    }

    /// Adds `run` after the others; own ops join the own ops before them.
    pub(crate) fn push(&mut self, run: impl Into<Run>) {
        match (self.0.last_mut(), run.into()) {
            (Some(Run::Own(last)), Run::Own(ops)) => last.extend(ops),
            (_, run) => self.0.push(run),
        }
    }

    /// Every op, in order, for a diff that must follow them.
    pub(crate) fn into_ops(self) -> Vec<PatchOperation> {
        let mut ops = Vec::new();
        for run in self.0 {
            match run {
                Run::Own(own) => ops.extend(own),
                Run::Mounted(mounted) => ops.extend_from_slice(mounted.ops()),
            }
        }
        ops
    }

    /// The runs, to send in order.
    pub(crate) fn into_runs(self) -> Vec<Run> {
        self.0
    }
}
