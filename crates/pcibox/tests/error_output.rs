//! The real binary prints an error on one line with each cause once.

use std::process::Command;

#[test]
fn a_socket_in_a_missing_directory_names_the_os_error_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .args(["xenstored", "--socket", "/nonexistent/dir/sock"])
        .output()
        .expect("pcibox runs");
    assert!(!out.status.success(), "exited {:?}", out.status);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let enoent = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(err.matches(enoent.as_str()).count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("pcibox: ") && err.contains("/nonexistent/dir/sock"),
        "{err}"
    );
}

#[test]
fn a_missing_vfio_user_server_names_the_os_error_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_pcibox"))
        .args([
            "net",
            "--device",
            "vfio-user:/nonexistent/dir/sock",
            "stats",
        ])
        .output()
        .expect("pcibox runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let enoent = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(err.matches(enoent.as_str()).count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("vfio-user:/nonexistent/dir/sock"), "{err}");
}
