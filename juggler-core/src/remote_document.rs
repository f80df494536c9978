//! The peer's document as this side keeps it: whole new documents and
//! patches taken whole or not at all, within a budget in bytes and the
//! depth limit.
//!
//! Both generations keep one (the 0.5 engine's remote data, the 0.6/0.7
//! client's server state), so the rules a hostile peer meets are the same
//! for both.

use std::sync::Arc;

use json_patch::PatchOperation;
use serde_json::Value;

use crate::depth::{bound_after, depth, MAX_DEPTH};
use crate::patch::TOO_LARGE;
use crate::ProtocolError;

/// A peer's document, with what it costs and how deep it may nest.
#[derive(Debug)]
pub(crate) struct RemoteDocument {
    value: Arc<Value>,
    /// An estimate of what `value` costs in memory (see `apply_within`).
    cost: usize,
    /// An upper bound of how deep `value` nests (see `depth`).
    depth: usize,
}

impl RemoteDocument {
    /// `null`.
    pub(crate) fn new() -> Self {
        RemoteDocument {
            value: Arc::new(Value::Null),
            cost: crate::value_cost(&Value::Null),
            depth: 0,
        }
    }

    /// The document as last changed.
    pub(crate) fn value(&self) -> &Arc<Value> {
        &self.value
    }

    /// What the document costs, as counted against the budget.
    pub(crate) fn cost(&self) -> usize {
        self.cost
    }

    /// Applies the peer's `ops`, all or none: refused when the document
    /// would cost more than `limit` bytes or nest deeper than
    /// [`MAX_DEPTH`], or when an op fails. A whole new document (one
    /// `replace` of the root: a first sync, a collapsed run) is measured in
    /// one walk and moved in rather than copied out of its op.
    pub(crate) fn apply(
        &mut self,
        ops: &mut [PatchOperation],
        limit: usize,
    ) -> Result<(), ProtocolError> {
        let too_large = |size| ProtocolError::RemoteDataTooLarge { size, limit };
        let too_deep = || {
            ProtocolError::PatchFailed(format!(
                "remote data would nest deeper than {MAX_DEPTH} levels"
            ))
        };
        if let [PatchOperation::Replace(op)] = ops {
            if op.path.is_root() {
                let (size, depth) = crate::cost::cost_and_depth(&op.value);
                if depth > MAX_DEPTH {
                    return Err(too_deep());
                }
                if size > limit {
                    return Err(too_large(size));
                }
                self.value = Arc::new(std::mem::take(&mut op.value));
                self.cost = size;
                self.depth = depth;
                return Ok(());
            }
        }
        let bound = match bound_after(self.depth, ops) {
            Some(bound) => bound,
            // The running bound is loose; count the real depth once before
            // refusing.
            None => {
                self.depth = depth(&self.value);
                bound_after(self.depth, ops).ok_or_else(too_deep)?
            }
        };
        crate::apply_within(Arc::make_mut(&mut self.value), ops, &mut self.cost, limit).map_err(
            |err| match err.reason {
                TOO_LARGE => too_large(limit.saturating_add(1)),
                _ => ProtocolError::PatchFailed(err.to_string()),
            },
        )?;
        self.depth = bound;
        Ok(())
    }
}
