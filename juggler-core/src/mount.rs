//! Parts of a connection's state that groups own ("rooms"), each at a
//! JSON pointer beside the connection's own part.
//!
//! A group's change reaches a part as the group's ops, prefixed by the
//! part's pointer: applied in place (O(change)) and sent as a frame
//! encoded once per pointer for every member ([`MountedChange`]). The
//! connection's own changes keep their hands off the parts: a whole new
//! state gets the parts laid over it, and own ops that touch a part are
//! refused.

use std::sync::{Arc, OnceLock};

use json_patch::jsonptr::{Pointer, PointerBuf, Token};
use json_patch::{
    AddOperation, CopyOperation, MoveOperation, PatchOperation, RemoveOperation, ReplaceOperation,
    TestOperation,
};
use serde_json::Value;

use crate::frame::{encode, FrameKind};
use crate::path_edit::{nest, replace, set_op, PathError};
use crate::{SharedChange, UpdateError};

/// Why a group can't own a part of a connection's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// The pointer is not one, or an array on the way can't hold the part
    /// (it has no such index, or a scalar at it).
    #[error(transparent)]
    Path(#[from] PathError),
    /// `""` names the whole state: a group that owns all of it is joined
    /// whole, not at a pointer.
    #[error("a group's part can't be the whole state; join the group whole")]
    Root,
    /// Another group owns this part, one inside it, or one around it.
    #[error("{pointer:?} overlaps {owned:?}, which another group owns")]
    Overlaps {
        /// The pointer asked for.
        pointer: String,
        /// The part another group owns.
        owned: String,
    },
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// One group's part of a state.
#[derive(Debug, Clone)]
struct Mount {
    pointer: PointerBuf,
    owner: u64,
}

/// The parts of one connection's state that groups own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mounts {
    parts: Vec<Mount>,
}

impl Mounts {
    /// Whether no group owns a part.
    pub(crate) fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Gives `pointer` to group `owner`, whose state is `data`, and sets
    /// the part in `state`: the op that did, for the caller to send. The
    /// same group at the same pointer again just sets it again.
    pub(crate) fn mount(
        &mut self,
        state: &mut Arc<Value>,
        pointer: &str,
        owner: u64,
        data: Value,
    ) -> Result<PatchOperation, MountError> {
        let parsed =
            Pointer::parse(pointer).map_err(|_| PathError::InvalidPointer(pointer.to_owned()))?;
        if parsed.is_root() {
            return Err(MountError::Root);
        }
        let again = self
            .parts
            .iter()
            .any(|part| part.owner == owner && part.pointer == *parsed);
        if !again {
            if let Some(owned) = self
                .parts
                .iter()
                .find(|part| overlaps(&part.pointer, parsed))
            {
                return Err(MountError::Overlaps {
                    pointer: pointer.to_owned(),
                    owned: owned.pointer.to_string(),
                });
            }
        }
        let op = part_op(state, parsed, data)?;
        // `part_op` made the op for this very state, so it applies; were it
        // not to, nothing changes.
        crate::apply(Arc::make_mut(state), std::slice::from_ref(&op))
            .map_err(|_| PathError::NotAContainer(pointer.to_owned()))?;
        if !again {
            self.parts.push(Mount {
                pointer: parsed.to_buf(),
                owner,
            });
        }
        Ok(op)
    }

    /// Takes `pointer` back from group `owner`; whether it had it. The
    /// part's value stays, now the connection's own.
    pub(crate) fn unmount(&mut self, pointer: &str, owner: u64) -> bool {
        let before = self.parts.len();
        self.parts
            .retain(|part| !(part.owner == owner && part.pointer.as_str() == pointer));
        self.parts.len() != before
    }

    /// `data` with every part as `current` has it: what a connection's
    /// own new state becomes, so that replacing it keeps the groups'
    /// parts. Where `data` has no room for a part, a value on the way
    /// that is not an object (or an array holding the index) becomes an
    /// object.
    pub(crate) fn overlay(&self, current: &Value, mut data: Arc<Value>) -> Arc<Value> {
        for part in &self.parts {
            if let Ok(value) = part.pointer.resolve(current) {
                force_set(Arc::make_mut(&mut data), &part.pointer, value.clone());
            }
        }
        data
    }

    /// Refuses own ops that would change a group's part: an op at the
    /// part, inside it or around it.
    pub(crate) fn check_own(&self, ops: &[PatchOperation]) -> Result<(), UpdateError> {
        if self.parts.is_empty() {
            return Ok(());
        }
        for op in ops {
            let paths = [Some(op.path()), from_of(op)];
            for path in paths.into_iter().flatten() {
                if let Some(part) = self.parts.iter().find(|part| overlaps(&part.pointer, path)) {
                    return Err(UpdateError::Owned {
                        path: path.to_string(),
                        part: part.pointer.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The one op that sets the part at `pointer` in `state` to `value`: as
/// [`set_op`], but a value on the way that is not an object or an array
/// (a new connection's `null` state) becomes an object holding the part,
/// as `hat.json.set_` makes one.
fn part_op(state: &Value, pointer: &Pointer, value: Value) -> Result<PatchOperation, PathError> {
    let tokens: Vec<Token<'_>> = pointer.tokens().collect();
    let mut here = state;
    for (depth, token) in tokens.iter().enumerate() {
        match here {
            Value::Object(members) => match members.get(token.decoded().as_ref()) {
                Some(next) => here = next,
                None => break,
            },
            Value::Array(_) => break,
            _ => {
                let at = PointerBuf::from_tokens(tokens[..depth].iter().cloned());
                return Ok(replace(at, nest(&tokens[depth..], value)));
            }
        }
    }
    set_op(state, pointer.as_str(), value)
}

/// Sets `pointer` in `doc` to `value`, making room on the way.
fn force_set(doc: &mut Value, pointer: &Pointer, value: Value) {
    let count = pointer.count();
    let mut here = doc;
    for (depth, token) in pointer.tokens().enumerate() {
        // An array's element, or its end for the last token.
        let index = match &*here {
            Value::Array(items) => token
                .to_index()
                .ok()
                .and_then(|index| index.for_len_incl(items.len()).ok())
                .filter(|index| *index < items.len() || depth + 1 == count),
            _ => None,
        };
        here = match (here, index) {
            (Value::Array(items), Some(index)) => {
                if index == items.len() {
                    items.push(Value::Null);
                }
                &mut items[index]
            }
            (here, _) => {
                if !here.is_object() {
                    *here = Value::Object(Default::default());
                }
                let Value::Object(members) = here else {
                    return;
                };
                members
                    .entry(token.decoded().into_owned())
                    .or_insert(Value::Null)
            }
        };
    }
    *here = value;
}

/// Whether one of the two pointers is the other or inside it.
fn overlaps(a: &Pointer, b: &Pointer) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn from_of(op: &PatchOperation) -> Option<&Pointer> {
    match op {
        PatchOperation::Move(op) => Some(&op.from),
        PatchOperation::Copy(op) => Some(&op.from),
        _ => None,
    }
}

/// One [`SharedChange`] as a part at one pointer sees it: the group's ops
/// under the pointer, and their frames, each encoded once for every
/// member with the part there.
#[derive(Debug)]
pub(crate) struct MountedChange {
    ops: Vec<PatchOperation>,
    data_frame: OnceLock<Arc<str>>,
    state_message: OnceLock<Arc<str>>,
}

impl MountedChange {
    /// The change's `ops` with `pointer` before every path.
    pub(crate) fn new(pointer: &Pointer, ops: &[PatchOperation]) -> Self {
        MountedChange {
            ops: ops.iter().map(|op| under(pointer, op)).collect(),
            data_frame: OnceLock::new(),
            state_message: OnceLock::new(),
        }
    }

    pub(crate) fn ops(&self) -> &[PatchOperation] {
        &self.ops
    }

    /// The 0.5 DATA frame.
    pub(crate) fn data_frame(&self) -> &Arc<str> {
        self.data_frame
            .get_or_init(|| encode(FrameKind::Data, &self.ops).into())
    }

    /// The 0.6/0.7 `state` message.
    pub(crate) fn state_message(&self) -> &Arc<str> {
        self.state_message
            .get_or_init(|| crate::v07::message::encode_state(&self.ops).into())
    }

    /// Whether every op is `add`, `remove` or `replace`, all that a
    /// 0.6/0.7 connection may send.
    pub(crate) fn is_plain(&self) -> bool {
        crate::v07::message::plain_ops(&self.ops)
    }
}

fn under(pointer: &Pointer, op: &PatchOperation) -> PatchOperation {
    let at = |path: &PointerBuf| pointer.concat(path);
    match op {
        PatchOperation::Add(op) => PatchOperation::Add(AddOperation {
            path: at(&op.path),
            value: op.value.clone(),
        }),
        PatchOperation::Remove(op) => {
            PatchOperation::Remove(RemoveOperation { path: at(&op.path) })
        }
        PatchOperation::Replace(op) => PatchOperation::Replace(ReplaceOperation {
            path: at(&op.path),
            value: op.value.clone(),
        }),
        PatchOperation::Move(op) => PatchOperation::Move(MoveOperation {
            from: at(&op.from),
            path: at(&op.path),
        }),
        PatchOperation::Copy(op) => PatchOperation::Copy(CopyOperation {
            from: at(&op.from),
            path: at(&op.path),
        }),
        PatchOperation::Test(op) => PatchOperation::Test(TestOperation {
            path: at(&op.path),
            value: op.value.clone(),
        }),
    }
}

/// What a group's change does to one member's state.
#[derive(Debug)]
pub(crate) enum MountedRun {
    /// The group's ops, applied; their frames are encoded once for all.
    Shared(Arc<MountedChange>),
    /// The part did not hold what the group had (or, for a connection
    /// that may send only plain ops, the ops were not): it was set whole
    /// by this one op, applied.
    Whole(PatchOperation),
}

/// Applies `change`, a change of the group that owns `pointer`, to
/// `state`, in place: the group's ops under `pointer` when they apply
/// (and are plain, if `plain_only`), else the whole new part. `None` when
/// the change changed nothing.
pub(crate) fn apply_mounted(
    state: &mut Arc<Value>,
    pointer: &str,
    change: &SharedChange,
    plain_only: bool,
) -> Result<Option<MountedRun>, UpdateError> {
    let Some(mounted) = change.mounted_at(pointer)? else {
        return Ok(None);
    };
    if !plain_only || mounted.is_plain() {
        // All or nothing, so a failure leaves `state` as it was.
        if crate::apply(Arc::make_mut(state), mounted.ops()).is_ok() {
            return Ok(Some(MountedRun::Shared(mounted)));
        }
    }
    let op = set_op(state, pointer, Value::clone(change.data()))
        .map_err(|err| UpdateError::Patch(err.to_string()))?;
    crate::apply(Arc::make_mut(state), std::slice::from_ref(&op))
        .map_err(|err| UpdateError::Patch(err.to_string()))?;
    Ok(Some(MountedRun::Whole(op)))
}
