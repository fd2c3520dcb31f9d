//! Debian's real XenStore clients against `pcibox xenstored`:
//! xenstore-utils (libxenstore) and python3-pyxs.
#![allow(clippy::unwrap_used)]

mod xs;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use xs::{Scratch, Xenstored};

fn daemon() -> (Scratch, Xenstored) {
    let s = Scratch::new("xs-clients");
    let x = Xenstored::start_in(&s.0, &[]);
    (s, x)
}

#[test]
fn xenstore_utils_read_write_list_rm_exists() {
    let (_s, x) = daemon();
    x.ok("xenstore-write", &["/t/a", "one", "/t/b/c", "two words"]);
    assert_eq!(x.ok("xenstore-read", &["/t/a"]), "one\n");
    assert_eq!(x.ok("xenstore-read", &["/t/b/c"]), "two words\n");
    assert_eq!(x.ok("xenstore-list", &["/t"]), "a\nb\n");
    let ls = x.ok("xenstore-ls", &["/t"]);
    assert!(ls.contains("a = \"one\""), "{ls}");
    assert!(ls.contains(" c = \"two words\""), "{ls}");
    assert!(x.tool("xenstore-exists", &["/t/a"]).status.success());
    x.ok("xenstore-rm", &["/t/a"]);
    assert!(!x.tool("xenstore-exists", &["/t/a"]).status.success());
    let missing = x.tool("xenstore-read", &["/t/a"]);
    assert!(!missing.status.success());
    // Removing a directory takes its children.
    x.ok("xenstore-rm", &["/t/b"]);
    assert_eq!(x.ok("xenstore-list", &["/t"]), "");
    // The whole tree lists from the root.
    let root = x.ok("xenstore-ls", &["/"]);
    assert!(root.contains("local = \"\""), "{root}");
    // Bad paths are refused by the daemon, not just the tool.
    assert!(!x.tool("xenstore-read", &["/t//a"]).status.success());
    // A directory too long for one reply: libxenstore falls back to
    // DIRECTORY_PART and still lists every child.
    let mut c = pcibox_xenstore::client::Client::connect(&x.socket).unwrap();
    c.transaction(|c, tx| {
        for i in 0..700 {
            c.write(tx, &format!("/many/child-{i:04}"), b"")?;
        }
        Ok(())
    })
    .unwrap();
    let list = x.ok("xenstore-list", &["/many"]);
    assert_eq!(list.lines().count(), 700);
    assert_eq!(list.lines().last(), Some("child-0699"));
}

#[test]
fn xenstore_utils_permissions_deny_unprivileged_domains() {
    let (_s, x) = daemon();
    x.ok("xenstore-write", &["/p/shared", "s", "/p/secret", "k"]);
    x.ok("xenstore-chmod", &["/p/shared", "n0", "r5"]);
    x.ok("xenstore-chmod", &["/p/secret", "n0"]);
    let ls = x.ok("xenstore-ls", &["-p", "/p"]);
    assert!(ls.contains("(n0,r5)"), "{ls}");
    let d5 = x.domain_socket(5);
    let d6 = x.domain_socket(6);
    // Domain 5 may read the shared node but not write it or read the secret.
    let r = x.tool_on(&d5, "xenstore-read", &["/p/shared"]);
    assert!(r.status.success());
    assert_eq!(r.stdout, b"s\n");
    assert!(!x
        .tool_on(&d5, "xenstore-write", &["/p/shared", "x"])
        .status
        .success());
    assert!(!x
        .tool_on(&d5, "xenstore-read", &["/p/secret"])
        .status
        .success());
    assert!(!x
        .tool_on(&d6, "xenstore-read", &["/p/shared"])
        .status
        .success());
    assert_eq!(x.ok("xenstore-read", &["/p/shared"]), "s\n", "unchanged");
    // A domain's own home: dom0 hands it over, the domain writes below it,
    // and may not give its nodes away.
    x.ok("xenstore-write", &["/local/domain/5", ""]);
    x.ok("xenstore-chmod", &["/local/domain/5", "n5"]);
    assert!(x
        .tool_on(&d5, "xenstore-write", &["data/x", "1"])
        .status
        .success());
    assert_eq!(x.ok("xenstore-read", &["/local/domain/5/data/x"]), "1\n");
    assert!(!x
        .tool_on(&d5, "xenstore-chmod", &["data/x", "n6"])
        .status
        .success());
    assert!(!x
        .tool_on(&d6, "xenstore-read", &["/local/domain/5/data/x"])
        .status
        .success());
}

#[test]
fn xenstore_watch_sees_changes_and_parent_removal() {
    let (_s, x) = daemon();
    x.ok("xenstore-write", &["/w/sub/leaf", "0"]);
    // `timeout` keeps a missing event from hanging the test run.
    let mut watch = Command::new("timeout")
        .args(["60", "/usr/bin/xenstore-watch", "-n", "4", "/w/sub"])
        .env("XENSTORED_PATH", &x.socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    // The watch fires once on registration.
    assert_eq!(lines.next().unwrap().unwrap(), "/w/sub");
    x.ok("xenstore-write", &["/w/sub/leaf", "1"]);
    assert_eq!(lines.next().unwrap().unwrap(), "/w/sub/leaf");
    x.ok("xenstore-write", &["/w/other", "1"]);
    x.ok("xenstore-write", &["/w/sub", "2"]);
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "/w/sub",
        "siblings do not fire"
    );
    // Removing a parent reports the watched path.
    x.ok("xenstore-rm", &["/w"]);
    assert_eq!(lines.next().unwrap().unwrap(), "/w/sub");
    let status = watch.wait().unwrap();
    assert!(status.success());
}

fn python_ok(x: &Xenstored, program: &str) -> String {
    let out = x.python(program);
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pyxs_read_write_mkdir_rm_list_perms() {
    let (_s, x) = daemon();
    let out = python_ok(
        &x,
        r#"
from pyxs import Client, PyXSError
with Client(unix_socket_path=MAIN) as c:
    c.mkdir(b"/py/dir")
    c.write(b"/py/dir/a", b"1")
    c.write(b"/py/dir/b", b"2")
    print(sorted(c.list(b"/py/dir")))
    print(c.read(b"/py/dir/a"))
    print(c.exists(b"/py/dir/b"))
    c.delete(b"/py/dir/b")
    print(c.exists(b"/py/dir/b"))
    c.set_perms(b"/py/dir/a", [b"n0", b"b5"])
    print(c.get_perms(b"/py/dir/a"))
    print(c.get_domain_path(5))
    try:
        c.read(b"/py/missing")
    except PyXSError as e:
        print("missing", e.args[0])
with Client(unix_socket_path=DOM6) as d6:
    try:
        d6.read(b"/py/dir/a")
    except PyXSError as e:
        print("dom6", e.args[0])
with Client(unix_socket_path=DOM5) as d5:
    d5.write(b"/py/dir/a", b"from5")
    print(d5.read(b"/py/dir/a"))
    try:
        d5.write(b"/py/dir/new", b"x")
    except PyXSError as e:
        print("dom5 create", e.args[0])
"#,
    );
    assert_eq!(
        out,
        "[b'a', b'b']\nb'1'\nTrue\nFalse\n[b'n0', b'b5']\nb'/local/domain/5'\n\
         missing 2\ndom6 13\nb'from5'\ndom5 create 13\n"
    );
}

#[test]
fn pyxs_transactions_commit_and_eagain_conflict() {
    let (_s, x) = daemon();
    let out = python_ok(
        &x,
        r#"
from pyxs import Client
with Client(unix_socket_path=MAIN) as a, Client(unix_socket_path=MAIN) as b:
    a.write(b"/tx/n", b"0")
    a.transaction()
    a.write(b"/tx/n", b"1")
    a.write(b"/tx/m", b"1")
    print(b.read(b"/tx/n"), b.exists(b"/tx/m"))
    print(a.commit())
    print(b.read(b"/tx/n"), b.read(b"/tx/m"))
    # Conflict: b changes a node a has read.
    a.transaction()
    v = a.read(b"/tx/n")
    b.write(b"/tx/n", b"2")
    a.write(b"/tx/n", v + b"x")
    print(a.commit())
    print(b.read(b"/tx/n"))
    # Rollback discards.
    a.transaction()
    a.delete(b"/tx/m")
    a.rollback()
    print(b.read(b"/tx/m"))
"#,
    );
    assert_eq!(
        out, "b'0' False\nTrue\nb'1' b'1'\nFalse\nb'2'\nb'1'\n",
        "commit, EAGAIN conflict (commit() is False), rollback"
    );
}

#[test]
fn pyxs_watches_fire_on_registration_change_and_parent_removal() {
    let (_s, x) = daemon();
    let out = python_ok(
        &x,
        r#"
import threading
from pyxs import Client
with Client(unix_socket_path=MAIN) as c, Client(unix_socket_path=MAIN) as w:
    c.write(b"/pw/a/b", b"0")
    m = w.monitor()
    m.watch(b"/pw/a/b", b"tok")
    events = m.wait()
    print(next(events))
    c.write(b"/pw/a/b", b"1")
    print(next(events))
    c.write(b"/pw/a/b/c", b"1")
    print(next(events))
    c.delete(b"/pw")
    print(next(events))
"#,
    );
    assert_eq!(
        out,
        "Event(path=b'/pw/a/b', token=b'tok')\n\
         Event(path=b'/pw/a/b', token=b'tok')\n\
         Event(path=b'/pw/a/b/c', token=b'tok')\n\
         Event(path=b'/pw/a/b', token=b'tok')\n"
    );
    // Give the daemon a moment to see both clients go, then check it serves on.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(x.ok("xenstore-read", &["/local/domain"]), "\n");
}

#[test]
fn pyxs_release_and_introduce_domains() {
    let (_s, mut x) = daemon();
    // Domain 6 is connected before it is released.
    let mut d6 = std::os::unix::net::UnixStream::connect(x.domain_socket(6)).unwrap();
    d6.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(xs::call(&mut d6, 10, 0, b"6\0").1, b"/local/domain/6\0");
    let out = python_ok(
        &x,
        r#"
from pyxs import Client
with Client(unix_socket_path=MAIN) as c, Client(unix_socket_path=MAIN) as w:
    m = w.monitor()
    m.watch(b"@releaseDomain", b"rel")
    m.watch(b"@introduceDomain", b"intro")
    events = m.wait()
    print(sorted([next(events), next(events)]))
    print(c.is_domain_introduced(6))
    # pyxs only sends RELEASE where /proc/xen/capabilities says control_d.
    c.SU = True
    c.release_domain(6)
    print(next(events))
    print(c.is_domain_introduced(6))
"#,
    );
    assert_eq!(
        out,
        "[Event(path=b'@introduceDomain', token=b'intro'), \
         Event(path=b'@releaseDomain', token=b'rel')]\n\
         True\nEvent(path=b'@releaseDomain', token=b'rel')\nFalse\n"
    );
    // The released domain's connection is closed, and new ones are refused.
    assert!(xs::recv(&mut d6).is_none());
    let mut again = std::os::unix::net::UnixStream::connect(x.domain_socket(6)).unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert!(xs::recv(&mut again).is_none());
    // A restart keeps it released (its socket is there, but it waits for an
    // INTRODUCE).
    x.restart();
    let out = python_ok(
        &x,
        "from pyxs import Client\nwith Client(unix_socket_path=MAIN) as c:\n    \
         print(c.is_domain_introduced(6), c.is_domain_introduced(5))\n",
    );
    assert_eq!(out, "False True\n");
    let mut again = std::os::unix::net::UnixStream::connect(x.domain_socket(6)).unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert!(xs::recv(&mut again).is_none());
    // Introduced again, it is served again.
    let out = python_ok(
        &x,
        r#"
from pyxs import Client
with Client(unix_socket_path=MAIN) as c:
    c.introduce_domain(6, 0, 0)
    print(c.is_domain_introduced(6))
with Client(unix_socket_path=DOM6) as d:
    print(d.get_domain_path(6))
"#,
    );
    assert_eq!(out, "True\nb'/local/domain/6'\n");
}
