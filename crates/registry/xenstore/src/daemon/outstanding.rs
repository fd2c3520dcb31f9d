//! What each guest domain has outstanding, as xenstored counts it: a
//! request stays outstanding until its reply is written *and* every watch
//! event it caused for a privileged connection is written. A domain at its
//! `outstanding` quota is not read. So a guest that makes a busy dom0
//! backend's watches fire is slowed down to the backend's pace, and the
//! events it can have queued are bounded by its own quota — the backend is
//! never dropped for them. (Events for other guests do not count: a guest
//! that does not read its own events must not stall another; it is
//! disconnected at `--max-queue` instead.)

use std::collections::HashMap;

#[derive(Debug, Default)]
pub(super) struct Outstanding {
    /// Token → (domain, messages not yet written).
    tokens: HashMap<u64, (u16, u32)>,
    per_domain: HashMap<u16, u32>,
    next: u64,
}

impl Outstanding {
    /// A request of `domid` that produced `messages` messages to wait for;
    /// `None` if there are none.
    pub fn open(&mut self, domid: u16, messages: u32) -> Option<u64> {
        if messages == 0 {
            return None;
        }
        self.next += 1;
        self.tokens.insert(self.next, (domid, messages));
        *self.per_domain.entry(domid).or_insert(0) += 1;
        Some(self.next)
    }

    /// One message of the request `token` was written (or its recipient
    /// went away).
    pub fn done(&mut self, token: u64) {
        let Some((domid, left)) = self.tokens.get_mut(&token) else {
            return;
        };
        *left -= 1;
        if *left == 0 {
            let domid = *domid;
            self.tokens.remove(&token);
            if let Some(n) = self.per_domain.get_mut(&domid) {
                *n -= 1;
                if *n == 0 {
                    self.per_domain.remove(&domid);
                }
            }
        }
    }

    /// Requests `domid` has outstanding.
    pub fn of(&self, domid: u16) -> u32 {
        self.per_domain.get(&domid).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_outstanding_until_its_last_message() {
        let mut o = Outstanding::default();
        assert_eq!(o.open(5, 0), None);
        let a = o.open(5, 2).unwrap();
        let b = o.open(5, 1).unwrap();
        let c = o.open(6, 1).unwrap();
        assert_eq!((o.of(5), o.of(6)), (2, 1));
        o.done(a);
        assert_eq!(o.of(5), 2, "one of two written");
        o.done(a);
        o.done(b);
        o.done(c);
        assert_eq!((o.of(5), o.of(6)), (0, 0));
        o.done(c);
        assert_eq!(o.of(6), 0, "a finished token is ignored");
    }
}
