//! DHCPv4 and ICMP echo built from smoltcp's sockets (no hand-written DHCP
//! client), over the driver through [`NetDevice`] (`phy.rs`).

use crate::error::{Error, Result};
use crate::nic::E1000e;
use crate::phy::NetDevice;
use serde::Serialize;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{dhcpv4, icmp};
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, Ipv4Address,
    Ipv4Cidr,
};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn new_iface(dev: &mut NetDevice<'_>) -> Interface {
    let mac = dev.nic().mac().0;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id());
    let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    cfg.random_seed = seed;
    Interface::new(cfg, dev, SmolInstant::now())
}

/// What a DHCP server handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// Our address.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Default gateway.
    pub router: Option<Ipv4Addr>,
    /// DNS servers.
    pub dns: Vec<Ipv4Addr>,
    /// The server that answered.
    pub server: Ipv4Addr,
}

impl Lease {
    /// The address as CIDR text, e.g. `10.0.2.15/24`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix_len)
    }
}

/// Runs smoltcp's DHCPv4 client until it is configured or `timeout` passes.
pub fn dhcp(nic: &mut E1000e, timeout: Duration) -> Result<Lease> {
    let mut dev = NetDevice::new(nic);
    let mut iface = new_iface(&mut dev);
    let mut sockets = SocketSet::new(vec![]);
    let handle = sockets.add(dhcpv4::Socket::new());
    let start = Instant::now();
    loop {
        iface.poll(SmolInstant::now(), &mut dev, &mut sockets);
        dev.take_error()?;
        if let Some(dhcpv4::Event::Configured(c)) = sockets.get_mut::<dhcpv4::Socket>(handle).poll()
        {
            return Ok(Lease {
                address: c.address.address(),
                prefix_len: c.address.prefix_len(),
                router: c.router,
                dns: c.dns_servers.iter().copied().collect(),
                server: c.server.address,
            });
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(Error::Net(format!(
                "DHCP: no lease after {} ms",
                timeout.as_millis()
            )));
        }
        let delay = iface
            .poll_delay(SmolInstant::now(), &sockets)
            .map(|d| Duration::from_micros(d.total_micros()))
            .unwrap_or(left);
        dev.wait(delay.min(left).min(Duration::from_millis(100)))?;
    }
}

/// How to ping.
#[derive(Debug, Clone, Copy)]
pub struct PingOptions {
    /// Echo requests to send.
    pub count: u32,
    /// Time between requests.
    pub interval: Duration,
    /// How long to wait for the last reply.
    pub timeout: Duration,
    /// Payload bytes per request.
    pub size: usize,
}

impl Default for PingOptions {
    fn default() -> Self {
        PingOptions {
            count: 4,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            size: 56,
        }
    }
}

/// One reply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reply {
    /// Sequence number.
    pub seq: u16,
    /// Round trip time in milliseconds.
    pub rtt_ms: f64,
}

/// What a ping run saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingReport {
    /// Our address.
    pub local: String,
    /// The target.
    pub target: Ipv4Addr,
    /// Requests sent.
    pub sent: u32,
    /// Replies received (each sequence number once).
    pub received: u32,
    /// The replies, in arrival order.
    pub replies: Vec<Reply>,
}

/// Sends `opts.count` ICMP echo requests to `target` from `local` (with
/// `router` as default gateway) through smoltcp's ICMP socket, and collects
/// the replies.
pub fn ping(
    nic: &mut E1000e,
    local: Ipv4Cidr,
    router: Option<Ipv4Addr>,
    target: Ipv4Addr,
    opts: PingOptions,
) -> Result<PingReport> {
    let mut dev = NetDevice::new(nic);
    let mut iface = new_iface(&mut dev);
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::Ipv4(local));
    });
    if let Some(gw) = router {
        iface
            .routes_mut()
            .add_default_ipv4_route(gw)
            .map_err(|e| Error::net_op(format!("default route via {gw}"), e))?;
    }
    let mut sockets = SocketSet::new(vec![]);
    let n = opts.count as usize + 4;
    let sock = icmp::Socket::new(
        icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; n],
            vec![0; n * (opts.size + 64)],
        ),
        icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; n],
            vec![0; n * (opts.size + 64)],
        ),
    );
    let handle = sockets.add(sock);
    let ident = (std::process::id() as u16) ^ 0x5043;
    sockets
        .get_mut::<icmp::Socket>(handle)
        .bind(icmp::Endpoint::Ident(ident))
        .map_err(|e| Error::net_op("ICMP bind", e))?;
    let payload: Vec<u8> = (0..opts.size).map(|i| i as u8).collect();
    let caps = ChecksumCapabilities::default();
    let mut sent_at: Vec<Option<Instant>> = vec![None; opts.count as usize];
    let mut report = PingReport {
        local: format!("{}/{}", local.address(), local.prefix_len()),
        target,
        sent: 0,
        received: 0,
        replies: Vec::new(),
    };
    let start = Instant::now();
    let mut next_send = start;
    let mut last_deadline = None;
    loop {
        iface.poll(SmolInstant::now(), &mut dev, &mut sockets);
        dev.take_error()?;
        let sock = sockets.get_mut::<icmp::Socket>(handle);
        while sock.can_recv() {
            let Ok((data, from)) = sock.recv() else { break };
            let Ok(pkt) = Icmpv4Packet::new_checked(data) else {
                continue;
            };
            let Ok(Icmpv4Repr::EchoReply {
                ident: id,
                seq_no,
                data,
            }) = Icmpv4Repr::parse(&pkt, &caps)
            else {
                continue;
            };
            let slot = sent_at.get_mut(usize::from(seq_no));
            if id != ident || from != IpAddress::Ipv4(target) || data != &payload[..] {
                continue;
            }
            if let Some(slot) = slot {
                if let Some(t) = slot.take() {
                    report.received += 1;
                    report.replies.push(Reply {
                        seq: seq_no,
                        rtt_ms: t.elapsed().as_secs_f64() * 1e3,
                    });
                }
            }
        }
        let now = Instant::now();
        if report.sent < opts.count && now >= next_send && sock.can_send() {
            let seq = report.sent as u16;
            let repr = Icmpv4Repr::EchoRequest {
                ident,
                seq_no: seq,
                data: &payload,
            };
            let buf = sock
                .send(repr.buffer_len(), IpAddress::Ipv4(target))
                .map_err(|e| Error::net_op("ICMP send", e))?;
            let mut pkt = Icmpv4Packet::new_unchecked(buf);
            repr.emit(&mut pkt, &caps);
            sent_at[usize::from(seq)] = Some(now);
            report.sent += 1;
            next_send = now + opts.interval;
            if report.sent == opts.count {
                last_deadline = Some(now + opts.timeout);
            }
            continue;
        }
        if report.received == opts.count {
            break;
        }
        if last_deadline.is_some_and(|d| now >= d) {
            break;
        }
        let until = match last_deadline {
            Some(d) => d,
            None => next_send,
        };
        let mut delay = until.saturating_duration_since(now);
        if let Some(d) = iface.poll_delay(SmolInstant::now(), &sockets) {
            delay = delay.min(Duration::from_micros(d.total_micros()));
        }
        dev.wait(delay.min(Duration::from_millis(100)))?;
    }
    Ok(report)
}

/// A broadcast ARP request from `mac`/`sender` asking for `target`, padded
/// to the 60-byte Ethernet minimum.
pub fn arp_request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let eth = EthernetRepr {
        src_addr: EthernetAddress(mac),
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    };
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: sender,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let mut frame = vec![0u8; (EthernetFrame::<&[u8]>::header_len() + arp.buffer_len()).max(60)];
    let mut f = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut f);
    arp.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
    frame
}

/// Parses `a.b.c.d/len` into a smoltcp CIDR.
pub fn parse_cidr(s: &str) -> Result<Ipv4Cidr> {
    let bad = || {
        Error::Net(format!(
            "{s:?} is not an IPv4 address with prefix, like 10.0.2.15/24"
        ))
    };
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Address = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    Ok(Ipv4Cidr::new(addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        let c = parse_cidr("10.0.2.15/24").expect("valid");
        assert_eq!(
            (c.address(), c.prefix_len()),
            (Ipv4Addr::new(10, 0, 2, 15), 24)
        );
        for bad in ["10.0.2.15", "10.0.2/24", "10.0.2.15/33", "x/1", ""] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arp_request_layout() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let f = arp_request(mac, Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[28..32], &[10, 0, 2, 15]);
        assert_eq!(&f[38..42], &[10, 0, 2, 2]);
    }
}
