//! Round trips through the state directory.

use super::Persist;
use crate::store::{Output, Store};
use crate::{ConnId, Quotas};
use std::path::PathBuf;
use xenstore_wire::Request;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("pcibox-persist-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a request and logs what it changed.
fn run(store: &mut Store, p: &mut Persist, c: ConnId, r: Request<'_>) {
    let mut out = Output::default();
    store.handle_request(c, 1, 0, &r, &mut out);
    p.append(&out.changes, store.tree().generation() - 1)
        .unwrap();
    p.maybe_compact(store);
}

fn dump(store: &Store) -> Vec<(String, Vec<u8>, String, Vec<String>)> {
    store
        .tree()
        .walk()
        .into_iter()
        .map(|(p, n)| {
            let perms: Vec<String> = n
                .perms
                .iter()
                .map(|p| String::from_utf8_lossy(&p.emit()).into_owned())
                .collect();
            (p, n.value.clone(), perms.join(" "), n.children.clone())
        })
        .collect()
}

fn reopen(dir: &Dir, compact_after: u64) -> (Persist, Store) {
    let lock = super::Lock::take(&dir.0).unwrap();
    let (p, rec) = Persist::open(lock, compact_after).unwrap();
    let store = Store::with_state(rec.tree, rec.domains, Quotas::default());
    (p, store)
}

#[test]
fn the_log_and_the_snapshot_give_back_the_tree() {
    for compact_after in [1 << 30, 600] {
        let dir = Dir::new(&format!("round-{compact_after}"));
        let (mut p, mut store) = reopen(&dir, compact_after);
        let c = store.connect(0, true);
        for i in 0..40 {
            let path = format!("/a/{}/n{i}", i % 3);
            let value = format!("v{i}");
            run(
                &mut store,
                &mut p,
                c,
                Request::Write {
                    path: &path,
                    value: value.as_bytes(),
                },
            );
            if i % 7 == 0 {
                run(
                    &mut store,
                    &mut p,
                    c,
                    Request::Rm {
                        path: &format!("/a/{}", i % 3),
                    },
                );
            }
        }
        let perms = vec![xenstore_wire::Perm::parse(b"r5").unwrap()];
        run(
            &mut store,
            &mut p,
            c,
            Request::SetPerms { path: "/a", perms },
        );
        let mut out = Output::default();
        store.introduce(5, &mut out);
        p.append(&out.changes, store.tree().generation() - 1)
            .unwrap();
        let want = dump(&store);
        // A compaction under way runs to its end.
        let start = std::time::Instant::now();
        while p.compacting() {
            assert!(start.elapsed().as_secs() < 60, "compaction never ends");
            p.maybe_compact(&store);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(p);
        let (_p, again) = reopen(&dir, compact_after);
        assert_eq!(dump(&again), want, "compact_after {compact_after}");
        assert!(again.domains()[&5].introduced);
        let segs = super::recover::segments(&dir.0).unwrap();
        assert_eq!(segs.len(), 1, "older segments removed: {segs:?}");
        if compact_after < 1000 {
            assert!(segs[0].0 > 1, "compaction ran");
        }
    }
}

#[test]
fn a_busy_directory_is_not_logged_whole_for_each_child() {
    let dir = Dir::new("busy");
    let (mut p, mut store) = reopen(&dir, 1 << 30);
    let c = store.connect(0, true);
    let long = "n".repeat(100);
    for i in 0..500 {
        let path = format!("/busy/{long}{i}");
        run(
            &mut store,
            &mut p,
            c,
            Request::Write {
                path: &path,
                value: b"",
            },
        );
    }
    for i in 0..250 {
        let path = format!("/busy/{long}{i}");
        run(&mut store, &mut p, c, Request::Rm { path: &path });
    }
    // Each change logs its node and one name of the directory: about 250
    // bytes, not the directory's 50 KB of names.
    assert!(p.log_bytes() < 750 * 400, "{} bytes of log", p.log_bytes());
    let want = dump(&store);
    drop(p);
    let (_p, again) = reopen(&dir, 1 << 30);
    assert_eq!(dump(&again), want);
}
