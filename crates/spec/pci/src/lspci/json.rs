//! `--json`: pcibox's own parsed view of a function, for scripts. Numbers
//! are plain JSON numbers; capability bodies are the crate's `*Repr`s.

use super::Device;
use crate::caps::{cap_id, ext_cap_id, WalkError};
use crate::ids::Names;
use crate::{
    AerRepr, Bar, DsnRepr, HeaderType, MsiRepr, MsixRepr, PcieRepr, PmRepr, VirtioCapRepr,
};
use serde::Serialize;

/// A capability body, parsed when pcibox knows its layout.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parsed {
    /// Power Management.
    Pm(PmRepr),
    /// MSI.
    Msi(MsiRepr),
    /// MSI-X.
    Msix(MsixRepr),
    /// PCI Express.
    Pcie(PcieRepr),
    /// Virtio PCI capability.
    Virtio(VirtioCapRepr),
    /// Advanced Error Reporting.
    Aer(AerRepr),
    /// Device Serial Number.
    Dsn(DsnRepr),
    /// The capability is malformed.
    Error(String),
}

/// One capability.
#[derive(Debug, Serialize)]
pub struct CapView {
    /// Offset in config space.
    pub offset: u16,
    /// Capability ID.
    pub id: u16,
    /// Extended capability version (extended capabilities only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// The parsed body, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parsed: Option<Parsed>,
}

/// Subsystem IDs.
#[derive(Debug, Serialize)]
pub struct Subsystem {
    /// Subsystem vendor ID.
    pub vendor_id: u16,
    /// Subsystem ID.
    pub device_id: u16,
}

/// The parsed view of one function.
#[derive(Debug, Serialize)]
pub struct View {
    /// `dddd:bb:dd.f`.
    pub slot: String,
    /// Vendor ID.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Class and subclass.
    pub class: u16,
    /// Programming interface.
    pub prog_if: u8,
    /// Revision.
    pub revision: u8,
    /// Class name.
    pub class_name: String,
    /// Vendor and device name.
    pub device_name: String,
    /// Header layout.
    pub header_type: HeaderType,
    /// Multi-function device.
    pub multifunction: bool,
    /// Command register.
    pub command: u16,
    /// Status register.
    pub status: u16,
    /// Subsystem IDs (type 0 headers).
    pub subsystem: Option<Subsystem>,
    /// Config bytes available.
    pub config_len: usize,
    /// BAR slots.
    pub bars: Vec<Bar>,
    /// Capability list.
    pub capabilities: Vec<CapView>,
    /// Why the capability walk stopped early, if it did.
    pub capabilities_stop: Option<WalkError>,
    /// Extended capability list.
    pub extended_capabilities: Vec<CapView>,
    /// Why the extended walk stopped early, if it did.
    pub extended_capabilities_stop: Option<WalkError>,
    /// Bound kernel driver (sysfs only).
    pub driver: Option<String>,
}

fn wrap<T>(r: Result<T, crate::Error>, f: fn(T) -> Parsed) -> Option<Parsed> {
    Some(match r {
        Ok(v) => f(v),
        Err(e) => Parsed::Error(e.to_string()),
    })
}

impl View {
    /// Builds the view of `dev`, names from `names`.
    pub fn new(dev: &Device, names: &Names<'_>) -> Self {
        let c = &dev.config;
        let b = c.as_bytes();
        let mut capabilities = Vec::new();
        let mut capabilities_stop = None;
        for item in c.caps() {
            match item {
                Ok(cap) => {
                    let at = usize::from(cap.offset);
                    let parsed = match cap.id {
                        cap_id::PM => wrap(PmRepr::parse(b, at), Parsed::Pm),
                        cap_id::MSI => wrap(MsiRepr::parse(b, at), Parsed::Msi),
                        cap_id::MSIX => wrap(MsixRepr::parse(b, at), Parsed::Msix),
                        cap_id::EXP => wrap(PcieRepr::parse(b, at), Parsed::Pcie),
                        cap_id::VENDOR
                            if VirtioCapRepr::is_virtio(c.vendor_id(), c.device_id()) =>
                        {
                            wrap(VirtioCapRepr::parse(b, at), Parsed::Virtio)
                        }
                        _ => None,
                    };
                    capabilities.push(CapView {
                        offset: cap.offset.into(),
                        id: cap.id.into(),
                        version: None,
                        parsed,
                    });
                }
                Err(e) => capabilities_stop = Some(e),
            }
        }
        let mut extended_capabilities = Vec::new();
        let mut extended_capabilities_stop = None;
        for item in c.ext_caps() {
            match item {
                Ok(cap) => {
                    let at = usize::from(cap.offset);
                    let parsed = match cap.id {
                        ext_cap_id::AER => wrap(AerRepr::parse(b, at), Parsed::Aer),
                        ext_cap_id::DSN => wrap(DsnRepr::parse(b, at), Parsed::Dsn),
                        _ => None,
                    };
                    extended_capabilities.push(CapView {
                        offset: cap.offset,
                        id: cap.id,
                        version: Some(cap.version),
                        parsed,
                    });
                }
                Err(e) => extended_capabilities_stop = Some(e),
            }
        }
        View {
            slot: dev.addr.to_string(),
            vendor_id: c.vendor_id(),
            device_id: c.device_id(),
            class: c.class(),
            prog_if: c.prog_if(),
            revision: c.revision(),
            class_name: names.class(c.class()),
            device_name: names.vendor_device(c.vendor_id(), c.device_id()),
            header_type: c.header_type(),
            multifunction: c.multifunction(),
            command: c.command(),
            status: c.status(),
            subsystem: c.subsystem().map(|(vendor_id, device_id)| Subsystem {
                vendor_id,
                device_id,
            }),
            config_len: c.len(),
            bars: c.bars().map(|(_, bar)| bar).collect(),
            capabilities,
            capabilities_stop,
            extended_capabilities,
            extended_capabilities_stop,
            driver: dev.os.driver.clone(),
        }
    }
}
