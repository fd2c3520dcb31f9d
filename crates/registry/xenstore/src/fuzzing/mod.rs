//! The entry points of the fuzz targets (and of the stable tests that replay
//! their corpora). `xenstore_message`, here: arbitrary bytes as the traffic
//! of three connections (one privileged, two unprivileged domains) into one
//! store. `xenstore_sessions` ([`check_sessions`]): structured sessions of
//! six connections with transactions, watches and domains.
//!
//! Input format: frames of `selector: u8`, `len: u8`, `len` bytes. The
//! selector's low two bits pick the connection (3 = reconnect connection 2);
//! the bytes are appended to that connection's input and every whole message
//! in it is handled, so messages may span frames.
//!
//! Checked after every frame: no panic; every message the store emits is a
//! well-formed packet with a parseable reply; the tree keeps its invariants.

mod sessions;

pub use sessions::check_sessions;

use crate::quota::Quotas;
use crate::store::{ConnId, Output, Store};
use xenstore_wire::{HeaderRepr, Packet, Reply};

/// Runs one input; panics if an invariant breaks.
pub fn check_message_stream(data: &[u8]) {
    let quotas = Quotas {
        nodes: 30,
        watches: 8,
        transactions: 3,
        ..Quotas::default()
    };
    let mut store = Store::new(quotas);
    let mut conns: [(ConnId, Vec<u8>); 3] = [
        (store.connect(0, true), Vec::new()),
        (store.connect(1, false), Vec::new()),
        (store.connect(2, false), Vec::new()),
    ];
    let mut rest = data;
    while let [sel, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        rest = next;
        let which = usize::from(sel & 3);
        if which == 3 {
            store.disconnect(conns[2].0);
            conns[2] = (store.connect(2, false), Vec::new());
            continue;
        }
        let (id, buf) = &mut conns[which];
        buf.extend_from_slice(chunk);
        let mut out = Output::default();
        match store.handle_bytes(*id, buf, &mut out) {
            Ok(used) => {
                buf.drain(..used);
            }
            Err(_) => {
                // Framing broken (oversized payload): the daemon disconnects.
                store.disconnect(*id);
                *id = store.connect(if which == 0 { 0 } else { which as u16 }, which == 0);
                buf.clear();
            }
        }
        for m in &out.messages {
            let p = Packet::new_checked(&m.bytes[..]).expect("store emitted a bad packet");
            assert_eq!(p.total_len(), m.bytes.len(), "one message per entry");
            let h = HeaderRepr::parse(&p.header());
            Reply::parse(h.msg_type, p.payload()).expect("store emitted an unparseable reply");
        }
        if let Err(e) = store.tree().check() {
            panic!("tree invariant broken: {e}");
        }
    }
}
