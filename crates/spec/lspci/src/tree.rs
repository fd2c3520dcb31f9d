//! The bus topology lspci builds for `-t` (the tree) and `-P` (bridge
//! paths), with pciutils' rules: every PCI-to-PCI or CardBus bridge (class
//! 06xx, header type 1 or 2) owns its secondary bus; a function whose
//! parent device is known (sysfs) sits on its parent's first bus, turning
//! a parent that is no bridge into one; any other function sits on its
//! bus number under the host, or under the most recently listed bridge
//! whose secondary..subordinate range holds that number.

use super::Device;
use crate::ids::{fit, Names};
use pci::Address;
use pci::HeaderType;

/// A bridge: the host (index 0) or a function with buses behind it.
#[derive(Debug)]
struct Bridge {
    domain: u32,
    primary: u32,
    secondary: u32,
    subordinate: u32,
    /// The bridge function (`None` for the host).
    dev: Option<usize>,
    /// Child bridges, most recently added first.
    children: Vec<usize>,
    /// Buses behind the bridge, in creation order.
    buses: Vec<usize>,
}

#[derive(Debug)]
struct Bus {
    domain: u32,
    number: u32,
    bridge: usize,
    devs: Vec<usize>,
}

/// The topology of a sorted device list.
#[derive(Debug)]
pub struct Topology {
    bridges: Vec<Bridge>,
    buses: Vec<Bus>,
    /// The bridge each device is, if any.
    dev_bridge: Vec<Option<usize>>,
    /// The bus each device sits on.
    dev_bus: Vec<usize>,
}

const HOST: usize = 0;

impl Topology {
    /// Builds the topology of `devs`, which must be sorted by address.
    pub fn build(devs: &[Device]) -> Self {
        let mut t = Topology {
            bridges: vec![Bridge {
                domain: 0,
                primary: u32::MAX,
                secondary: 0,
                subordinate: u32::MAX,
                dev: None,
                children: Vec::new(),
                buses: Vec::new(),
            }],
            buses: Vec::new(),
            dev_bridge: vec![None; devs.len()],
            dev_bus: vec![0; devs.len()],
        };
        let parents: Vec<Option<usize>> = devs
            .iter()
            .map(|d| {
                let p = d.os.parent?;
                devs.iter().position(|x| x.addr == p)
            })
            .collect();
        // Bridges from config space.
        for (i, d) in devs.iter().enumerate() {
            let c = &d.config;
            let bridge = matches!(c.header_type(), HeaderType::Bridge | HeaderType::CardBus);
            if c.class() >> 8 == 0x06 && bridge {
                let b = |o: usize| u32::from(c.byte(o).unwrap_or(0));
                t.dev_bridge[i] = Some(t.bridges.len());
                t.bridges.push(Bridge {
                    domain: d.addr.domain,
                    primary: b(0x18),
                    secondary: b(0x19),
                    subordinate: b(0x1a),
                    dev: Some(i),
                    children: Vec::new(),
                    buses: Vec::new(),
                });
            }
        }
        // Parents that are no bridges in config space become bridges of
        // their children's bus.
        for (i, d) in devs.iter().enumerate() {
            let Some(p) = parents[i] else { continue };
            if t.dev_bridge[p].is_some() {
                continue;
            }
            t.dev_bridge[p] = Some(t.bridges.len());
            t.bridges.push(Bridge {
                domain: devs[p].addr.domain,
                primary: devs[p].addr.bus.into(),
                secondary: d.addr.bus.into(),
                subordinate: d.addr.bus.into(),
                dev: Some(p),
                children: Vec::new(),
                buses: Vec::new(),
            });
        }
        // The bridge tree: under the parent's bridge, else under the
        // narrowest bridge whose range holds the primary bus (pciutils
        // computes the host's width as 0 in unsigned arithmetic, so that
        // is always the host).
        for b in 0..t.bridges.len() {
            let width = |x: &Bridge| x.subordinate.wrapping_sub(x.primary);
            let mut best = t.bridges[b]
                .dev
                .and_then(|d| parents[d])
                .and_then(|p| t.dev_bridge[p]);
            if best.is_none() {
                let me = &t.bridges[b];
                for (c, cand) in t.bridges.iter().enumerate() {
                    if c != b
                        && (c == HOST || me.domain == cand.domain)
                        && me.primary >= cand.secondary
                        && me.primary <= cand.subordinate
                        && best.is_none_or(|x| width(&t.bridges[x]) > width(cand))
                    {
                        best = Some(c);
                    }
                }
            }
            if let Some(p) = best {
                t.bridges[p].children.insert(0, b);
            }
        }
        for b in 0..t.bridges.len() {
            let (domain, sec) = (t.bridges[b].domain, t.bridges[b].secondary);
            if t.find_bus(b, domain, sec).is_none() {
                t.new_bus(b, domain, sec);
            }
        }
        for i in 0..devs.len() {
            t.insert(devs, &parents, i, HOST);
        }
        t
    }

    fn find_bus(&self, b: usize, domain: u32, number: u32) -> Option<usize> {
        self.bridges[b]
            .buses
            .iter()
            .copied()
            .find(|&u| self.buses[u].domain == domain && self.buses[u].number == number)
    }

    fn new_bus(&mut self, b: usize, domain: u32, number: u32) -> usize {
        let u = self.buses.len();
        self.buses.push(Bus {
            domain,
            number,
            bridge: b,
            devs: Vec::new(),
        });
        self.bridges[b].buses.push(u);
        u
    }

    /// Puts device `i` on its bus, searching from bridge `b` down.
    fn insert(&mut self, devs: &[Device], parents: &[Option<usize>], i: usize, b: usize) {
        let a = devs[i].addr;
        let (domain, number) = (a.domain, u32::from(a.bus));
        let mut bus = None;
        if let Some(pb) = parents[i].and_then(|p| self.dev_bridge[p]) {
            bus = Some(match self.bridges[pb].buses.first() {
                Some(&u) => u,
                None => self.new_bus(pb, domain, number),
            });
        }
        if bus.is_none() {
            bus = self.find_bus(b, domain, number);
        }
        let bus = match bus {
            Some(u) => u,
            None => {
                let child = self.bridges[b].children.iter().copied().find(|&c| {
                    let c = &self.bridges[c];
                    c.domain == domain && c.secondary <= number && number <= c.subordinate
                });
                if let Some(c) = child {
                    return self.insert(devs, parents, i, c);
                }
                self.new_bus(b, domain, number)
            }
        };
        self.buses[bus].devs.push(i);
        self.dev_bus[i] = bus;
    }

    /// The bridge functions above device `i`, topmost first (what `-P`
    /// prints before the slot).
    pub fn bridge_path(&self, devs: &[Device], i: usize) -> Vec<Address> {
        let mut path = Vec::new();
        let mut seen = vec![false; devs.len()];
        seen[i] = true;
        let mut cur = i;
        // Bridges whose buses hold themselves would loop (lspci recurses
        // until it crashes): stop at the first one seen twice.
        while let Some(up) = self.bridges[self.buses[self.dev_bus[cur]].bridge].dev {
            if std::mem::replace(&mut seen[up], true) {
                break;
            }
            path.push(devs[up].addr);
            cur = up;
        }
        path.reverse();
        path
    }

    /// The `-t` picture. `shown` tells which devices the `-s`/`-d`
    /// filters select (`None`: no filter); `names` (for `-v`) adds vendor
    /// and device names.
    pub fn forest(
        &self,
        devs: &[Device],
        shown: Option<&dyn Fn(usize) -> bool>,
        names: Option<&Names<'_>>,
    ) -> String {
        let mut f = Forest {
            t: self,
            devs,
            shown,
            names,
            line: Line::default(),
            out: String::new(),
        };
        f.bridge(HOST, 0);
        f.out
    }
}

/// lspci's line buffer: 1024 bytes, NUL-terminated writes; after each
/// printed line, `+` and `|` become `|` and the rest blanks, so that the
/// next line draws the branches above it.
struct Line {
    buf: [u8; LINE_BUF],
}

const LINE_BUF: usize = 1024;

impl Default for Line {
    fn default() -> Self {
        Line { buf: [0; LINE_BUF] }
    }
}

impl Line {
    /// Writes `s` at `p` as `vsnprintf` into the space left; returns the
    /// new end.
    fn put(&mut self, p: usize, s: &str) -> usize {
        let space = (LINE_BUF - 1).saturating_sub(p);
        if space == 0 {
            return p;
        }
        let b = s.as_bytes();
        if b.len() < space {
            self.buf[p..p + b.len()].copy_from_slice(b);
            self.buf[p + b.len()] = 0;
            p + b.len()
        } else {
            self.buf[p..p + space - 1].copy_from_slice(&b[..space - 1]);
            self.buf[p + space - 1] = 0;
            p + space
        }
    }
}

struct Forest<'a, 'n> {
    t: &'a Topology,
    devs: &'a [Device],
    shown: Option<&'a dyn Fn(usize) -> bool>,
    names: Option<&'a Names<'n>>,
    line: Line,
    out: String,
}

impl Forest<'_, '_> {
    fn print(&mut self, p: usize) {
        let p = p.min(LINE_BUF - 1);
        self.line.buf[p] = 0;
        let end = self.line.buf.iter().position(|&b| b == 0).unwrap_or(p);
        self.out
            .push_str(&String::from_utf8_lossy(&self.line.buf[..end]));
        if p >= LINE_BUF - 1 {
            self.out.push_str("...");
        }
        self.out.push('\n');
        for b in &mut self.line.buf[..end] {
            *b = if *b == b'+' || *b == b'|' { b'|' } else { b' ' };
        }
    }

    fn dev_passes(&self, d: usize) -> bool {
        let Some(shown) = self.shown else {
            return true;
        };
        if shown(d) {
            return true;
        }
        match self.t.dev_bridge[d] {
            Some(b) => self.t.bridges[b].buses.iter().any(|&u| self.bus_passes(u)),
            None => false,
        }
    }

    fn bus_passes(&self, u: usize) -> bool {
        self.shown.is_none() || self.t.buses[u].devs.iter().any(|&d| self.dev_passes(d))
    }

    fn dev(&mut self, d: usize, p: usize) {
        let a = self.devs[d].addr;
        let mut p = self
            .line
            .put(p, &format!("{:02x}.{:x}", a.device, a.function));
        if let Some(b) = self.t.dev_bridge[d] {
            let br = &self.t.bridges[b];
            let s = if br.secondary == 0 {
                "-".to_string()
            } else if br.secondary == br.subordinate {
                format!("-[{:02x}]-", br.secondary)
            } else {
                format!("-[{:02x}-{:02x}]-", br.secondary, br.subordinate)
            };
            p = self.line.put(p, &s);
            self.bridge(b, p);
            return;
        }
        if let Some(names) = self.names {
            let c = &self.devs[d].config;
            let name = fit(names.vendor_device(c.vendor_id(), c.device_id()), 256);
            p = self.line.put(p, &format!("  {name}"));
        }
        self.print(p);
    }

    fn bus(&mut self, u: usize, p: usize) {
        let t = self.t;
        match t.buses[u].devs.as_slice() {
            [] => self.print(p),
            &[only] => {
                if self.dev_passes(only) {
                    let p = self.line.put(p, "--");
                    self.dev(only, p);
                } else {
                    self.print(p);
                }
            }
            [init @ .., last] => {
                let last = *last;
                let mut empty = true;
                for &d in init {
                    if self.dev_passes(d) {
                        let p2 = self.line.put(p, "+-");
                        self.dev(d, p2);
                        empty = false;
                    }
                }
                let mut p = p;
                if self.dev_passes(last) {
                    p = self.line.put(p, "\\-");
                    self.dev(last, p);
                    empty = false;
                }
                if empty {
                    self.print(p);
                }
            }
        }
    }

    fn bridge(&mut self, b: usize, p: usize) {
        let p = self.line.put(p, "-");
        let t = self.t;
        match t.bridges[b].buses.as_slice() {
            [] => self.print(p),
            [only] => {
                if self.bus_passes(*only) {
                    let mut p = p;
                    if b == HOST {
                        let u = &t.buses[*only];
                        p = self
                            .line
                            .put(p, &format!("[{:04x}:{:02x}]-", u.domain, u.number));
                    }
                    self.bus(*only, p);
                } else {
                    self.print(p);
                }
            }
            [init @ .., last] => {
                let mut empty = true;
                for &u in init.iter().chain(std::iter::once(last)) {
                    if self.bus_passes(u) {
                        let corner = if u == *last { "\\-" } else { "+-" };
                        let bus = &t.buses[u];
                        let k = self.line.put(
                            p,
                            &format!("{corner}[{:04x}:{:02x}]-", bus.domain, bus.number),
                        );
                        self.bus(u, k);
                        empty = false;
                    }
                }
                if empty {
                    self.print(p);
                }
            }
        }
    }
}
