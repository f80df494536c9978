//! A node's copy of a document and where it stands.

use std::sync::Arc;

use juggler_driver::Value;

/// A document as this node has it: its state at a version of an epoch.
#[derive(Debug, Clone)]
pub struct View {
    /// The epoch: a new one each time the document is (re-)seeded.
    /// `None` before the node first caught up with Redis.
    pub epoch: Option<Arc<str>>,
    /// The version within the epoch.
    pub version: u64,
    /// The epoch and version of the copy this epoch was seeded from
    /// (`""` and 0 for a first seed).
    pub origin: (Arc<str>, u64),
    /// The document.
    pub state: Arc<Value>,
}

impl View {
    /// The copy of a node that has not caught up yet.
    pub(crate) fn initial(state: Arc<Value>) -> View {
        View {
            epoch: None,
            version: 0,
            origin: (Arc::from(""), 0),
            state,
        }
    }

    /// Whether this copy has (or provably had and kept) version `version`
    /// of `epoch`: `Some(true)` if so, `Some(false)` if that version was
    /// lost (this copy's epoch was re-seeded from an earlier copy of that
    /// epoch), `None` if this copy cannot tell yet.
    pub(crate) fn covers(&self, epoch: &str, version: u64) -> Option<bool> {
        match &self.epoch {
            Some(own) if &**own == epoch => (self.version >= version).then_some(true),
            Some(_) if &*self.origin.0 == epoch => Some(self.origin.1 >= version),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(epoch: &str, version: u64, origin: (&str, u64)) -> View {
        View {
            epoch: Some(Arc::from(epoch)),
            version,
            origin: (Arc::from(origin.0), origin.1),
            state: Arc::new(Value::Null),
        }
    }

    #[test]
    fn covers_tells_kept_lost_and_unknown() {
        assert_eq!(view("a", 5, ("", 0)).covers("a", 5), Some(true));
        assert_eq!(view("a", 4, ("", 0)).covers("a", 5), None);
        assert_eq!(view("b", 1, ("a", 7)).covers("a", 5), Some(true));
        assert_eq!(view("b", 9, ("a", 4)).covers("a", 5), Some(false));
        assert_eq!(view("c", 9, ("b", 4)).covers("a", 5), None);
        assert_eq!(View::initial(Arc::new(Value::Null)).covers("a", 1), None);
    }
}
