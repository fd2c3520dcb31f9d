//! Property tests: parsing never panics on arbitrary bytes, and every request
//! survives emit → parse unchanged.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use xenstore_wire::{path, HeaderRepr, Packet, Perm, PermKind, Reply, Request, PAYLOAD_MAX};

fn node_path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        prop::collection::vec("[A-Za-z0-9_@-]{1,12}", 1..6)
            .prop_map(|c| format!("/{}", c.join("/"))),
        prop::collection::vec("[A-Za-z0-9_-]{1,12}", 1..4).prop_map(|c| c.join("/")),
    ]
}

fn perm() -> impl Strategy<Value = Perm> {
    (
        prop_oneof![
            Just(PermKind::None),
            Just(PermKind::Read),
            Just(PermKind::Write),
            Just(PermKind::Both)
        ],
        any::<u16>(),
    )
        .prop_map(|(kind, domid)| Perm { kind, domid })
}

/// Owned inputs from which a borrowed `Request` is built.
#[derive(Debug, Clone)]
struct Parts {
    kind: u8,
    path: String,
    token: Vec<u8>,
    value: Vec<u8>,
    perms: Vec<Perm>,
    a: u16,
    b: u16,
    n: u32,
    flag: bool,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        0u8..24,
        node_path(),
        prop::collection::vec(1u8..=255, 0..20),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::vec(perm(), 1..5),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(|(kind, path, token, value, perms, a, b, n, flag)| Parts {
            kind,
            path,
            token,
            value,
            perms,
            a,
            b,
            n,
            flag,
        })
}

fn build(p: &Parts) -> Request<'_> {
    let path = p.path.as_str();
    match p.kind {
        0 => Request::Directory { path },
        1 => Request::DirectoryPart { path, offset: p.n },
        2 => Request::Read { path },
        3 => Request::GetPerms { path },
        4 => Request::Watch {
            path,
            token: &p.token,
        },
        5 => Request::Unwatch {
            path,
            token: &p.token,
        },
        6 => Request::TransactionStart,
        7 => Request::TransactionEnd { commit: p.flag },
        8 => Request::Introduce {
            domid: p.a,
            mfn: u64::from(p.n) << 3,
            evtchn: p.n,
        },
        9 => Request::Release { domid: p.a },
        10 => Request::GetDomainPath { domid: p.a },
        11 => Request::Write {
            path,
            value: &p.value,
        },
        12 => Request::Mkdir { path },
        13 => Request::Rm { path },
        14 => Request::SetPerms {
            path,
            perms: p.perms.clone(),
        },
        15 => Request::IsDomainIntroduced { domid: p.a },
        16 => Request::Resume { domid: p.a },
        17 => Request::SetTarget {
            domid: p.a,
            target: p.b,
        },
        18 => Request::ResetWatches,
        19 => Request::GetFeature {
            domid: p.flag.then_some(p.a),
        },
        20 => Request::SetFeature {
            domid: p.a,
            features: p.n,
        },
        21 => Request::GetQuota {
            domid: None,
            name: p.flag.then_some("nodes"),
        },
        22 => Request::SetQuota {
            domid: p.flag.then_some(p.a),
            name: "watches",
            value: p.n,
        },
        _ => Request::Control {
            args: vec![b"print", &p.token],
        },
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(p) = Packet::new_checked(&bytes[..]) {
            prop_assert!(p.total_len() <= bytes.len());
            let _ = Request::parse(p.header().msg_type(), p.payload());
            let _ = Reply::parse(p.header().msg_type(), p.payload());
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic(ty in 0u32..30, payload in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Request::parse(ty, &payload);
        let _ = Reply::parse(ty, &payload);
    }

    #[test]
    fn requests_round_trip(p in parts(), req_id in any::<u32>(), tx_id in any::<u32>()) {
        let req = build(&p);
        let msg = req.emit(req_id, tx_id).unwrap();
        let packet = Packet::new_checked(&msg[..]).unwrap();
        let h = HeaderRepr::parse(&packet.header());
        prop_assert_eq!(h.req_id, req_id);
        prop_assert_eq!(h.tx_id, tx_id);
        prop_assert!(packet.payload().len() <= PAYLOAD_MAX);
        prop_assert_eq!(Request::parse(h.msg_type, packet.payload()).unwrap(), req);
    }

    #[test]
    fn valid_paths_accepted_and_doubled_slash_rejected(p in node_path(), at in any::<prop::sample::Index>()) {
        prop_assert!(path::check(p.as_bytes()).is_ok());
        let i = at.index(p.len() + 1);
        let mut bad = p.clone();
        bad.insert_str(i, "//");
        prop_assert!(path::check(bad.as_bytes()).is_err());
        if p.starts_with('/') {
            if let Some(parent) = path::parent(&p) {
                prop_assert!(path::is_child(&p, parent));
                prop_assert_eq!(path::join(parent, path::basename(&p)), p.clone());
            }
        }
    }
}
