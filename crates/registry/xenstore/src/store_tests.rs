//! Unit tests of the store, driven through the wire format.

use crate::{ConnId, Message, Output, Quotas, Store};
use xenstore_wire::{Errno, HeaderRepr, MsgType, Packet, Perm, PermKind, Reply, Request};

/// A store with a few helpers that talk to it as a client would.
struct T {
    store: Store,
    next_req: u32,
    /// Watch events seen: (conn, path, token).
    events: Vec<(ConnId, String, String)>,
    closed: Vec<ConnId>,
    /// What the last reply waited for (`Message::needs`), and each event.
    reply_needs: u64,
    event_needs: Vec<u64>,
}

impl T {
    fn new() -> T {
        T::with(Quotas::default())
    }
    fn with(q: Quotas) -> T {
        T {
            store: Store::new(q),
            next_req: 1,
            events: Vec::new(),
            closed: Vec::new(),
            reply_needs: 0,
            event_needs: Vec::new(),
        }
    }
    fn dom0(&mut self) -> ConnId {
        self.store.connect(0, true)
    }
    fn dom(&mut self, d: u16) -> ConnId {
        self.store.connect(d, false)
    }
    /// A dom0 connection and one for domain `d`, which owns its home.
    fn dom0_and_home(&mut self, d: u16) -> (ConnId, ConnId) {
        let d0 = self.dom0();
        let dd = self.dom(d);
        let home = format!("/local/domain/{d}");
        self.req(d0, 0, Request::Mkdir { path: &home }).unwrap();
        self.perms(d0, &home, &format!("n{d}")).unwrap();
        (d0, dd)
    }

    fn raw(&mut self, c: ConnId, ty: u32, tx: u32, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        let req_id = self.next_req;
        self.next_req += 1;
        let mut out = Output::default();
        let h = HeaderRepr {
            msg_type: ty,
            req_id,
            tx_id: tx,
            len: payload.len() as u32,
        };
        self.store.handle(c, &h, payload, &mut out);
        self.closed.extend(out.close);
        let mut result = None;
        for Message {
            to,
            bytes: m,
            needs,
        } in out.messages
        {
            let p = Packet::new_checked(&m[..]).unwrap();
            let h = HeaderRepr::parse(&p.header());
            match Reply::parse(h.msg_type, p.payload()).unwrap() {
                Reply::WatchEvent { path, token } => {
                    self.event_needs.push(needs);
                    self.events.push((
                        to,
                        path.to_string(),
                        String::from_utf8_lossy(token).into_owned(),
                    ))
                }
                r if to == c && h.req_id == req_id => {
                    self.reply_needs = needs;
                    assert_eq!(h.tx_id, tx, "tx id echoed");
                    assert!(result.is_none(), "one reply per request");
                    result = Some(match r {
                        Reply::Error(e) => Err(e),
                        Reply::Data { payload, .. } => Ok(payload.to_vec()),
                        Reply::WatchEvent { .. } => unreachable!(),
                    });
                }
                r => panic!("unexpected message {r:?}"),
            }
        }
        result.expect("a reply")
    }

    fn req(&mut self, c: ConnId, tx: u32, r: Request<'_>) -> Result<Vec<u8>, Errno> {
        self.raw(c, r.msg_type() as u32, tx, &r.payload())
    }
    fn write(&mut self, c: ConnId, tx: u32, path: &str, v: &str) -> Result<(), Errno> {
        self.req(
            c,
            tx,
            Request::Write {
                path,
                value: v.as_bytes(),
            },
        )
        .map(|r| assert_eq!(r, b"OK\0"))
    }
    fn read(&mut self, c: ConnId, tx: u32, path: &str) -> Result<String, Errno> {
        self.req(c, tx, Request::Read { path })
            .map(|v| String::from_utf8(v).unwrap())
    }
    fn ls(&mut self, c: ConnId, path: &str) -> Result<Vec<String>, Errno> {
        self.req(c, 0, Request::Directory { path })
            .map(|v| strings(&v))
    }
    fn rm(&mut self, c: ConnId, tx: u32, path: &str) -> Result<Vec<u8>, Errno> {
        self.req(c, tx, Request::Rm { path })
    }
    fn perms(&mut self, c: ConnId, path: &str, perms: &str) -> Result<Vec<u8>, Errno> {
        let perms = perms
            .split(' ')
            .map(|p| Perm::parse(p.as_bytes()).unwrap())
            .collect();
        self.req(c, 0, Request::SetPerms { path, perms })
    }
    fn get_perms(&mut self, c: ConnId, path: &str) -> Result<String, Errno> {
        self.req(c, 0, Request::GetPerms { path })
            .map(|v| strings(&v).join(" "))
    }
    fn start(&mut self, c: ConnId) -> Result<u32, Errno> {
        let r = self.req(c, 0, Request::TransactionStart)?;
        Ok(String::from_utf8(r[..r.len() - 1].to_vec())
            .unwrap()
            .parse()
            .unwrap())
    }
    fn end(&mut self, c: ConnId, tx: u32, commit: bool) -> Result<Vec<u8>, Errno> {
        self.req(c, tx, Request::TransactionEnd { commit })
    }
    fn watch(&mut self, c: ConnId, path: &str, token: &str) -> Result<Vec<u8>, Errno> {
        self.req(
            c,
            0,
            Request::Watch {
                path,
                token: token.as_bytes(),
            },
        )
    }
    fn take_events(&mut self, c: ConnId) -> Vec<(String, String)> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|(to, _, _)| *to == c);
        self.events = rest;
        mine.into_iter().map(|(_, p, t)| (p, t)).collect()
    }
}

fn strings(v: &[u8]) -> Vec<String> {
    xenstore_wire::split_strings(v)
        .unwrap()
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn ev(p: &str, t: &str) -> (String, String) {
    (p.to_string(), t.to_string())
}

#[test]
fn read_write_mkdir_rm_directory() {
    let mut t = T::new();
    let c = t.dom0();
    t.write(c, 0, "/a/b/c", "v").unwrap();
    assert_eq!(t.read(c, 0, "/a/b/c").unwrap(), "v");
    assert_eq!(t.read(c, 0, "/a/b").unwrap(), "", "parents created empty");
    t.write(c, 0, "/a/b/d", "").unwrap();
    t.write(c, 0, "/a/b/c", "w").unwrap();
    assert_eq!(t.ls(c, "/a/b").unwrap(), ["c", "d"], "creation order");
    assert_eq!(t.read(c, 0, "/a/x"), Err(Errno::ENOENT));
    t.req(c, 0, Request::Mkdir { path: "/a/b" }).unwrap();
    assert_eq!(t.read(c, 0, "/a/b/c").unwrap(), "w", "mkdir keeps values");
    t.req(c, 0, Request::Mkdir { path: "/m/n" }).unwrap();
    assert_eq!(t.ls(c, "/m").unwrap(), ["n"]);
    // Relative paths of a socket connection are below dom0's home.
    t.write(c, 0, "rel/x", "1").unwrap();
    assert_eq!(t.read(c, 0, "/local/domain/0/rel/x").unwrap(), "1");
    assert_eq!(t.rm(c, 0, "/a/b").unwrap(), b"OK\0");
    assert_eq!(t.ls(c, "/a").unwrap(), Vec::<String>::new());
    assert_eq!(t.read(c, 0, "/a/b/c"), Err(Errno::ENOENT));
    assert!(t.rm(c, 0, "/a/b").is_ok(), "missing node, parent exists");
    assert_eq!(
        t.rm(c, 0, "/a/b/c"),
        Err(Errno::ENOENT),
        "parent missing too"
    );
    assert_eq!(t.rm(c, 0, "/"), Err(Errno::EINVAL));
    assert_eq!(t.read(c, 0, "/a//b"), Err(Errno::EINVAL));
    assert_eq!(t.raw(c, MsgType::Read as u32, 0, b"/a"), Err(Errno::EINVAL));
    assert_eq!(t.raw(c, 20, 0, b""), Err(Errno::EINVAL), "XS_RESTRICT");
    assert_eq!(t.raw(c, 999, 0, b""), Err(Errno::EINVAL));
    t.store.tree().check().unwrap();
}

#[test]
fn permissions_and_inheritance() {
    let mut t = T::new();
    let d0 = t.dom0();
    let d5 = t.dom(5);
    let d6 = t.dom(6);
    t.req(
        d0,
        0,
        Request::Mkdir {
            path: "/local/domain/5",
        },
    )
    .unwrap();
    t.perms(d0, "/local/domain/5", "n5").unwrap();
    // Domain 5 owns its home: it writes there, relative paths included.
    t.write(d5, 0, "data/x", "1").unwrap();
    assert_eq!(t.get_perms(d0, "/local/domain/5/data/x").unwrap(), "n5");
    assert_eq!(t.read(d5, 0, "/local/domain/5/data/x").unwrap(), "1");
    // Others cannot, and domain 5 cannot write outside.
    assert_eq!(t.read(d6, 0, "/local/domain/5/data/x"), Err(Errno::EACCES));
    assert_eq!(
        t.write(d6, 0, "/local/domain/5/data/y", "1"),
        Err(Errno::EACCES)
    );
    assert_eq!(t.write(d5, 0, "/tool/x", "1"), Err(Errno::EACCES));
    assert_eq!(t.read(d5, 0, "/tool"), Err(Errno::EACCES));
    assert_eq!(t.rm(d6, 0, "/local/domain/5/data"), Err(Errno::EACCES));
    // Only a privileged connection changes owners.
    assert_eq!(t.perms(d5, "data/x", "n6"), Err(Errno::EPERM));
    assert_eq!(
        t.perms(d6, "/local/domain/5/data/x", "n6"),
        Err(Errno::EACCES)
    );
    t.perms(d5, "data/x", "n5 r6").unwrap();
    assert_eq!(t.read(d6, 0, "/local/domain/5/data/x").unwrap(), "1");
    assert_eq!(
        t.write(d6, 0, "/local/domain/5/data/x", "2"),
        Err(Errno::EACCES)
    );
    t.perms(d0, "/local/domain/5/data/x", "r7").unwrap();
    assert_eq!(t.get_perms(d0, "/local/domain/5/data/x").unwrap(), "r7");
    // Inheritance: a privileged creator keeps the parent's entries; an
    // unprivileged one becomes the owner of what it creates.
    t.write(d0, 0, "/shared", "").unwrap();
    t.perms(d0, "/shared", "r0 b5").unwrap();
    t.write(d0, 0, "/shared/a/b", "").unwrap();
    assert_eq!(t.get_perms(d0, "/shared/a/b").unwrap(), "r0 b5");
    t.write(d5, 0, "/shared/c/d", "x").unwrap();
    assert_eq!(t.get_perms(d0, "/shared/c").unwrap(), "r5 b5");
    assert_eq!(t.get_perms(d0, "/shared/c/d").unwrap(), "r5 b5");
    assert_eq!(t.read(d6, 0, "/shared/c/d").unwrap(), "x", "default r");
    t.store.tree().check().unwrap();
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let mut t = T::new();
    let c = t.dom0();
    let o = t.dom0();
    t.write(c, 0, "/t/x", "a").unwrap();
    let tx = t.start(c).unwrap();
    assert_ne!(tx, 0);
    t.write(c, tx, "/t/x", "b").unwrap();
    t.write(c, tx, "/t/new/y", "n").unwrap();
    assert_eq!(t.read(c, tx, "/t/x").unwrap(), "b");
    assert_eq!(t.read(o, 0, "/t/x").unwrap(), "a", "isolated until commit");
    assert_eq!(t.read(o, 0, "/t/new/y"), Err(Errno::ENOENT));
    t.end(c, tx, true).unwrap();
    assert_eq!(t.read(o, 0, "/t/new/y").unwrap(), "n");
    assert_eq!(t.end(c, tx, true), Err(Errno::ENOENT), "ended");

    // Abort discards.
    let tx = t.start(c).unwrap();
    t.rm(c, tx, "/t/new").unwrap();
    t.end(c, tx, false).unwrap();
    assert_eq!(t.read(o, 0, "/t/new/y").unwrap(), "n");

    // A node read in the transaction changed meanwhile: EAGAIN, nothing applied.
    let tx = t.start(c).unwrap();
    assert_eq!(t.read(c, tx, "/t/x").unwrap(), "b");
    t.write(o, 0, "/t/x", "other").unwrap();
    t.write(c, tx, "/t/z", "z").unwrap();
    assert_eq!(t.end(c, tx, true), Err(Errno::EAGAIN));
    assert_eq!(t.read(o, 0, "/t/z"), Err(Errno::ENOENT));

    // Disjoint transactions both commit.
    let t1 = t.start(c).unwrap();
    let t2 = t.start(o).unwrap();
    t.write(c, t1, "/t/x", "1").unwrap();
    t.write(o, t2, "/t/new/y", "2").unwrap();
    t.end(c, t1, true).unwrap();
    t.end(o, t2, true).unwrap();
    assert_eq!(t.read(c, 0, "/t/x").unwrap(), "1");
    assert_eq!(t.read(c, 0, "/t/new/y").unwrap(), "2");

    // Reads are repeatable (test-xenstore's "ta err"): an outside write
    // after the first read stays invisible, and the commit fails.
    let tx = t.start(c).unwrap();
    assert_eq!(t.read(c, tx, "/t/x").unwrap(), "1");
    t.write(o, 0, "/t/x", "b").unwrap();
    assert_eq!(t.read(c, tx, "/t/x").unwrap(), "1");
    t.write(c, tx, "/t/x", "c").unwrap();
    assert_eq!(t.read(c, tx, "/t/x").unwrap(), "c");
    assert_eq!(t.end(c, tx, true), Err(Errno::EAGAIN));
    assert_eq!(t.read(c, 0, "/t/x").unwrap(), "b");

    // Creating the same node in two transactions conflicts.
    let t1 = t.start(c).unwrap();
    let t2 = t.start(o).unwrap();
    t.write(c, t1, "/t/q", "1").unwrap();
    t.write(o, t2, "/t/q", "2").unwrap();
    t.end(c, t1, true).unwrap();
    assert_eq!(t.end(o, t2, true), Err(Errno::EAGAIN));

    // A failed request inside a transaction leaves it usable and unchanged.
    let tx = t.start(c).unwrap();
    assert_eq!(t.rm(c, tx, "/nope/x"), Err(Errno::ENOENT));
    t.write(c, tx, "/t/after", "1").unwrap();
    t.end(c, tx, true).unwrap();
    assert_eq!(t.read(c, 0, "/t/after").unwrap(), "1");
    assert_eq!(t.read(c, 77, "/t/x"), Err(Errno::ENOENT), "unknown tx");
    let tx = t.start(c).unwrap();
    assert_eq!(t.req(c, tx, Request::TransactionStart), Err(Errno::EBUSY));
    t.store.tree().check().unwrap();
}

#[test]
fn watches_fire_on_registration_changes_and_parent_removal() {
    let mut t = T::new();
    let c = t.dom0();
    let w = t.dom0();
    t.watch(w, "/w/a", "tok").unwrap();
    assert_eq!(
        t.take_events(w),
        [ev("/w/a", "tok")],
        "fires once at registration"
    );
    t.write(c, 0, "/w/a/b", "1").unwrap();
    t.write(c, 0, "/w/ab", "1").unwrap();
    t.write(c, 0, "/w/a", "2").unwrap();
    assert_eq!(
        t.take_events(w),
        [ev("/w/a/b", "tok"), ev("/w/a", "tok")],
        "below and at the path, not siblings"
    );
    t.rm(c, 0, "/w").unwrap();
    assert_eq!(t.take_events(w), [ev("/w/a", "tok")], "parent removal");
    assert_eq!(t.watch(w, "/w/a", "tok"), Err(Errno::EEXIST));

    // Relative watches report relative paths.
    t.watch(w, "dev", "r").unwrap();
    t.write(c, 0, "/local/domain/0/dev/x", "1").unwrap();
    assert_eq!(t.take_events(w), [ev("dev", "r"), ev("dev/x", "r")]);

    // Transactions fire on commit only, and not at all when aborted.
    let tx = t.start(c).unwrap();
    t.write(c, tx, "/w/a", "3").unwrap();
    assert!(t.take_events(w).is_empty());
    t.end(c, tx, true).unwrap();
    assert_eq!(t.take_events(w), [ev("/w/a", "tok")]);
    let tx = t.start(c).unwrap();
    t.write(c, tx, "/w/a", "4").unwrap();
    t.end(c, tx, false).unwrap();
    assert!(t.take_events(w).is_empty());

    t.req(
        w,
        0,
        Request::Unwatch {
            path: "/w/a",
            token: b"tok",
        },
    )
    .unwrap();
    t.write(c, 0, "/w/a", "5").unwrap();
    assert!(t.take_events(w).is_empty());
    assert_eq!(
        t.req(
            w,
            0,
            Request::Unwatch {
                path: "/w/a",
                token: b"tok"
            }
        ),
        Err(Errno::ENOENT)
    );
    // RESET_WATCHES drops the rest.
    t.req(w, 0, Request::ResetWatches).unwrap();
    assert_eq!(t.store.watch_count(w), 0);
}

#[test]
fn watch_events_respect_permissions() {
    let mut t = T::new();
    let d0 = t.dom0();
    let d5 = t.dom(5);
    t.write(d0, 0, "/p/secret", "").unwrap();
    t.write(d0, 0, "/p/public", "").unwrap();
    t.perms(d0, "/p/public", "r0").unwrap();
    t.watch(d5, "/p", "t").unwrap();
    t.take_events(d5);
    t.write(d0, 0, "/p/secret", "1").unwrap();
    t.write(d0, 0, "/p/public", "1").unwrap();
    assert_eq!(t.take_events(d5), [ev("/p/public", "t")]);
}

#[test]
fn domains_introduce_release_and_special_watches() {
    let mut t = T::new();
    let d0 = t.dom0();
    let d3 = t.dom(3);
    t.watch(d0, "@introduceDomain", "i").unwrap();
    t.watch(d0, "@releaseDomain", "r").unwrap();
    t.take_events(d0);
    let intro = |domid| Request::Introduce {
        domid,
        mfn: 1,
        evtchn: 1,
    };
    assert_eq!(t.req(d3, 0, intro(4)), Err(Errno::EACCES));
    let introduced = |domid| Request::IsDomainIntroduced { domid };
    assert_eq!(t.req(d0, 0, introduced(3)).unwrap(), b"F\0");
    t.req(d0, 0, intro(3)).unwrap();
    assert_eq!(t.req(d0, 0, introduced(3)).unwrap(), b"T\0");
    assert_eq!(t.take_events(d0), [ev("@introduceDomain", "i")]);
    assert_eq!(
        t.req(d0, 0, Request::GetDomainPath { domid: 3 }).unwrap(),
        b"/local/domain/3\0"
    );
    t.req(d0, 0, Request::Resume { domid: 3 }).unwrap();
    t.req(d0, 0, Request::Release { domid: 3 }).unwrap();
    assert_eq!(t.take_events(d0), [ev("@releaseDomain", "r")]);
    assert_eq!(t.closed, [d3], "the released domain is disconnected");
    assert_eq!(
        t.req(d0, 0, Request::Release { domid: 3 }),
        Err(Errno::ENOENT)
    );
    assert_eq!(t.req(d0, 0, intro(0x7ff0)), Err(Errno::EINVAL));
}

#[test]
fn quotas_limit_unprivileged_domains_only() {
    let q = Quotas {
        nodes: 5,
        watches: 2,
        transactions: 2,
        node_size: 64,
        permissions: 2,
        ..Quotas::default()
    };
    let mut t = T::with(q);
    let (d0, d5) = t.dom0_and_home(5);
    // The home counts: it is owned by 5.
    for i in 0..4 {
        t.write(d5, 0, &format!("n{i}"), "").unwrap();
    }
    assert_eq!(t.write(d5, 0, "n9", ""), Err(Errno::ENOSPC), "nodes");
    t.rm(d5, 0, "n0").unwrap();
    t.write(d5, 0, "n9", "").unwrap();
    assert_eq!(
        t.write(d5, 0, "n1", &"x".repeat(65)),
        Err(Errno::ENOSPC),
        "size"
    );
    t.write(d5, 0, "n1", &"x".repeat(60)).unwrap();
    assert_eq!(t.perms(d5, "n1", "n5 r1 r2"), Err(Errno::ENOSPC), "perms");
    t.watch(d5, "a", "1").unwrap();
    t.watch(d5, "b", "1").unwrap();
    assert_eq!(t.watch(d5, "c", "1"), Err(Errno::E2BIG), "watches");
    t.start(d5).unwrap();
    t.start(d5).unwrap();
    assert_eq!(t.start(d5), Err(Errno::ENOSPC), "transactions");
    // dom0 is not limited.
    for i in 0..10 {
        t.write(d0, 0, &format!("/big/{i}"), &"y".repeat(3000))
            .unwrap();
        t.watch(d0, &format!("/w{i}"), "t").unwrap();
    }
    for _ in 0..5 {
        t.start(d0).unwrap();
    }
    // Quotas are configurable at run time, per domain.
    let set = Request::SetQuota {
        domid: Some(5),
        name: "nodes",
        value: 50,
    };
    t.req(d0, 0, set).unwrap();
    t.write(d5, 0, "n10", "").unwrap();
    let get = |domid| Request::GetQuota {
        domid,
        name: Some("nodes"),
    };
    assert_eq!(t.req(d0, 0, get(Some(5))).unwrap(), b"50\0");
    assert_eq!(t.req(d0, 0, get(None)).unwrap(), b"5\0");
    let names = Request::GetQuota {
        domid: None,
        name: None,
    };
    assert_eq!(t.req(d5, 0, names), Err(Errno::EACCES));
}

#[test]
fn directory_part_reassembles_long_lists() {
    let mut t = T::new();
    let c = t.dom0();
    let names: Vec<String> = (0..600).map(|i| format!("child-{i:04}")).collect();
    let tx = t.start(c).unwrap();
    for n in &names {
        t.write(c, tx, &format!("/big/{n}"), "").unwrap();
    }
    t.end(c, tx, true).unwrap();
    assert_eq!(t.ls(c, "/big"), Err(Errno::E2BIG));
    let mut got: Vec<String> = Vec::new();
    let mut offset = 0u32;
    let mut gen = None;
    loop {
        let part = Request::DirectoryPart {
            path: "/big",
            offset,
        };
        let r = t.req(c, 0, part).unwrap();
        assert!(r.len() <= xenstore_wire::PAYLOAD_MAX);
        let nul = r.iter().position(|&b| b == 0).unwrap();
        let g = String::from_utf8(r[..nul].to_vec()).unwrap();
        assert_eq!(*gen.get_or_insert(g.clone()), g, "generation stable");
        let body = &r[nul + 1..];
        let done = body.ends_with(b"\0\0") || body == b"\0";
        let list = if done { &body[..body.len() - 1] } else { body };
        got.extend(strings(list));
        offset += list.len() as u32;
        if done {
            break;
        }
    }
    assert_eq!(got, names);
    let inside = Request::DirectoryPart {
        path: "/big",
        offset: 3,
    };
    assert_eq!(
        t.req(c, 0, inside),
        Err(Errno::EINVAL),
        "offset inside a name"
    );
}

#[test]
fn permission_kinds_round_trip_get_perms() {
    let mut t = T::new();
    let c = t.dom0();
    t.write(c, 0, "/k", "").unwrap();
    t.perms(c, "/k", "w1 r2 b3 n4").unwrap();
    assert_eq!(t.get_perms(c, "/k").unwrap(), "w1 r2 b3 n4");
    let p = Perm::parse(b"w1").unwrap();
    assert_eq!(p.kind, PermKind::Write);
}

#[test]
fn every_node_a_transaction_touches_counts_against_its_limit() {
    let q = Quotas {
        transaction_nodes: 10,
        ..Quotas::default()
    };
    let mut t = T::with(q);
    let (d0, d5) = t.dom0_and_home(5);
    let tx = t.start(d5).unwrap();
    // Reads of missing nodes and removals of missing nodes change nothing,
    // but each is a node the transaction depends on: the home plus nine.
    for i in 0..9 {
        let p = format!("gone{i}");
        if i % 2 == 0 {
            assert_eq!(t.read(d5, tx, &p), Err(Errno::ENOENT));
        } else {
            t.rm(d5, tx, &p).unwrap();
        }
    }
    assert_eq!(t.read(d5, tx, "gone9"), Err(Errno::ENOSPC), "read");
    assert_eq!(t.rm(d5, tx, "gone10"), Err(Errno::ENOSPC), "rm");
    assert_eq!(t.write(d5, tx, "new", "x"), Err(Errno::ENOSPC), "write");
    // Nodes already touched stay usable, and the transaction still commits.
    t.write(d5, tx, "gone1", "x").unwrap();
    t.end(d5, tx, true).unwrap();
    assert_eq!(t.read(d5, 0, "gone1").unwrap(), "x");
    // A privileged transaction is not limited.
    let tx = t.start(d0).unwrap();
    for i in 0..50 {
        assert_eq!(t.read(d0, tx, &format!("/gone{i}")), Err(Errno::ENOENT));
    }
    t.end(d0, tx, true).unwrap();
}

#[test]
fn the_node_quota_is_checked_again_at_commit() {
    let q = Quotas {
        nodes: 10,
        ..Quotas::default()
    };
    let mut t = T::with(q);
    let (d0, d5) = t.dom0_and_home(5);
    let other = t.dom(5);
    t.write(d5, 0, "a", "").unwrap();
    t.write(d5, 0, "b", "").unwrap();
    // Two transactions of one domain, in different directories (so they do
    // not conflict), each stay under the quota on their own (the home, two
    // directories and 5 nodes), but not together.
    let t1 = t.start(d5).unwrap();
    let t2 = t.start(other).unwrap();
    for i in 0..5 {
        t.write(d5, t1, &format!("a/{i}"), "").unwrap();
        t.write(other, t2, &format!("b/{i}"), "").unwrap();
    }
    t.end(d5, t1, true).unwrap();
    assert_eq!(t.end(other, t2, true), Err(Errno::ENOSPC));
    assert_eq!(t.read(d0, 0, "/local/domain/5/b/0"), Err(Errno::ENOENT));
    assert_eq!(t.store.tree().owned_by(5), 8);
    // A transaction that removes as many as it adds is fine, and dom0 is
    // not limited.
    let t3 = t.start(d5).unwrap();
    t.rm(d5, t3, "a/0").unwrap();
    t.write(d5, t3, "a/x", "").unwrap();
    let t4 = t.start(other).unwrap();
    for i in 0..2 {
        t.write(other, t4, &format!("b/{i}"), "").unwrap();
    }
    t.end(other, t4, true).unwrap();
    t.end(d5, t3, true).unwrap();
    assert_eq!(t.store.tree().owned_by(5), 10);
    let t5 = t.start(d0).unwrap();
    for i in 0..20 {
        t.write(d0, t5, &format!("/local/domain/5/z{i}"), "")
            .unwrap();
    }
    t.end(d0, t5, true).unwrap();
}

#[test]
fn messages_wait_for_the_changes_they_reveal() {
    let mut t = T::new();
    let c = t.dom0();
    let w = t.dom0();
    t.write(c, 0, "/a", "1").unwrap();
    let gen_a = t.reply_needs;
    assert!(gen_a > 0, "a write's reply waits for the write");
    t.write(c, 0, "/b", "2").unwrap();
    let gen_b = t.reply_needs;
    assert!(gen_b > gen_a);
    // A read waits for what it read, not for unrelated later changes.
    t.read(c, 0, "/a").unwrap();
    assert_eq!(t.reply_needs, gen_a);
    // Learning that a node is absent waits for the latest removal and for
    // its nearest ancestor (whose permissions decide the answer).
    assert_eq!(t.read(c, 0, "/nothing"), Err(Errno::ENOENT));
    assert_eq!(t.reply_needs, gen_b, "the root, as creating /b left it");
    t.rm(c, 0, "/b").unwrap();
    let gen_rm = t.reply_needs;
    assert!(gen_rm > gen_b);
    assert_eq!(t.read(c, 0, "/b"), Err(Errno::ENOENT));
    assert_eq!(t.reply_needs, gen_rm);
    // A watch event waits for the change it reports; the registration's
    // own event reveals nothing.
    t.watch(w, "/a", "tok").unwrap();
    assert_eq!(t.event_needs.pop(), Some(0));
    t.write(c, 0, "/a", "3").unwrap();
    assert_eq!(t.event_needs.pop(), Some(t.reply_needs));
    // Requests that reveal no committed state wait for nothing.
    t.req(c, 0, Request::GetDomainPath { domid: 3 }).unwrap();
    assert_eq!(t.reply_needs, 0);
}

#[test]
fn existing_and_missing_nodes_answer_alike_where_the_caller_may_not_look() {
    let mut t = T::new();
    let (d0, d5) = t.dom0_and_home(5);
    t.write(d0, 0, "/local/domain/6/secret/a", "s").unwrap();
    t.perms(d0, "/local/domain/6", "n6").unwrap();
    t.perms(d0, "/local/domain/6/secret", "n6").unwrap();
    t.perms(d0, "/local/domain/6/secret/a", "n6").unwrap();
    let pairs = [
        ("/local/domain/6/secret/a", "/local/domain/6/secret/b"),
        ("/local/domain/6/secret", "/local/domain/6/other"),
        (
            "/local/domain/6/secret/a",
            "/local/domain/6/none/deeper/still",
        ),
    ];
    let perms = || vec![Perm::parse(b"n5").unwrap()];
    let tx = t.start(d5).unwrap();
    for tx in [0, tx] {
        for (exists, missing) in pairs {
            let ask = |t: &mut T, p: &str| -> Vec<Result<Vec<u8>, Errno>> {
                let reqs = [
                    Request::Read { path: p },
                    Request::Directory { path: p },
                    Request::DirectoryPart { path: p, offset: 0 },
                    Request::GetPerms { path: p },
                    Request::Write {
                        path: p,
                        value: b"x",
                    },
                    Request::Mkdir { path: p },
                    Request::Rm { path: p },
                    Request::SetPerms {
                        path: p,
                        perms: perms(),
                    },
                ];
                reqs.into_iter().map(|r| t.req(d5, tx, r)).collect()
            };
            let a = ask(&mut t, exists);
            assert!(
                a.iter().all(|r| *r == Err(Errno::EACCES)),
                "{exists}: {a:?}"
            );
            assert_eq!(a, ask(&mut t, missing), "{exists} vs {missing} in tx {tx}");
        }
    }
    // Where the caller may look, a missing node is ENOENT (and RM of it OK).
    assert_eq!(t.read(d5, 0, "nothing"), Err(Errno::ENOENT));
    assert!(t.rm(d5, 0, "nothing").is_ok());
    assert_eq!(t.rm(d5, 0, "nothing/below"), Err(Errno::ENOENT));
    // dom0 sees everything as it is.
    assert_eq!(
        t.read(d0, 0, "/local/domain/6/secret/b"),
        Err(Errno::ENOENT)
    );
}

#[test]
fn a_failed_read_in_a_transaction_is_remembered() {
    // Write skew on absence: each transaction sees a node absent and
    // creates the node the other one looked for. In different directories,
    // so only the failed reads tie them together.
    let mut t = T::new();
    let c1 = t.dom0();
    let c2 = t.dom0();
    t.write(c1, 0, "/p", "").unwrap();
    t.write(c1, 0, "/q", "").unwrap();
    for look in ["read", "directory", "get_perms"] {
        let t1 = t.start(c1).unwrap();
        let t2 = t.start(c2).unwrap();
        let probe = |t: &mut T, c, tx, p| match look {
            "read" => t.req(c, tx, Request::Read { path: p }),
            "directory" => t.req(c, tx, Request::Directory { path: p }),
            _ => t.req(c, tx, Request::GetPerms { path: p }),
        };
        assert_eq!(probe(&mut t, c1, t1, "/p/a"), Err(Errno::ENOENT));
        assert_eq!(probe(&mut t, c2, t2, "/q/b"), Err(Errno::ENOENT));
        t.write(c1, t1, "/q/b", "1").unwrap();
        t.write(c2, t2, "/p/a", "1").unwrap();
        t.end(c1, t1, true).unwrap();
        assert_eq!(t.end(c2, t2, true), Err(Errno::EAGAIN), "{look}");
        assert_eq!(t.read(c1, 0, "/p/a"), Err(Errno::ENOENT));
        t.rm(c1, 0, "/q/b").unwrap();
    }
}

/// Room for `0` more bytes of log, shared with the test.
#[derive(Debug, Clone)]
struct Room(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl crate::Space for Room {
    fn reserve(&mut self, bytes: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }
}

#[test]
fn without_room_in_the_log_changes_are_refused_whole_and_reads_go_on() {
    use std::sync::atomic::Ordering;
    let mut t = T::new();
    let room = Room(std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(
        1 << 20,
    )));
    t.store.set_space(Box::new(room.clone()));
    let (d0, d5) = t.dom0_and_home(5);
    t.write(d0, 0, "/a/b", "1").unwrap();
    let tx = t.start(d5).unwrap();
    t.write(d5, tx, "x", "in tx").unwrap();
    t.watch(d0, "/a", "w").unwrap();
    let intro = |domid| Request::Introduce {
        domid,
        mfn: 0,
        evtchn: 0,
    };
    t.req(d0, 0, intro(5)).unwrap();
    t.take_events(d0);
    let before = t.store.tree().generation();
    room.0.store(0, Ordering::Relaxed);
    assert_eq!(t.write(d0, 0, "/a/b", "2"), Err(Errno::ENOSPC), "dom0 too");
    assert_eq!(t.write(d5, 0, "y/z", "1"), Err(Errno::ENOSPC));
    assert_eq!(t.rm(d0, 0, "/a"), Err(Errno::ENOSPC));
    assert_eq!(t.end(d5, tx, true), Err(Errno::ENOSPC));
    assert_eq!(
        t.end(d5, tx, true),
        Err(Errno::ENOENT),
        "the transaction ended"
    );
    assert_eq!(t.req(d0, 0, intro(9)), Err(Errno::ENOSPC));
    assert_eq!(
        t.req(d0, 0, Request::Release { domid: 5 }),
        Err(Errno::ENOSPC)
    );
    // Nothing changed, nobody was told of a change, and reads go on.
    assert_eq!(t.store.tree().generation(), before);
    assert!(t.take_events(d0).is_empty());
    assert_eq!(t.read(d0, 0, "/a/b").unwrap(), "1");
    assert_eq!(t.read(d5, 0, "x"), Err(Errno::ENOENT));
    // Room again: changes go through.
    room.0.store(1 << 20, Ordering::Relaxed);
    t.write(d0, 0, "/a/b", "3").unwrap();
    assert_eq!(t.read(d0, 0, "/a/b").unwrap(), "3");
}
