# Generates synthetic.lspci-xxxx.txt (made-up functions in `lspci -xxxx` dump
# format) for tests/lspci.rs: python3 gen_synthetic.py > synthetic.lspci-xxxx.txt
# (and with the argument msi, aer, pcie, caps, ecaps or tree, the other
# synthetic-*.txt files).
import random, struct, sys
devs = []
def fill(pat, n):
    """n bytes: zeros, all ones, or the next n seeded random bytes."""
    if pat == "zero":
        return bytes(n)
    if pat == "ones":
        return b"\xff" * n
    return bytes(random.getrandbits(8) for _ in range(n))
class D:
    def __init__(s, addr, vendor, device, cls, rev=0, htype=0, size=4096, progif=0):
        s.addr=addr; s.b=bytearray(size)
        struct.pack_into('<HH', s.b, 0, vendor, device)
        s.b[8]=rev; s.b[9]=progif; struct.pack_into('<H', s.b, 0xa, cls); s.b[0xe]=htype
        s.last=None; s.elast=None
    def w8(s,o,v): s.b[o]=v
    def w16(s,o,v): struct.pack_into('<H', s.b, o, v)
    def w32(s,o,v): struct.pack_into('<I', s.b, o, v)
    def cap(s, off, cid, body=b''):
        s.b[off]=cid; s.b[off+1]=0; s.b[off+2:off+2+len(body)]=body
        if s.last is None:
            s.w16(6, s.b[6] | 0x10 | (s.b[7]<<8)); s.b[0x34 if (s.b[0xe]&0x7f)!=2 else 0x14]=off
        else: s.b[s.last+1]=off
        s.last=off
    def ecap(s, off, cid, ver, body=b''):
        s.w32(off, cid | (ver<<16))
        s.b[off+4:off+4+len(body)]=body
        if s.elast is not None:
            h=struct.unpack_from('<I', s.b, s.elast)[0]; s.w32(s.elast, h | (off<<20))
        s.elast=off
    def dump(s):
        out=["%s pcibox synthetic device" % s.addr]
        for r in range(0,len(s.b),16): out.append("%02x: "%r+" ".join("%02x"%x for x in s.b[r:r+16]))
        return "\n".join(out)+"\n"

# 1: Intel e1000e-like PCIe endpoint: PM, MSI 64-bit, PCIe, MSI-X, AER, DSN
d=D("01:00.0",0x8086,0x10d3,0x0200,rev=0)
d.w16(4,0x0406); d.w16(6,0x0010); d.w32(0x10,0xfebc0000); d.w32(0x14,0xfeb80000); d.w32(0x18,0xc001); d.w32(0x1c,0xfebe0000)
d.w32(0x30,0xfeb40000); d.w16(0x2c,0x8086); d.w16(0x2e,0x0000); d.w8(0x3c,11); d.w8(0x3d,1)
d.cap(0xc8,0x01,struct.pack('<HH',0xc822,0x2008))
d.cap(0xd0,0x05,struct.pack('<HIIH',0x0081,0xfee00000,0,0x4021))
d.cap(0xe0,0x10,struct.pack('<HIHHIHH',0x0001,0x00008cc1,0x2810,0x0010,0x00014c11,0x0040,0x1011))
d.cap(0xa0,0x11,struct.pack('<HII',0x8004,0x00000003,0x00002003))
d.ecap(0x100,0x0001,2,struct.pack('<IIIIII',0,0,0x00062030,0,0x2000,0))
d.ecap(0x140,0x0003,1,struct.pack('<II',0x33445566,0x00112233))
devs.append(d)
# 2: QEMU NVMe-like: 64-bit BAR, MSI-X, PCIe RCiEP v2, PM, unknown ext caps
d=D("02:00.0",0x1b36,0x0010,0x0108,rev=2,progif=2)
d.w16(4,0x0507); d.w32(0x10,0xfebf0004); d.w32(0x14,0x00000000); d.w16(0x2c,0x1af4); d.w16(0x2e,0x1100); d.w8(0x3d,1); d.w8(0x3c,10)
d.cap(0x40,0x11,struct.pack('<HII',0x0040,0x00002000,0x00003000))
d.cap(0x80,0x10,struct.pack('<HIHHIHH',0x0092,0,0,0,0,0,0))
d.cap(0x60,0x01,struct.pack('<HH',0x0003,0x0008))
d.ecap(0x100,0x0018,1,b'\0'*8)
d.ecap(0x110,0x002f,1,b'\0'*4)
d.ecap(0x120,0x000b,1,struct.pack('<I',0x01410abc))
d.ecap(0x140,0x0023,1,struct.pack('<IH',0x02c11e98,0x0003))
d.ecap(0x160,0x000d,1)
d.ecap(0x170,0x0010,1)
d.ecap(0x180,0x001e,1)
devs.append(d)
# 3: PCIe root port bridge (type 1) with windows, SSVID cap, MSI 32-bit w/ masking
d=D("00:1c.0",0x8086,0x1e10,0x0604,rev=0xc4,htype=0x81)
d.w16(4,0x0407); d.w32(0x10,0); d.w8(0x18,0); d.w8(0x19,3); d.w8(0x1a,4); d.w8(0x1c,0xe1); d.w8(0x1d,0xe1)
d.w16(0x20,0xf000); d.w16(0x22,0xf0f0); d.w16(0x24,0xe001); d.w16(0x26,0xe0f1); d.w32(0x28,0); d.w32(0x2c,0)
d.cap(0x40,0x10,struct.pack('<HIHHIHH',0x0142,0x8000,0,0x10,0x02124c12,0,0x7011))
d.cap(0x80,0x05,struct.pack('<HIHHII',0x0100,0xfee00000,0x4040,0,0,0))
d.cap(0x90,0x0d,struct.pack('<HHH',0,0x17aa,0x21fa))
d.cap(0xa0,0x01,struct.pack('<HH',0xc803,0))
d.ecap(0x100,0x0002,1,b'\0'*16)
devs.append(d)
# 4: plain PCI bridge, no caps, 16-bit I/O closed windows
d=D("00:1e.0",0x8086,0x244e,0x0604,rev=0xa4,htype=1,size=256,progif=1)
d.w16(4,0x0007); d.w8(0x19,5); d.w8(0x1a,5); d.w8(0x1c,0xf0); d.w8(0x1d,0x00); d.w16(0x20,0xfff0); d.w16(0x22,0); d.w16(0x24,0xfff1); d.w16(0x26,0x0001)
d.w32(0x38,0xfe000001)
devs.append(d)
# 5: IDE controller legacy with IO BARs, 256 bytes, no caps, bus master
d=D("00:01.1",0x8086,0x7010,0x0101,rev=0,size=256,progif=0x80)
d.w16(4,0x0005); d.w32(0x20,0xc041); d.w8(0xd,64)
devs.append(d)
# 6: disabled/unassigned BARs, 64-bit in last slot, low-1M, ROM disabled, BIST
d=D("03:00.0",0x10ec,0x8168,0x0200,rev=0x15,size=256)
d.w16(4,0x0000); d.w32(0x10,0xd001); d.w32(0x14,0x00000002); d.w32(0x18,0xf000000c); d.w32(0x1c,0x1); d.w32(0x20,0x0); d.w32(0x24,0x0000000c)
d.w32(0x30,0xfe000000); d.w8(0xf,0x82); d.w8(0x3e,1); d.w8(0x3f,2); d.w16(6,0x02b0)
d.cap(0x40,0x01,struct.pack('<HH',0x7e03,0x0103))
d.cap(0x50,0x05,struct.pack('<HIH',0x0086,0,0))
d.cap(0x70,0x09,bytes([0x0c])+b'\0'*9)
d.cap(0xb0,0x12,struct.pack('<HI',0x0010,0x48))
d.cap(0xc0,0x13,b'\0'*4)
d.cap(0xd0,0x03,b'\0'*6)
d.cap(0xe0,0x0a,struct.pack('<H',0x20a0))
d.cap(0xe4,0x04,struct.pack('<H',0x1223))
d.cap(0xe8,0x14,struct.pack('<H',0x0000))  # EA, no entries (lspci 3.9 aborts on one of size 0)
d.cap(0xf0,0x15,struct.pack('<H',0xabcd))
devs.append(d)
# 7: unknown vendor/device, unknown class, domain 0001, 64-byte dump only
d=D("0001:05:00.3",0x1234,0x0001,0x1280,rev=0,size=64)
devs.append(d)
# 8: virtio-net legacy+modern style on 256 bytes, vendor caps with bad length
d=D("00:06.0",0x1af4,0x1041,0x0200,rev=1,size=256)
d.w16(4,0x0407); d.w32(0x20,0xfe00000c); d.w16(0x2c,0x1af4); d.w16(0x2e,0x1100)
d.cap(0x40,0x09,bytes([0x10,1,4,0,0,0,0,0,0,0,0x38,0,0,0]))
d.cap(0x50,0x09,bytes([0x08,2,4,0,0,0,0,0,0,0,0x38,0,0,0]))
d.cap(0x60,0x09,bytes([0x14,2,4,0,0,0,0,0x30,0,0,0,0x10,0,0,4,0,0,0]))
d.cap(0x74,0x09,bytes([0x10,9,4,0,0,0,0,0,0,0,0,0,0,0]))
d.cap(0x84,0x11,struct.pack('<HII',0x4002,0x4,0x804))
devs.append(d)
# 9: CardBus bridge
d=D("02:01.0",0x104c,0xac56,0x0607,rev=0,htype=2,size=256)
d.w16(4,0x0007); d.w32(0x10,0xfe000000); d.w8(0x18,2); d.w8(0x19,3); d.w8(0x1a,6)
d.w32(0x1c,0xf4000000); d.w32(0x20,0xf5fff000); d.w32(0x2c,0x1000); d.w32(0x30,0x10fc); d.w16(0x40,0x1025); d.w16(0x42,0x0069); d.w16(0x44,0x3e0)
d.cap(0xa0,0x01,struct.pack('<HH',0xfe02,0))
devs.append(d)
# 10: unknown header type
d=D("04:00.0",0x8086,0x1237,0x0600,htype=0x7f,size=256)
devs.append(d)
# 11: PCIe variety of port types, MSI 64 + mask
for i,(ptype,slot) in enumerate([(1,0),(5,0),(6,1),(7,0),(8,1),(10,0),(3,0)]):
    d=D("06:%02x.0"%(i+1),0x10b5,0x8747,0x0604 if ptype in (5,6,7,8) else 0x0880,htype=1 if ptype in (5,6,7,8) else 0,size=4096)
    d.w16(4,0x0006)
    d.cap(0x40,0x10,struct.pack('<HIHHIHH',ptype<<4 | (slot<<8) | 2 | (3<<9),0,0,0,0,0,0))
    d.cap(0x70,0x05,struct.pack('<HIIHHII',0x0180 | (2<<1) | (1<<4) | 1,0xfee00000,0,0,0,0,0))
    d.cap(0x90,0x08,struct.pack('<H',[0x0000,0x2000,0x4000,0x8800|0x23,0xa800|3,0xb000,0xf800][i]))
    d.cap(0x98,0x07,b'\0'*6)
    d.ecap(0x100,[0x1d,0x1f,0x16,0x04,0x05,0x17,0x13][i],1,b'\0'*12)
    devs.append(d)
if sys.argv[1:] == ["msi"]:
    # Second file (msi-pm.lspci-xxx.txt): PM, MSI and MSI-X variants whose
    # -vv details pcibox renders in full.
    devs = []
    for i, (msi_ctl, pm_cap, pm_csr) in enumerate([
            (0x0000, 0x0002, 0x0000), (0x0081, 0xc9c3, 0x8103), (0x0100, 0x0022, 0x4e0b),
            (0x0187, 0x7e03, 0x0000), (0x01fb, 0xffff, 0xffff), (0x0078, 0x0001, 0x0002)]):
        d = D("00:%02x.0" % (i + 1), 0x8086, 0x1502 + i, 0x0200, rev=i, size=256)
        d.w16(4, 0x0406); d.w32(0x10, 0xf7e00000 + i * 0x20000); d.w32(0x18, 0xf080 + i * 0x20 + 1)
        d.w16(0x2c, 0x17aa); d.w16(0x2e, 0x21f3); d.w8(0x3d, 1); d.w8(0x3c, 20 + i)
        d.cap(0xc8, 0x01, struct.pack('<HHBB', pm_cap, pm_csr, 0xc0 if i == 2 else 0, 0))
        d.cap(0xd0, 0x05, struct.pack('<HIIIII', msi_ctl, 0xfee0100c, 0x12345678 if msi_ctl & 0x80 else 0x4055, 0xa5a5a5a5, 0x0000000f, 0x1))
        if i % 2:
            d.cap(0xe8, 0x11, struct.pack('<HII', 0x8000 | (i * 3), 0x3 + i, 0x2003 + i))
        devs.append(d)
if sys.argv[1:] == ["aer"]:
    # Third file (synthetic-aer.lspci-xxxx.txt): AER with random registers
    # on an endpoint, a root port, an event collector and a switch port.
    import random
    random.seed(7)
    devs = []
    for i, pt in enumerate([0, 4, 10, 5]):
        d = D("00:%02x.0" % (i + 1), 0x8086, 0x1234, 0x0604 if pt in (4, 5) else 0x0200,
              htype=1 if pt in (4, 5) else 0)
        d.cap(0x40, 0x10, struct.pack('<H', pt << 4 | 2))
        d.ecap(0x100, 0x0001, 2, bytes(random.getrandbits(8) for _ in range(0x38)))
        devs.append(d)
if sys.argv[1:] == ["pcie"]:
    # Fourth file (synthetic-pcie.lspci-xxx.txt): the PCI Express
    # capability's registers on every device/port type, capability versions
    # 1 and 2, slot implemented or not, as zeros, all ones and seeded random
    # patterns; endpoints on function 0 and elsewhere (lspci reads LnkCap2
    # only on function 0), with and without a memory BAR (AtomicOpsCap), and
    # capabilities too close to the end of 256 bytes for their registers.
    import random
    random.seed(2024)
    devs = []
    n = 0
    for pt in [0, 1, 4, 5, 6, 7, 8, 9, 10, 3, 15]:
        bridge = pt in (4, 5, 6, 7, 8)
        for ver in [1, 2, 3]:
            for pat in ["zero", "ones", "rand", "rand", "rand"]:
                if ver == 3 and pat != "rand":
                    continue
                n += 1
                slot = (pt == 3) or random.getrandbits(1)
                addr = "%02x:%02x.%d" % (n, n % 32 if n % 3 else 0, 0 if n % 5 else 3)
                d = D(addr, 0x10b5, 0x8700 + n, 0x0604 if bridge else 0x0880,
                      htype=1 if bridge else 0, size=256)
                d.w16(4, 0x0406)
                bars = random.choice([(), (0xfe000000,), (0xe001,), (0xe001, 0xfd00000c, 0)])
                for i, b in enumerate(bars[:2 if bridge else 6]):
                    d.w32(0x10 + 4 * i, b)
                body = bytes(fill(pat, 0x3c))
                flags = (random.getrandbits(16) if pat == "rand" else (0xffff if pat == "ones" else 0))
                flags = (flags & ~0xff & ~0x100) | (pt << 4) | ver | (slot << 8)
                if pat == "rand" and random.getrandbits(2) == 0:
                    # A capability at the end of 256 bytes: details cut.
                    at = random.choice([0xc4, 0xd0, 0xdc, 0xe0, 0xe8])
                else:
                    at = 0x40
                d.cap(at, 0x10, struct.pack('<H', flags) + body[:0xfc - at])
                devs.append(d)
    # Slot power limits at the encodings for 250 W and up (scale 0).
    for i, (pt, val) in enumerate([(0, 0xff), (5, 0xf7), (4, 0xff), (6, 0xfe), (7, 0xf0)]):
        bridge = pt != 0
        d = D("f0:%02x.0" % i, 0x10b5, 0x8800 + i, 0x0604 if bridge else 0x0880,
              htype=1 if bridge else 0, size=256)
        d.cap(0x40, 0x10, struct.pack('<HIHHIHHI', (pt << 4) | 0x102, val << 18, 0, 0, 0, 0, 0, val << 7))
        devs.append(d)
if sys.argv[1:] == ["caps"]:
    # Sixth file (synthetic-caps.lspci-xxx.txt): AGP, PCI-X, PCI Advanced
    # Features and SATA HBA capabilities on devices and bridges, and
    # HyperTransport capabilities of each kind, as zeros, all ones and
    # seeded random registers, then each at the end of the 256 bytes, too
    # close for its registers.
    import random
    random.seed(11)
    devs = []
    n = 0
    layout = [(0x40, 0x02, 12), (0x50, 0x07, 16), (0x60, 0x13, 6), (0x68, 0x12, 8)]
    for htype in [0, 1]:
        for pat in ["zero", "ones", "rand", "rand", "rand", "rand", "rand"]:
            n += 1
            d = D("00:%02x.0" % n, 0x1106, 0x3100 + n, 0x0604 if htype else 0x0300, htype=htype, size=256)
            for at, cid, size in layout:
                body = bytes(fill(pat, size - 2))
                d.cap(at, cid, body)
            devs.append(d)
    # HyperTransport: slave/primary and host/secondary interfaces with
    # revision IDs on both sides of 2.2 (and the "incomplete" window
    # between 1.1 and 2.2), MSI mappings fixed or not, revision ID types.
    for kind in ["pri", "sec", "msim", "rid", "misc"]:
        for pat in ["zero", "ones", "rand", "rand", "rand", "rand"]:
            n += 1
            d = D("00:%02x.0" % n, 0x1022, 0x7400 + n, 0x0600, size=256)
            body = bytearray(fill(pat, 30))
            cmd = struct.unpack_from('<H', body, 0)[0]
            if kind == "pri":
                cmd &= 0x1fff
                if pat == "rand":
                    body[10] = [0x05, 0x15, 0x22, 0x65][n % 4]
            elif kind == "sec":
                cmd = (cmd & 0x1fff) | 0x2000
                if pat == "rand":
                    body[6] = [0x05, 0x12, 0x22, 0x65][n % 4]
            elif kind == "msim":
                cmd = (cmd & 0x7ff) | 0xa800
            elif kind == "rid":
                cmd = (cmd & 0x7ff) | 0x8800
            else:
                cmd = (cmd & 0x7ff) | random.choice([0x4000, 0x4800, 0x8000, 0x9000, 0xb800, 0xd000, 0xf800])
            struct.pack_into('<H', body, 0, cmd)
            d.cap(0x70, 0x08, bytes(body))
            devs.append(d)
    # Enhanced Allocation entries (each sized for the base and max offset
    # halves it announces; lspci 3.9 aborts on an entry of size 0), and a
    # VPD capability (lspci cannot read VPD from a dump).
    for htype in [0, 1]:
        for k in range(4):
            n += 1
            d = D("00:%02x.0" % n, 0x8086, 0x0e00 + n, 0x0604 if htype else 0x0200, htype=htype, size=256)
            count = 1 + k
            body = bytearray(struct.pack('<H', count | 0xc0) + (bytes([3, 9, 0, 0]) if htype else b""))
            for e in range(count):
                base = random.getrandbits(32)
                top = random.getrandbits(32)
                size = 2 + (base >> 1 & 1) + (top >> 1 & 1)
                hdr = size | random.getrandbits(4) << 4 | random.choice([0, 1, 2, 5, 7, 0x42, 0xfd, 0xfe, 0xff]) << 8 \
                    | random.choice([3, 4, 6, 0x80, 0xff]) << 16 | random.getrandbits(2) << 30
                body += struct.pack('<III', hdr, base, top)
                body += bytes(random.getrandbits(8) for _ in range(4 * (size - 2)))
            d.cap(0x40, 0x14, bytes(body))
            d.cap(0xd0, 0x03, bytes(6))
            devs.append(d)
    for i, (cid, at) in enumerate([(0x02, 0xf8), (0x07, 0xf4), (0x07, 0xfc), (0x13, 0xfc), (0x12, 0xf8), (0x12, 0xfc), (0x08, 0xe8), (0x08, 0xf0)]):
        n += 1
        htype = i % 2
        d = D("00:%02x.0" % n, 0x1106, 0x3100 + n, 0x0604 if htype else 0x0300, htype=htype, size=256)
        body = bytearray(random.getrandbits(8) for _ in range(0xfe - at))
        if cid == 0x08:
            body[1] = (body[1] & 0x1f) | (0x20 if i % 2 else 0)
        d.cap(at, cid, bytes(body))
        devs.append(d)
if sys.argv[1:] == ["ecaps"]:
    # Fifth file (synthetic-ecaps.lspci-xxxx.txt): the extended capabilities
    # whose -vv details pcibox decodes, all in one chain per function, as
    # zeros, all ones and seeded random registers, under several PCIe port
    # types (Multicast depends on it); then each alone at 0xff0, too close
    # to the end of the space for its registers. Lines left out of the dump
    # (past the last capability) read as ff, in lspci as in pcibox.
    import random
    random.seed(99)
    devs = []
    ids = [0x02, 0x05, 0x07, 0x09, 0x0d, 0x0e, 0x0f, 0x10, 0x12, 0x13, 0x15, 0x17, 0x18, 0x19,
           0x1b, 0x1d, 0x1e, 0x1f, 0x24, 0x2e]
    n = 0
    for pt in [0, 4, 5, 6, 9, 10, 1]:
        bridge = pt in (4, 5, 6)
        for pat in ["zero", "ones", "rand", "rand"]:
            n += 1
            d = D("00:%02x.0" % n, 0x8086, 0x3400 + n, 0x0604 if bridge else 0x0200,
                  htype=1 if bridge else 0)
            d.cap(0x40, 0x10, struct.pack('<H', pt << 4 | 2))
            at = 0x100
            for cid in ids:
                size = 0x80 if cid in (0x02, 0x09) else 0x40
                body = bytes(fill(pat, size - 4))
                d.ecap(at, cid, random.getrandbits(4), body)
                at += size
            d.end = at
            d.tail = 0xff0
            devs.append(d)
    for i, cid in enumerate(ids + [0x02]):
        n += 1
        d = D("00:%02x.0" % n, 0x8086, 0x3400 + n, 0x0200)
        d.cap(0x40, 0x10, struct.pack('<H', 2))
        d.ecap(0x100, 0x0018, 1, struct.pack('<HH', 0x1001, 0x0c03))
        at = [0xff0, 0xff8, 0xffc][i % 3] if i < len(ids) else 0xfc0
        d.ecap(at, cid, 1, bytes([7] + [random.getrandbits(8) for _ in range(0xffc - at - 1)]))
        d.end = 0x110
        d.tail = at & ~0xf
        devs.append(d)
    # CXL port extensions DVSECs (vendor 1e98, ID 3) of every length around
    # the decoded size, and other vendors' DVSECs, with random registers.
    for i, ln in enumerate([8, 15, 16, 0x24, 0x27, 0x28, 0x2c, 0x30, 0x28, 0x28]):
        n += 1
        d = D("00:%02x.0" % n, 0x8086, 0x3400 + n, 0x0604, htype=1)
        d.cap(0x40, 0x10, struct.pack('<H', 0x42))
        vendor = 0x1e98 if i < 8 else 0x8086
        hdr = struct.pack('<IH', vendor | random.getrandbits(4) << 16 | ln << 20, 3)
        d.ecap(0x100, 0x0023, 1, hdr + fill("rand", 0x36))
        d.end = 0x140
        d.tail = 0xff0
        devs.append(d)
    # CXL device DVSECs (ID 0) of revisions 0-3 and lengths around the
    # decoded size; each range's type, class and interleave codes are kept
    # inside lspci's tables (lspci reads past them otherwise).
    for i in range(12):
        n += 1
        d = D("00:%02x.0" % n, 0x8086, 0x3400 + n, 0x0200)
        d.cap(0x40, 0x10, struct.pack('<H', 0x02))
        hdr = struct.pack('<IH', 0x1e98 | (i % 4) << 16 | [0x38, 0x3c, 0x37, 0x38][i // 3 % 4] << 20, 0)
        body = bytearray(hdr + fill("rand", 0x36))
        for off in (0x18, 0x28):
            w = struct.unpack_from('<H', body, off)[0] & ~0x1ffc
            w |= random.randrange(3) << 2 | random.randrange(3) << 5 | random.randrange(8) << 8
            struct.pack_into('<H', body, off, w)
        d.ecap(0x100, 0x0023, 1, bytes(body))
        d.end = 0x140
        d.tail = 0xff0
        devs.append(d)
    # The other CXL DVSECs lspci 3.9 decodes without reading past its
    # fetch: GPF for ports (4) and devices (5), the register locator (8),
    # MLD (9, nothing printed) and IDs it does not know (1, 6, 0xb, 0xff).
    for i, cid in enumerate([4, 4, 4, 5, 5, 5, 8, 8, 8, 9, 1, 6, 0xb, 0xff]):
        n += 1
        d = D("00:%02x.0" % n, 0x8086, 0x3400 + n, 0x0604, htype=1)
        d.cap(0x40, 0x10, struct.pack('<H', 0x42))
        ln = random.choice([0x10, 0x14, 0x1c, 0x24, 0x2c, 0x3c])
        hdr = struct.pack('<IH', 0x1e98 | random.getrandbits(4) << 16 | ln << 20, cid)
        d.ecap(0x100, 0x0023, 1, hdr + fill("rand", 0x36))
        d.end = 0x140
        d.tail = 0xff0
        devs.append(d)
    def sparse(d):
        out = ["%s pcibox synthetic device" % d.addr]
        for r in list(range(0, d.end, 16)) + list(range(d.tail, 0x1000, 16)):
            out.append("%02x: " % r + " ".join("%02x" % x for x in d.b[r:r + 16]))
        return "\n".join(out) + "\n"
    sys.stdout.write("\n".join(sparse(x) for x in devs))
    sys.exit(0)
if sys.argv[1:] == ["tree"]:
    # Fifth file (synthetic-tree.lspci-x.txt): a bus topology for -t and -P,
    # 64-byte headers only. Bridges (class 06xx with header type 1 or 2)
    # nested through a switch, one whose bus lies outside its parent's
    # range, one with secondary bus 0, a CardBus bridge with two buses, a
    # bus no bridge leads to, a bridge header with a non-bridge class and a
    # bridge class with a type 0 header, an unknown header type with an
    # interrupt line and BIST, a domain without bus 0, a
    # multi-function device, and a chain of 62 nested bridges whose -tv
    # line runs past lspci's 1024-byte line buffer in the device name (any
    # deeper and lspci 3.9 writes past its buffer).
    devs = []
    def br(addr, sec, sub, cls=0x0604, htype=1, vendor=0x8086, device=0x1234):
        d = D(addr, vendor, device, cls, htype=htype, size=64)
        d.w8(0x18, int(addr.split(":")[-2], 16)); d.w8(0x19, sec); d.w8(0x1a, sub)
        devs.append(d)
    def ep(addr, vendor=0x8086, device=0x10d3, cls=0x0200, htype=0):
        devs.append(D(addr, vendor, device, cls, htype=htype, size=64))
    ep("00:00.0", 0x8086, 0x0d57, 0x0600)
    br("00:01.0", 1, 3)
    br("01:00.0", 2, 3)
    br("02:00.0", 3, 3)
    br("02:01.0", 4, 4)
    ep("03:00.0", htype=0x80); ep("03:00.1"); ep("03:00.7", 0x1af4, 0x1041)
    ep("04:00.0", 0x1b36, 0x0010, 0x0108)
    br("00:02.0", 0, 0)
    br("00:03.0", 5, 6, cls=0x0607, htype=2, vendor=0x104c, device=0xac56)
    ep("05:00.0"); ep("06:00.0", 0x10ec, 0x8168)
    ep("0a:00.0", 0x1af4, 0x1042, 0x0100)
    br("00:04.0", 8, 8, cls=0x0200)
    ep("08:00.0")
    ep("00:05.0", 0x8086, 0x244e, 0x0604)
    # Unknown header type with an interrupt line: -vv still shows the IRQ.
    ep("00:06.0", 0x8086, 0x1237, 0x0600, htype=0x7f)
    devs[-1].w8(0x3c, 11); devs[-1].w8(0x3d, 1); devs[-1].w8(0xf, 0x80)
    br("0002:10:00.0", 0x11, 0x11)
    ep("0002:11:00.0", 0x1234, 0x0001, 0x1280)
    for n in range(62):
        br("0003:%02x:00.0" % n, n + 1, 0xff, vendor=0x10b5, device=0x8747)
    ep("0003:3e:00.0", 0x1b36, 0x0010, 0x0108)
sys.stdout.write("\n".join(x.dump() for x in devs))
