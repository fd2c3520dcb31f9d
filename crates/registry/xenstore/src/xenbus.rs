//! XenBus conventions on top of the client: the device state machine and
//! pciback's layout for PCI devices.
//!
//! The broker (backend, dom0) publishes a domain's devices as libxl does for
//! pciback:
//!
//! ```text
//! /local/domain/0/backend/pci/<domid>/0/       owner 0, readable by <domid>
//!     frontend      /local/domain/<domid>/device/pci/0
//!     frontend-id   <domid>
//!     online        1
//!     state         1 (Initialising)
//!     domain        <name>
//!     num_devs      N
//!     key-i, dev-i  0000:01:00.0
//!     vdevfn-i      (optional, hex)
//!     opts-i        msitranslate=0,power_mgmt=0,permissive=0,rdm_policy=strict
//!     state-i       1
//! /local/domain/<domid>/device/pci/0/          owner <domid>, readable by 0
//!     backend       /local/domain/0/backend/pci/<domid>/0
//!     backend-id    0
//!     state         1
//! ```
//!
//! and the driver domain reads `device/pci/0/…` (relative to its home),
//! follows `backend`, and both sides step through [`XenbusState`].

use crate::client::{Client, ClientError, Result};
use std::time::{Duration, Instant};
use xenstore_wire::{path, Errno, Perm, PermKind};

/// `enum xenbus_state` (xen/include/public/io/xenbus.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum XenbusState {
    /// 0
    Unknown = 0,
    /// 1: setting up.
    Initialising = 1,
    /// 2: backend waiting for frontend details.
    InitWait = 2,
    /// 3: frontend published its details.
    Initialised = 3,
    /// 4: in use.
    Connected = 4,
    /// 5: shutting down.
    Closing = 5,
    /// 6: closed.
    Closed = 6,
    /// 7: reconfiguring.
    Reconfiguring = 7,
    /// 8: reconfigured.
    Reconfigured = 8,
}

impl XenbusState {
    /// Parses a `state` node's value (decimal text).
    pub fn parse(value: &[u8]) -> Option<XenbusState> {
        let n: u8 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
        Some(match n {
            0 => XenbusState::Unknown,
            1 => XenbusState::Initialising,
            2 => XenbusState::InitWait,
            3 => XenbusState::Initialised,
            4 => XenbusState::Connected,
            5 => XenbusState::Closing,
            6 => XenbusState::Closed,
            7 => XenbusState::Reconfiguring,
            8 => XenbusState::Reconfigured,
            _ => return None,
        })
    }

    /// The value written to a `state` node.
    pub fn value(self) -> String {
        (self as u8).to_string()
    }
}

/// Reads `<dir>/state` (a missing node reads as `Unknown`).
pub fn read_state(c: &mut Client, dir: &str) -> Result<XenbusState> {
    match c.read(0, &format!("{dir}/state")) {
        Ok(v) => XenbusState::parse(&v)
            .ok_or_else(|| ClientError::Protocol(format!("{dir}/state: not a XenbusState"))),
        Err(ClientError::Xs(Errno::ENOENT)) => Ok(XenbusState::Unknown),
        Err(e) => Err(e),
    }
}

/// Writes `<dir>/state`.
pub fn switch_state(c: &mut Client, dir: &str, state: XenbusState) -> Result<()> {
    c.write(0, &format!("{dir}/state"), state.value().as_bytes())
}

/// Waits until `<dir>/state` satisfies `done`, using a watch; returns the
/// state reached, or `ClientError::Xs(EBUSY)` on timeout.
pub fn wait_state(
    c: &mut Client,
    dir: &str,
    timeout: Duration,
    done: impl Fn(XenbusState) -> bool,
) -> Result<XenbusState> {
    let node = format!("{dir}/state");
    let token = format!("pcibox-state:{node}");
    c.watch(&node, token.as_bytes())?;
    let deadline = Instant::now() + timeout;
    let result = loop {
        let s = read_state(c, dir)?;
        if done(s) {
            break Ok(s);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || c.wait_event(Some(left))?.is_none() {
            break Err(ClientError::Xs(Errno::EBUSY));
        }
    };
    c.unwatch(&node, token.as_bytes())?;
    result
}

/// One passed-through PCI device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciDevice {
    /// `DDDD:BB:DD.F`.
    pub bdf: String,
    /// Virtual devfn in the guest (`vdevfn-i`, hex), if fixed.
    pub vdevfn: Option<u8>,
    /// `opts-i`.
    pub opts: String,
}

impl PciDevice {
    /// A device with libxl's default options.
    pub fn new(bdf: &str) -> PciDevice {
        PciDevice {
            bdf: bdf.to_string(),
            vdevfn: None,
            opts: "msitranslate=0,power_mgmt=0,permissive=0,rdm_policy=strict".into(),
        }
    }
}

/// The backend directory of a domain's PCI devices.
pub fn pci_backend_dir(backend: u16, domid: u16) -> String {
    format!("{}/backend/pci/{domid}/0", path::domain_home(backend))
}

/// The frontend directory of a domain's PCI devices.
pub fn pci_frontend_dir(domid: u16) -> String {
    format!("{}/device/pci/0", path::domain_home(domid))
}

/// Removes a subtree; fine if it (or its parent) is absent.
fn remove(c: &mut Client, tx: u32, p: &str) -> Result<()> {
    match c.rm(tx, p) {
        Err(ClientError::Xs(Errno::ENOENT)) => Ok(()),
        r => r,
    }
}

/// Publishes `devices` for domain `domid` (named `name`), served by
/// `backend`, in one transaction (retried on conflicts). Needs a privileged
/// connection.
pub fn publish_pci_backend(
    c: &mut Client,
    backend: u16,
    domid: u16,
    name: &str,
    devices: &[PciDevice],
) -> Result<()> {
    let be = pci_backend_dir(backend, domid);
    let fe = pci_frontend_dir(domid);
    let init = XenbusState::Initialising.value();
    c.transaction(|c, tx| {
        remove(c, tx, &be)?;
        remove(c, tx, &fe)?;
        c.mkdir(tx, &be)?;
        c.set_perms(
            tx,
            &be,
            &[
                Perm {
                    kind: PermKind::None,
                    domid: backend,
                },
                Perm {
                    kind: PermKind::Read,
                    domid,
                },
            ],
        )?;
        let mut put =
            |key: &str, value: &str| c.write(tx, &format!("{be}/{key}"), value.as_bytes());
        put("frontend", &fe)?;
        put("frontend-id", &domid.to_string())?;
        put("online", "1")?;
        put("state", &init)?;
        put("domain", name)?;
        for (i, d) in devices.iter().enumerate() {
            put(&format!("key-{i}"), &d.bdf)?;
            put(&format!("dev-{i}"), &d.bdf)?;
            if let Some(v) = d.vdevfn {
                put(&format!("vdevfn-{i}"), &format!("{v:x}"))?;
            }
            put(&format!("opts-{i}"), &d.opts)?;
            put(&format!("state-{i}"), &init)?;
        }
        put("num_devs", &devices.len().to_string())?;
        c.mkdir(tx, &fe)?;
        c.set_perms(
            tx,
            &fe,
            &[
                Perm {
                    kind: PermKind::None,
                    domid,
                },
                Perm {
                    kind: PermKind::Read,
                    domid: backend,
                },
            ],
        )?;
        c.write(tx, &format!("{fe}/backend"), be.as_bytes())?;
        c.write(
            tx,
            &format!("{fe}/backend-id"),
            backend.to_string().as_bytes(),
        )?;
        c.write(tx, &format!("{fe}/state"), init.as_bytes())?;
        Ok(())
    })
}

/// What a driver domain finds in `device/pci/0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFrontend {
    /// The backend directory.
    pub backend: String,
    /// The backend domain.
    pub backend_id: u16,
    /// The devices.
    pub devices: Vec<PciDevice>,
}

/// Reads the PCI devices published for the connected domain (relative
/// paths: run on the domain's own connection).
pub fn read_pci_frontend(c: &mut Client) -> Result<PciFrontend> {
    let text = |c: &mut Client, p: &str| -> Result<String> {
        c.read_string(0, p)?.ok_or(ClientError::Xs(Errno::ENOENT))
    };
    let backend = text(c, "device/pci/0/backend")?;
    let backend_id = text(c, "device/pci/0/backend-id")?
        .parse()
        .map_err(|_| ClientError::Protocol("backend-id is not a domid".into()))?;
    let num: usize = text(c, &format!("{backend}/num_devs"))?
        .parse()
        .map_err(|_| ClientError::Protocol("num_devs is not a number".into()))?;
    let mut devices = Vec::with_capacity(num.min(256));
    for i in 0..num {
        let vdevfn = match c.read_string(0, &format!("{backend}/vdevfn-{i}"))? {
            Some(v) => Some(
                u8::from_str_radix(&v, 16)
                    .map_err(|_| ClientError::Protocol(format!("vdevfn-{i} is not hex")))?,
            ),
            None => None,
        };
        devices.push(PciDevice {
            bdf: text(c, &format!("{backend}/dev-{i}"))?,
            vdevfn,
            opts: c
                .read_string(0, &format!("{backend}/opts-{i}"))?
                .unwrap_or_default(),
        });
    }
    Ok(PciFrontend {
        backend,
        backend_id,
        devices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        for n in 0..=8u8 {
            let s = XenbusState::parse(n.to_string().as_bytes()).unwrap();
            assert_eq!(s as u8, n);
            assert_eq!(s.value(), n.to_string());
        }
        assert_eq!(XenbusState::parse(b"9"), None);
        assert_eq!(XenbusState::parse(b"x"), None);
        assert_eq!(pci_backend_dir(0, 5), "/local/domain/0/backend/pci/5/0");
        assert_eq!(pci_frontend_dir(5), "/local/domain/5/device/pci/0");
    }
}
