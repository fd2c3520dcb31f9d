//! Watches and how events match them.

use crate::ops::{Event, EventKind};
use xenstore_wire::path;

/// One registered watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// The path as the client gave it (relative paths stay relative).
    pub given: String,
    /// The absolute path (or `@special`).
    pub path: String,
    /// The client's token.
    pub token: Vec<u8>,
    /// For a relative watch: the prefix (`/local/domain/N/`) to strip from
    /// event paths.
    pub relative_to: Option<String>,
}

impl Watch {
    /// The event path to report for `event`, if the event matches: the
    /// changed path when it lies below the watch, or the watch's own path
    /// when an ancestor of it was removed.
    pub fn matches(&self, event: &Event) -> Option<String> {
        let abs = if path::is_child(&event.path, &self.path) {
            event.path.clone()
        } else if event.kind == EventKind::Removed && path::is_child(&self.path, &event.path) {
            self.path.clone()
        } else {
            return None;
        };
        Some(self.present(&abs))
    }

    /// An absolute path as this watch's client expects it.
    pub fn present(&self, abs: &str) -> String {
        match &self.relative_to {
            Some(prefix) => abs.strip_prefix(prefix.as_str()).unwrap_or(abs).to_string(),
            None => abs.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(p: &str, kind: EventKind) -> Event {
        Event {
            path: p.into(),
            kind,
            perms: Vec::new(),
        }
    }

    #[test]
    fn matching() {
        let w = Watch {
            given: "a".into(),
            path: "/local/domain/1/a".into(),
            token: b"t".to_vec(),
            relative_to: Some("/local/domain/1/".into()),
        };
        assert_eq!(
            w.matches(&ev("/local/domain/1/a/b", EventKind::Changed)),
            Some("a/b".into())
        );
        assert_eq!(
            w.matches(&ev("/local/domain/1/ab", EventKind::Changed)),
            None
        );
        assert_eq!(w.matches(&ev("/local/domain/1", EventKind::Changed)), None);
        assert_eq!(
            w.matches(&ev("/local/domain/1", EventKind::Removed)),
            Some("a".into()),
            "parent removal reports the watched path"
        );
    }
}
