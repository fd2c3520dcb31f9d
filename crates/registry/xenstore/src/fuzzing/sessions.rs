//! The entry point of the `xenstore_sessions` fuzz target (and of the
//! stable test replaying its corpus): the input is decoded into requests
//! from six interleaved connections — two privileged (dom0), two of domain
//! 1, one each of domains 2 and 3 — with transactions they keep open,
//! watches, domains introduced and released, targets, reconnections, raw
//! messages, and a log that can run out of room. Every input is a valid
//! session, so the fuzzer explores interleavings rather than framing.
//!
//! Input: steps of `op: u8` (connection: low 3 bits mod 6; request: high 5
//! bits), then the bytes that request takes (paths, values, transaction
//! slot…); a short input ends the session.
//!
//! Checked after every step: no panic; each request gets exactly one reply,
//! with its request id, and every message parses; no message waits for a
//! generation not yet reached; the tree keeps its invariants; a guest's
//! request never takes it past its node quota; and a guest told `ENOENT`
//! outside a transaction could indeed look where the node would be (else
//! it must be `EACCES`: nothing leaks about what exists).

use crate::node::Caller;
use crate::store::{ConnId, Output, Space, Store};
use crate::Quotas;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use xenstore_wire::{path, Errno, HeaderRepr, MsgType, Packet, Perm, PermKind, Reply, Request};

/// The connections: (domain, privileged).
const CONNS: [(u16, bool); 6] = [
    (0, true),
    (0, true),
    (1, false),
    (1, false),
    (2, false),
    (3, false),
];

/// Room in the log, shared with the session (a step can run it out).
#[derive(Debug, Clone)]
struct Room(Arc<AtomicUsize>);

impl Space for Room {
    fn reserve(&mut self, bytes: usize) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }
}

/// The input, read a byte at a time (zeros once it runs out).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = usize::from(self.byte()).min(max).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b.to_vec()
    }

    /// A path: absolute under `/`, a domain's home or `/tool`, or relative;
    /// up to three components from a small set (so paths meet).
    fn path(&mut self) -> String {
        let (a, b) = (self.byte(), self.byte());
        let roots = ["/", "/local/domain/1/", "/local/domain/2/", ""];
        let names = ["a", "b", "c", "tool", "local", "domain", "1", "x"];
        let mut p = roots[usize::from(a & 3)].to_string();
        let depth = usize::from((a >> 2) & 3);
        let picks = [(a >> 4) & 7, b & 7, (b >> 3) & 7];
        for (i, pick) in picks.iter().take(depth).enumerate() {
            if i > 0 {
                p.push('/');
            }
            p.push_str(names[usize::from(*pick)]);
        }
        if p.is_empty() {
            p.push('a');
        }
        if p.len() > 1 {
            p = p.trim_end_matches('/').to_string();
        }
        p
    }

    fn perms(&mut self) -> Vec<Perm> {
        let b = self.byte();
        let kind = |k: u8| {
            [
                PermKind::None,
                PermKind::Read,
                PermKind::Write,
                PermKind::Both,
            ][usize::from(k & 3)]
        };
        let mut v = vec![Perm {
            kind: kind(b),
            domid: u16::from((b >> 2) & 3),
        }];
        for i in 0..(b >> 4) & 3 {
            let e = self.byte();
            v.push(Perm {
                kind: kind(e),
                domid: u16::from((e >> 2) & 3) + u16::from(i),
            });
        }
        v
    }
}

struct Conn {
    id: ConnId,
    domid: u16,
    privileged: bool,
    /// Open transactions, by slot.
    txs: [u32; 3],
}

struct Session {
    store: Store,
    conns: Vec<Conn>,
    room: Room,
    next_req: u32,
}

/// What a step asked, for the checks.
enum Asked {
    /// A node request outside a transaction: the path, and whether it needs
    /// write (else read) access.
    Node(String, bool),
    Other,
}

impl Session {
    fn new() -> Session {
        let quotas = Quotas {
            nodes: 12,
            watches: 4,
            transactions: 2,
            transaction_nodes: 16,
            ..Quotas::default()
        };
        let mut store = Store::new(quotas);
        let room = Room(Arc::new(AtomicUsize::new(usize::MAX)));
        store.set_space(Box::new(room.clone()));
        let mut out = Output::default();
        for d in 1..=3 {
            store.introduce(d, &mut out);
        }
        let conns = CONNS
            .iter()
            .map(|&(domid, privileged)| Conn {
                id: store.connect(domid, privileged),
                domid,
                privileged,
                txs: [0; 3],
            })
            .collect();
        Session {
            store,
            conns,
            room,
            next_req: 1,
        }
    }

    /// Sends one request; returns the reply (`Err` for an error reply).
    fn send(&mut self, c: usize, tx: u32, ty: u32, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        let req_id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        let id = self.conns[c].id;
        let h = HeaderRepr {
            msg_type: ty,
            req_id,
            tx_id: tx,
            len: payload.len() as u32,
        };
        let mut out = Output::default();
        self.store.handle(id, &h, payload, &mut out);
        let newest = self.store.tree().generation() - 1;
        let mut reply = None;
        for m in &out.messages {
            let p = Packet::new_checked(&m.bytes[..]).expect("a well-formed packet");
            assert_eq!(p.total_len(), m.bytes.len(), "one message per entry");
            assert!(
                m.needs <= newest,
                "waits for generation {} > {newest}",
                m.needs
            );
            let rh = HeaderRepr::parse(&p.header());
            let r = Reply::parse(rh.msg_type, p.payload()).expect("a parseable reply");
            if m.to == id && rh.msg_type != MsgType::WatchEvent as u32 {
                assert_eq!(rh.req_id, req_id, "the reply names its request");
                assert!(reply.is_none(), "one reply per request");
                reply = Some(match r {
                    Reply::Error(e) => Err(e),
                    _ => Ok(p.payload().to_vec()),
                });
            }
        }
        // A released domain's connections are closed: open them again.
        for closed in out.close {
            if let Some(c) = self.conns.iter_mut().find(|c| c.id == closed) {
                c.id = self.store.connect(c.domid, c.privileged);
                c.txs = [0; 3];
            }
        }
        if self.conns[c].id != id {
            return reply.unwrap_or(Err(Errno::EIO));
        }
        reply.expect("a reply")
    }

    fn caller(&self, c: usize) -> Caller {
        let conn = &self.conns[c];
        Caller {
            domid: conn.domid,
            privileged: conn.privileged,
            target: self.store.domains().get(&conn.domid).and_then(|d| d.target),
        }
    }

    /// One step; returns `false` when the input has run out.
    fn step(&mut self, input: &mut Input<'_>) -> bool {
        if input.0.is_empty() {
            return false;
        }
        let op = input.byte();
        let c = usize::from(op & 7) % CONNS.len();
        let slot = input.byte();
        let tx = match slot & 3 {
            0 => 0,
            s => self.conns[c].txs[usize::from(s - 1)],
        };
        let tx = if slot & 0x80 != 0 {
            u32::from(slot)
        } else {
            tx
        };
        let caller = self.caller(c);
        let owned = self.store.tree().owned_by(caller.domid);
        let mut asked = Asked::Other;
        let nul = |s: &str| {
            let mut v = s.as_bytes().to_vec();
            v.push(0);
            v
        };
        let r = match op >> 3 {
            0 | 1 => {
                let p = input.path();
                let v = input.bytes(64);
                let mut payload = nul(&p);
                payload.extend(v);
                self.send(c, tx, MsgType::Write as u32, &payload)
            }
            2 => self.send(c, tx, MsgType::Mkdir as u32, &nul(&input.path())),
            3 => {
                let p = input.path();
                asked = Asked::Node(p.clone(), true);
                self.send(c, tx, MsgType::Rm as u32, &nul(&p))
            }
            4 | 5 => {
                let p = input.path();
                asked = Asked::Node(p.clone(), false);
                self.send(c, tx, MsgType::Read as u32, &nul(&p))
            }
            6 => {
                let p = input.path();
                asked = Asked::Node(p.clone(), false);
                self.send(c, tx, MsgType::Directory as u32, &nul(&p))
            }
            7 => {
                let p = input.path();
                asked = Asked::Node(p.clone(), false);
                let r = Request::DirectoryPart {
                    path: &p,
                    offset: u32::from(input.byte() & 7),
                };
                self.send(c, tx, r.msg_type() as u32, &r.payload())
            }
            8 => {
                let p = input.path();
                asked = Asked::Node(p.clone(), false);
                self.send(c, tx, MsgType::GetPerms as u32, &nul(&p))
            }
            9 => {
                let p = input.path();
                asked = Asked::Node(p.clone(), true);
                let r = Request::SetPerms {
                    path: &p,
                    perms: input.perms(),
                };
                self.send(c, tx, r.msg_type() as u32, &r.payload())
            }
            10 | 11 => {
                let (p, t) = (input.path(), input.byte() & 3);
                let ty = if op >> 3 == 10 {
                    MsgType::Watch
                } else {
                    MsgType::Unwatch
                };
                let w = if t == 3 {
                    "@releaseDomain".to_string()
                } else {
                    p
                };
                self.send(c, 0, ty as u32, format!("{w}\0t{t}\0").as_bytes())
            }
            12 | 13 => {
                let r = self.send(c, tx, MsgType::TransactionStart as u32, b"\0");
                if let Ok(id) = &r {
                    let text = String::from_utf8_lossy(id.strip_suffix(b"\0").unwrap_or(id));
                    let id: u32 = text.parse().expect("a transaction id");
                    let free = self.conns[c].txs.iter().position(|t| *t == 0);
                    self.conns[c].txs[free.unwrap_or(usize::from(slot >> 2) % 3)] = id;
                }
                r
            }
            14..=16 => {
                let commit = op >> 3 != 16;
                let r = self.send(
                    c,
                    tx,
                    MsgType::TransactionEnd as u32,
                    if commit { b"T\0" } else { b"F\0" },
                );
                for t in self.conns[c].txs.iter_mut().filter(|t| **t == tx) {
                    *t = 0;
                }
                r
            }
            17 => {
                let d = u16::from(input.byte() & 3) + 1;
                let r = Request::Introduce {
                    domid: d,
                    mfn: 0,
                    evtchn: 0,
                };
                self.send(c, 0, r.msg_type() as u32, &r.payload())
            }
            18 => {
                let r = Request::Release {
                    domid: u16::from(input.byte() & 3) + 1,
                };
                self.send(c, 0, r.msg_type() as u32, &r.payload())
            }
            19 => {
                let b = input.byte();
                let r = Request::SetTarget {
                    domid: u16::from(b & 3),
                    target: u16::from((b >> 2) & 3),
                };
                self.send(c, 0, r.msg_type() as u32, &r.payload())
            }
            20 => {
                let r = self.send(c, 0, MsgType::ResetWatches as u32, b"");
                if r.is_ok() {
                    self.conns[c].txs = [0; 3];
                }
                r
            }
            21 => {
                let conn = &mut self.conns[c];
                self.store.disconnect(conn.id);
                conn.id = self.store.connect(conn.domid, conn.privileged);
                conn.txs = [0; 3];
                Ok(Vec::new())
            }
            22 => {
                self.room
                    .0
                    .store(usize::from(input.byte()) * 16, Ordering::Relaxed);
                Ok(Vec::new())
            }
            23 => {
                self.room.0.store(usize::MAX, Ordering::Relaxed);
                Ok(Vec::new())
            }
            24 => {
                let r = Request::SetQuota {
                    domid: Some(u16::from(input.byte() & 3)),
                    name: "nodes",
                    value: u32::from(input.byte() & 31),
                };
                self.send(c, 0, r.msg_type() as u32, &r.payload())
            }
            _ => {
                let ty = u32::from(input.byte() & 31);
                let payload = input.bytes(96);
                self.send(c, tx, ty, &payload)
            }
        };
        if let Err(e) = self.store.tree().check() {
            panic!("tree invariant broken: {e}");
        }
        if !caller.privileged {
            let now = self.store.tree().owned_by(caller.domid);
            let quota = self.store.quotas_for(caller.domid).nodes;
            assert!(
                now <= owned || now <= quota,
                "domain {} went from {owned} to {now} nodes, past its quota {quota}",
                caller.domid
            );
            if let (Asked::Node(p, write), Err(Errno::ENOENT), 0) = (asked, r, tx) {
                self.check_enoent(caller, &p, write);
            }
        }
        true
    }

    /// A guest told `ENOENT` could look where the node would be.
    fn check_enoent(&self, caller: Caller, p: &str, write: bool) {
        let abs = if path::is_absolute(p) {
            p.to_string()
        } else {
            format!("{}/{p}", path::domain_home(caller.domid))
        };
        let tree = self.store.tree();
        let mut cur = abs.as_str();
        while let Some(up) = path::parent(cur) {
            if let Some(n) = tree.get(up) {
                let a = caller.access(&n.perms);
                let may = if write { a.can_write() } else { a.can_read() };
                assert!(
                    may,
                    "{abs}: ENOENT, but {up} is closed to domain {}",
                    caller.domid
                );
                return;
            }
            cur = up;
        }
    }
}

/// Runs one input; panics if an invariant breaks.
pub fn check_sessions(data: &[u8]) {
    let mut s = Session::new();
    let mut input = Input(data);
    while s.step(&mut input) {}
}
