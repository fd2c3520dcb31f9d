//! Property test: any sequence of requests from several connections, valid or
//! not, keeps the tree consistent, never panics, and answers every request
//! exactly once with its request id.
#![allow(clippy::unwrap_used)]

use pcibox_xenstore::wire::{HeaderRepr, Packet, Perm, PermKind, Request};
use pcibox_xenstore::{Output, Quotas, Store};
use proptest::prelude::*;

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|c| format!("/{}", c.join("/")))
}

#[derive(Debug, Clone)]
enum Op {
    Write(String, Vec<u8>),
    Mkdir(String),
    Rm(String),
    Read(String),
    Dir(String),
    Perms(String, u16, bool),
    Watch(String),
    Start,
    End(bool),
    Garbage(u32, Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (path(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(p, v)| Op::Write(p, v)),
        path().prop_map(Op::Mkdir),
        path().prop_map(Op::Rm),
        path().prop_map(Op::Read),
        path().prop_map(Op::Dir),
        (path(), 0u16..3, any::<bool>()).prop_map(|(p, d, b)| Op::Perms(p, d, b)),
        path().prop_map(Op::Watch),
        Just(Op::Start),
        any::<bool>().prop_map(Op::End),
        (0u32..30, prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(t, b)| Op::Garbage(t, b)),
    ]
}

proptest! {
    #[test]
    fn random_requests_keep_the_tree_consistent(ops in prop::collection::vec((0usize..3, op()), 1..60)) {
        let quotas = Quotas { nodes: 8, ..Quotas::default() };
        let mut store = Store::new(quotas);
        let conns = [store.connect(0, true), store.connect(1, false), store.connect(2, false)];
        let mut tx = [0u32; 3];
        for (i, (who, op)) in ops.iter().enumerate() {
            let c = conns[*who];
            let req_id = i as u32 + 1;
            let mut tx_id = tx[*who];
            let owned;
            let (ty, payload) = match op {
                Op::Garbage(t, b) => (*t, b.clone()),
                op => {
                    let r = match op {
                        Op::Write(p, v) => Request::Write { path: p, value: v },
                        Op::Mkdir(p) => Request::Mkdir { path: p },
                        Op::Rm(p) => Request::Rm { path: p },
                        Op::Read(p) => Request::Read { path: p },
                        Op::Dir(p) => Request::Directory { path: p },
                        Op::Perms(p, d, b) => {
                            owned = vec![Perm { kind: if *b { PermKind::Both } else { PermKind::Read }, domid: *d }];
                            Request::SetPerms { path: p, perms: owned.clone() }
                        }
                        Op::Watch(p) => Request::Watch { path: p, token: b"t" },
                        Op::Start => { tx_id = 0; Request::TransactionStart }
                        Op::End(commit) => { tx[*who] = 0; Request::TransactionEnd { commit: *commit } }
                        Op::Garbage(..) => unreachable!(),
                    };
                    (r.msg_type() as u32, r.payload())
                }
            };
            let h = HeaderRepr { msg_type: ty, req_id, tx_id, len: payload.len() as u32 };
            let mut out = Output::default();
            store.handle(c, &h, &payload, &mut out);
            let replies: Vec<_> = out.messages.iter().filter(|m| {
                let p = Packet::new_checked(&m.bytes[..]).unwrap();
                m.to == c && p.header().req_id() == req_id && p.header().msg_type() != 15
            }).collect();
            prop_assert_eq!(replies.len(), 1);
            if matches!(op, Op::Start) {
                let p = Packet::new_checked(&replies[0].bytes[..]).unwrap();
                if p.header().msg_type() == 6 {
                    let s = std::str::from_utf8(&p.payload()[..p.payload().len() - 1]).unwrap();
                    tx[*who] = s.parse().unwrap();
                }
            }
            prop_assert_eq!(store.tree().check(), Ok(()));
        }
    }
}
