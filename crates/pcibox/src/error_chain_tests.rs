//! Every error type of the workspace, rendered the way `main` prints it: the
//! message of each error in the chain says what failed in its own words and
//! the cause comes only from `source()`, so no cause text appears twice.
//!
//! One row per error kind of each crate (spec crates, kit, backends, drivers,
//! registry, this CLI); rows come from real failing calls where that is cheap
//! (a socket in a missing directory, a truncated IDENTIFY page, a vfio-user
//! server that is not there) and are built by hand otherwise.

use crate::cmd::{self, Context};
use crate::device::{DeviceError, DeviceSpec};
use std::error::Error;
use std::io;
use std::path::PathBuf;

/// The texts of an error and its causes, outermost first.
fn chain(e: &(dyn Error + 'static)) -> Vec<String> {
    pcibox_kit::causes(e).map(|e| e.to_string()).collect()
}

/// Fails if a cause's text is contained in the text of an error above it
/// (the cause would be printed twice) or if the chain is shorter than
/// `depth` (a cause was dropped or flattened into a string).
fn check(name: &str, e: &(dyn Error + 'static), depth: usize) {
    let texts = chain(e);
    let shown = pcibox_kit::Chain(e).to_string();
    assert!(
        texts.len() >= depth,
        "{name}: chain {texts:?} shorter than {depth}"
    );
    assert_eq!(shown, texts.join(": "), "{name}");
    for (i, text) in texts.iter().enumerate() {
        assert!(
            !text.is_empty(),
            "{name}: empty message at depth {i} in {texts:?}"
        );
        for above in &texts[..i] {
            assert!(
                !above.contains(text.as_str()),
                "{name}: cause {text:?} repeated in {above:?}: {shown}"
            );
        }
    }
}

fn os(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

fn bdf() -> pcibox_vfio::Bdf {
    "0000:00:04.0".parse().expect("a valid BDF")
}

/// One error of each kind that carries a cause, with the chain depth it
/// must have.
fn rows() -> Vec<(&'static str, Box<dyn Error + 'static>, usize)> {
    let truncated_identify =
        nvme_spec::IdentifyData::new_checked(vec![0u8; 10]).expect_err("10 bytes is no page");
    let Err(socket_in_missing_dir) =
        pcibox_xenstore::daemon::Daemon::bind(&pcibox_xenstore::daemon::Config {
            socket: PathBuf::from("/nonexistent/dir/sock"),
            domain_sockets: Vec::new(),
            state_dir: None,
            quotas: pcibox_xenstore::Quotas::default(),
            compact_after: 1 << 20,
            max_queue: 1 << 20,
        })
    else {
        panic!("a socket was bound in a missing directory");
    };
    let Err(no_server) = DeviceSpec::VfioUser("/nonexistent/pcibox.sock".into()).open() else {
        panic!("a device opened with no server behind its socket");
    };
    let model_config_refusal = pcibox_kit::Backend::config_read(
        &pcibox_model::fake::Fake::new(0x1b36, 0x0010),
        0x100,
        &mut [0; 4],
    )
    .expect_err("256 bytes of config space end at 0xff");
    let kit_os = || pcibox_kit::Error::Os {
        op: "mmap",
        source: os(12),
    };
    let config_parse = || pcibox_kit::Error::ConfigParse(pci::Error::BadLength(10));
    vec![
        // Spec crates are leaves; each appears under the error that wraps it.
        ("pci under kit", Box::new(config_parse()), 2),
        (
            "nvme-spec under nvme",
            Box::new(pcibox_nvme::Error::from(truncated_identify)),
            2,
        ),
        (
            "e1000-spec under e1000e",
            Box::new(pcibox_e1000e::Error::Spec(e1000_spec::Error::BadVector(9))),
            1,
        ),
        (
            "partition read",
            Box::new(partition_table::Error::Read {
                lba: 1,
                source: Box::new(os(5)),
            }),
            2,
        ),
        // The kit.
        ("kit os", Box::new(kit_os()), 2),
        // Backends.
        (
            "vfio ioctl",
            Box::new(pcibox_vfio::Error::Vfio {
                bdf: bdf(),
                op: "open /dev/vfio/3".into(),
                source: os(16),
            }),
            2,
        ),
        (
            "sysfs",
            Box::new(pcibox_sysfs::Error::Io {
                addr: bdf(),
                op: "write",
                path: "/sys/bus/pci/drivers/vfio-pci/bind".into(),
                source: os(19),
            }),
            2,
        ),
        (
            "sysfs under vfio",
            Box::new(pcibox_vfio::Error::from(pcibox_sysfs::Error::Io {
                addr: bdf(),
                op: "write",
                path: "/sys/bus/pci/drivers/vfio-pci/bind".into(),
                source: os(19),
            })),
            2,
        ),
        (
            "vfio claim record",
            Box::new(pcibox_vfio::Error::Record {
                bdf: bdf(),
                op: "mkdir",
                path: "/run/pcibox/claimed".into(),
                source: os(13),
            }),
            2,
        ),
        (
            "vfio kit refusal",
            Box::new(pcibox_vfio::Error::Kit {
                bdf: bdf(),
                source: config_parse(),
            }),
            3,
        ),
        (
            "kit carrying vfio",
            Box::new(pcibox_kit::Error::from(pcibox_vfio::Error::Vfio {
                bdf: bdf(),
                op: "VFIO_DEVICE_RESET".into(),
                source: os(25),
            })),
            2,
        ),
        (
            "vfio-user io",
            Box::new(pcibox_vfio_user::Error::Io {
                op: "connect",
                source: os(111),
            }),
            2,
        ),
        (
            "vfio-user wire",
            Box::new(pcibox_vfio_user::Error::Wire(
                vfio_user_wire::Error::Truncated { need: 16, have: 3 },
            )),
            2,
        ),
        (
            "vfio-user receive",
            Box::new(pcibox_vfio_user::Error::Recv(
                pcibox_vfio_user::RecvError::Io(os(104)),
            )),
            3,
        ),
        (
            "vfio-user bad header",
            Box::new(pcibox_vfio_user::Error::Recv(
                pcibox_vfio_user::RecvError::BadHeader {
                    error: vfio_user_wire::Error::BadType(7),
                    raw: [0; vfio_user_wire::HEADER_LEN],
                },
            )),
            3,
        ),
        (
            "vfio-user kit",
            Box::new(pcibox_vfio_user::Error::Kit(kit_os())),
            2,
        ),
        // Device models: a real refusal of the fake's virtual config space.
        ("model config under kit", Box::new(model_config_refusal), 2),
        (
            "model os under kit",
            Box::new(pcibox_kit::Error::from(pcibox_model::Error::Os {
                op: "DMA read (pread)",
                source: os(5),
            })),
            2,
        ),
        // Drivers.
        ("nvme kit", Box::new(pcibox_nvme::Error::Kit(kit_os())), 2),
        (
            "e1000e kit",
            Box::new(pcibox_e1000e::Error::Kit(kit_os())),
            2,
        ),
        (
            "e1000e stack",
            Box::new(pcibox_e1000e::Error::NetOp {
                what: "ICMP send".into(),
                source: Box::new(os(101)),
            }),
            2,
        ),
        // The registry.
        ("xenstored socket", Box::new(socket_in_missing_dir), 2),
        (
            "xenstored poll",
            Box::new(pcibox_xenstore::daemon::DaemonError::Poll(os(4))),
            2,
        ),
        (
            "xenstored damaged log",
            Box::new(pcibox_xenstore::daemon::DaemonError::Persist(
                pcibox_xenstore::persist::PersistError::Damaged {
                    path: "/var/lib/xenstored/log.0000000000000001".into(),
                    offset: 40,
                    what: "bad header checksum".into(),
                },
            )),
            1,
        ),
        (
            "xenstored state file",
            Box::new(pcibox_xenstore::persist::PersistError::Io {
                path: "/var/lib/xenstored/snapshot".into(),
                source: os(28),
            }),
            2,
        ),
        (
            "xenstore client socket",
            Box::new(pcibox_xenstore::client::ClientError::Io(os(32))),
            2,
        ),
        (
            "xenstore-wire under the client",
            Box::new(pcibox_xenstore::client::ClientError::Wire(
                pcibox_xenstore::wire::Error::BadPath,
            )),
            2,
        ),
        // This CLI.
        ("device open", no_server, 3),
        (
            "device error",
            Box::new(DeviceError::VfioUser(
                "vfio-user:/run/x.sock".into(),
                pcibox_vfio_user::Error::Closed,
            )),
            2,
        ),
        (
            "lspci dump",
            Box::new(cmd::lspci::LspciError::DumpFormat {
                path: "/tmp/dump".into(),
                source: pci_lspci::dump::DumpError::Malformed(3),
            }),
            2,
        ),
        (
            "lspci sysfs listing",
            Box::new(cmd::lspci::LspciError::from(
                pcibox_sysfs::Sysfs::new("/nonexistent/bus/pci")
                    .functions()
                    .expect_err("a missing tree has no functions"),
            )),
            2,
        ),
        (
            "lspci ids",
            Box::new(cmd::lspci::LspciError::IdsRead {
                path: "/usr/share/misc/pci.ids".into(),
                source: os(13),
            }),
            2,
        ),
        (
            "subcommand step",
            Err::<(), _>(pcibox_nvme::Error::from(kit_os()))
                .context("vfio:0000:00:04.0")
                .expect_err("an error stays an error"),
            3,
        ),
    ]
}

#[test]
fn no_cause_is_printed_twice() {
    for (name, e, depth) in rows() {
        check(name, &*e, depth);
    }
}

#[test]
fn the_socket_error_names_the_socket_and_the_os_error_once() {
    let (_, e, _) = rows()
        .into_iter()
        .find(|(name, _, _)| *name == "xenstored socket")
        .expect("the row exists");
    let shown = pcibox_kit::Chain(&*e).to_string();
    let enoent = os(2).to_string();
    assert_eq!(shown.matches(enoent.as_str()).count(), 1, "{shown}");
    assert!(shown.contains("/nonexistent/dir/sock"), "{shown}");
}

#[test]
fn the_check_catches_a_doubled_cause() {
    /// The pattern this file guards against: the cause in the message and
    /// in `source()`.
    #[derive(Debug, thiserror::Error)]
    #[error("bind: {0}")]
    struct Doubled(#[source] io::Error);
    let r = std::panic::catch_unwind(|| check("doubled", &Doubled(os(2)), 2));
    assert!(r.is_err(), "a doubled cause was not caught");
}
