//! RFC 6902 operations decoded from a parsed JSON value (DATA frames and
//! 0.7 `state` messages), each op's value taken by move.

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, CopyOperation, MoveOperation, PatchOperation, RemoveOperation, ReplaceOperation,
    TestOperation,
};
use serde_json::{Map, Value};

/// RFC 6902 operations out of a decoded JSON value, each op's `value`
/// taken by move. `serde_json::from_value` into `PatchOperation` (an
/// internally tagged enum) first copies every op into serde's buffer and
/// then out of it: for a whole state of 100,000 keys, two more copies of
/// it. This takes and refuses what that does (a property test checks).
pub(crate) fn ops_from_value(payload: Value) -> Result<Vec<PatchOperation>, String> {
    match payload {
        Value::Array(items) => items.into_iter().map(op_from_value).collect(),
        other => Err(format!(
            "invalid type: {}, expected a sequence",
            kind(&other)
        )),
    }
}

fn op_from_value(item: Value) -> Result<PatchOperation, String> {
    let Value::Object(mut fields) = item else {
        return Err(format!(
            "invalid type: {}, expected an operation",
            kind(&item)
        ));
    };
    let op = match fields.remove("op") {
        Some(Value::String(op)) => op,
        Some(other) => return Err(format!("invalid type: {}, expected `op`", kind(&other))),
        None => return Err("missing field `op`".to_owned()),
    };
    let path = pointer(&fields, "path");
    Ok(match op.as_str() {
        "add" => PatchOperation::Add(AddOperation {
            path: path?,
            value: value(&mut fields)?,
        }),
        "remove" => PatchOperation::Remove(RemoveOperation { path: path? }),
        "replace" => PatchOperation::Replace(ReplaceOperation {
            path: path?,
            value: value(&mut fields)?,
        }),
        "move" => PatchOperation::Move(MoveOperation {
            from: pointer(&fields, "from")?,
            path: path?,
        }),
        "copy" => PatchOperation::Copy(CopyOperation {
            from: pointer(&fields, "from")?,
            path: path?,
        }),
        "test" => PatchOperation::Test(TestOperation {
            path: path?,
            value: value(&mut fields)?,
        }),
        other => {
            return Err(format!(
                "unknown variant `{}`",
                crate::truncate_utf8(other, 64)
            ))
        }
    })
}

fn pointer(fields: &Map<String, Value>, name: &str) -> Result<PointerBuf, String> {
    match fields.get(name) {
        Some(Value::String(text)) => {
            PointerBuf::parse(text.as_str()).map_err(|err| err.to_string())
        }
        Some(other) => Err(format!("invalid type: {}, expected `{name}`", kind(other))),
        None => Err(format!("missing field `{name}`")),
    }
}

fn value(fields: &mut Map<String, Value>) -> Result<Value, String> {
    fields
        .remove("value")
        .ok_or_else(|| "missing field `value`".to_owned())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::ops_from_value;
    use crate::tests::properties::arb_json;
    use crate::PatchOperation;

    /// A pointer-ish field: valid pointers, invalid ones, other types.
    fn arb_pointer() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("")),
            Just(json!("/a")),
            Just(json!("/a/0/b~1c~0")),
            Just(json!("a")),
            Just(json!("/bad~2escape")),
            Just(json!(1)),
            Just(json!(null)),
        ]
    }

    /// An op-shaped object: each field present or not, `op` of every kind
    /// and some that are none, extra fields.
    fn arb_op() -> impl Strategy<Value = Value> {
        let op = prop_oneof![
            Just(json!("add")),
            Just(json!("remove")),
            Just(json!("replace")),
            Just(json!("move")),
            Just(json!("copy")),
            Just(json!("test")),
            Just(json!("Add")),
            Just(json!("nope")),
            Just(json!(3)),
        ];
        (
            prop::option::of(op),
            prop::option::of(arb_pointer()),
            prop::option::of(arb_pointer()),
            prop::option::of(arb_json()),
            any::<bool>(),
        )
            .prop_map(|(op, path, from, value, extra)| {
                let mut fields = serde_json::Map::new();
                for (name, field) in [("op", op), ("path", path), ("from", from), ("value", value)]
                {
                    if let Some(field) = field {
                        fields.insert(name.to_owned(), field);
                    }
                }
                if extra {
                    fields.insert("extra".to_owned(), json!([1]));
                }
                Value::Object(fields)
            })
    }

    fn arb_payload() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => prop::collection::vec(prop_oneof![4 => arb_op(), 1 => arb_json()], 0..4)
                .prop_map(Value::Array),
            1 => arb_json(),
        ]
    }

    proptest! {
        /// It takes what serde's `from_value` takes, gives the same ops,
        /// and refuses what it refuses.
        #[test]
        fn ops_from_value_agrees_with_serde(payload in arb_payload()) {
            let ours = ops_from_value(payload.clone());
            let serde: Result<Vec<PatchOperation>, _> = serde_json::from_value(payload);
            match (ours, serde) {
                (Ok(ours), Ok(serde)) => prop_assert_eq!(ours, serde),
                (Err(_), Err(_)) => {}
                (ours, serde) => prop_assert!(false, "ours {:?}, serde {:?}", ours, serde),
            }
        }
    }
}
