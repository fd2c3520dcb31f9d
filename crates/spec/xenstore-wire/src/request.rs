//! Requests (client to daemon): one variant per request type of xs_wire.h.
//!
//! Payload layouts follow docs/misc/xenstore.txt; `|` below is a nul byte.

use crate::path;
use crate::{join_strings, parse_decimal, parse_domid, split_strings, Error, MsgType, Perm};

/// A parsed request. Strings borrow from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// `CONTROL <command>|<parameter>|*`
    Control {
        /// The command and its parameters.
        args: Vec<&'a [u8]>,
    },
    /// `DIRECTORY <path>|`
    Directory {
        /// Node path.
        path: &'a str,
    },
    /// `DIRECTORY_PART <path>|<offset>|`
    DirectoryPart {
        /// Node path.
        path: &'a str,
        /// Byte offset into the nul-separated children list.
        offset: u32,
    },
    /// `READ <path>|`
    Read {
        /// Node path.
        path: &'a str,
    },
    /// `GET_PERMS <path>|`
    GetPerms {
        /// Node path.
        path: &'a str,
    },
    /// `WATCH <wpath>|<token>|`
    Watch {
        /// Watched path or `@special`.
        path: &'a str,
        /// Opaque token echoed in events.
        token: &'a [u8],
    },
    /// `UNWATCH <wpath>|<token>|`
    Unwatch {
        /// Watched path.
        path: &'a str,
        /// Token given at registration.
        token: &'a [u8],
    },
    /// `TRANSACTION_START |`
    TransactionStart,
    /// `TRANSACTION_END T|` or `F|`
    TransactionEnd {
        /// `T`: commit; `F`: abort.
        commit: bool,
    },
    /// `INTRODUCE <domid>|<mfn>|<evtchn>|`
    Introduce {
        /// The domain.
        domid: u16,
        /// Its store page (ignored here: no shared ring).
        mfn: u64,
        /// Its event channel (ignored here).
        evtchn: u32,
    },
    /// `RELEASE <domid>|`
    Release {
        /// The domain.
        domid: u16,
    },
    /// `GET_DOMAIN_PATH <domid>|`
    GetDomainPath {
        /// The domain.
        domid: u16,
    },
    /// `WRITE <path>|<value>` (value not terminated, may hold nuls)
    Write {
        /// Node path.
        path: &'a str,
        /// New value.
        value: &'a [u8],
    },
    /// `MKDIR <path>|`
    Mkdir {
        /// Node path.
        path: &'a str,
    },
    /// `RM <path>|`
    Rm {
        /// Node path.
        path: &'a str,
    },
    /// `SET_PERMS <path>|<perm>|+`
    SetPerms {
        /// Node path.
        path: &'a str,
        /// Owner entry first, then per-domain entries.
        perms: Vec<Perm>,
    },
    /// `IS_DOMAIN_INTRODUCED <domid>|`
    IsDomainIntroduced {
        /// The domain.
        domid: u16,
    },
    /// `RESUME <domid>|`
    Resume {
        /// The domain.
        domid: u16,
    },
    /// `SET_TARGET <domid>|<tdomid>|`
    SetTarget {
        /// The domain acting.
        domid: u16,
        /// The domain it acts for.
        target: u16,
    },
    /// `RESET_WATCHES |`
    ResetWatches,
    /// `GET_FEATURE [<domid>|]`
    GetFeature {
        /// `None`: the store's own features.
        domid: Option<u16>,
    },
    /// `SET_FEATURE <domid>|<features>|`
    SetFeature {
        /// The domain.
        domid: u16,
        /// Feature bitmap.
        features: u32,
    },
    /// `GET_QUOTA [[<domid>|]<name>|]`
    GetQuota {
        /// `None`: the global default.
        domid: Option<u16>,
        /// `None`: list the quota names.
        name: Option<&'a str>,
    },
    /// `SET_QUOTA [<domid>|]<name>|<value>|`
    SetQuota {
        /// `None`: the global default.
        domid: Option<u16>,
        /// Quota name.
        name: &'a str,
        /// New value.
        value: u32,
    },
}

fn exactly<const N: usize>(payload: &[u8]) -> Result<[&[u8]; N], Error> {
    let fields = split_strings(payload)?;
    match fields.len() {
        n if n < N => Err(Error::MissingField),
        n if n > N => Err(Error::ExtraField),
        _ => fields.try_into().map_err(|_| Error::MissingField),
    }
}

fn ascii(field: &[u8]) -> Result<&str, Error> {
    if field.is_empty() || !field.iter().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadValue);
    }
    core::str::from_utf8(field).map_err(|_| Error::BadValue)
}

fn u32_field(field: &[u8]) -> Result<u32, Error> {
    u32::try_from(parse_decimal(field)?).map_err(|_| Error::BadNumber)
}

fn domid_str(d: u16) -> Vec<u8> {
    d.to_string().into_bytes()
}

impl<'a> Request<'a> {
    /// Parses the payload of a request of raw type `msg_type`.
    pub fn parse(msg_type: u32, payload: &'a [u8]) -> Result<Request<'a>, Error> {
        let ty = MsgType::from_u32(msg_type).ok_or(Error::UnknownType(msg_type))?;
        let one_path = |p: &'a [u8]| -> Result<&'a str, Error> {
            let [f] = exactly::<1>(p)?;
            path::check(f)
        };
        Ok(match ty {
            MsgType::Control => {
                let args = split_strings(payload)?;
                if args.is_empty() {
                    return Err(Error::MissingField);
                }
                Request::Control { args }
            }
            MsgType::Directory => Request::Directory {
                path: one_path(payload)?,
            },
            MsgType::DirectoryPart => {
                let [p, off] = exactly::<2>(payload)?;
                Request::DirectoryPart {
                    path: path::check(p)?,
                    offset: u32_field(off)?,
                }
            }
            MsgType::Read => Request::Read {
                path: one_path(payload)?,
            },
            MsgType::GetPerms => Request::GetPerms {
                path: one_path(payload)?,
            },
            MsgType::Watch | MsgType::Unwatch => {
                let fields = split_strings(payload)?;
                // A third, reserved field is tolerated (xenstore.txt: `?`).
                let (p, token) = match fields.as_slice() {
                    [p, t] | [p, t, _] => (*p, *t),
                    [] | [_] => return Err(Error::MissingField),
                    _ => return Err(Error::ExtraField),
                };
                let path = path::check_watch(p)?;
                if ty == MsgType::Watch {
                    Request::Watch { path, token }
                } else {
                    Request::Unwatch { path, token }
                }
            }
            // The payload is reserved; clients send a lone nul.
            MsgType::TransactionStart => Request::TransactionStart,
            MsgType::TransactionEnd => {
                let [f] = exactly::<1>(payload)?;
                match f {
                    b"T" => Request::TransactionEnd { commit: true },
                    b"F" => Request::TransactionEnd { commit: false },
                    _ => return Err(Error::BadValue),
                }
            }
            MsgType::Introduce => {
                let fields = split_strings(payload)?;
                let (d, m, e) = match fields.as_slice() {
                    [d, m, e] | [d, m, e, _] => (*d, *m, *e),
                    f if f.len() < 3 => return Err(Error::MissingField),
                    _ => return Err(Error::ExtraField),
                };
                Request::Introduce {
                    domid: parse_domid(d)?,
                    mfn: parse_decimal(m)?,
                    evtchn: u32_field(e)?,
                }
            }
            MsgType::Release => Request::Release {
                domid: parse_domid(exactly::<1>(payload)?[0])?,
            },
            MsgType::GetDomainPath => Request::GetDomainPath {
                domid: parse_domid(exactly::<1>(payload)?[0])?,
            },
            MsgType::IsDomainIntroduced => Request::IsDomainIntroduced {
                domid: parse_domid(exactly::<1>(payload)?[0])?,
            },
            MsgType::Resume => Request::Resume {
                domid: parse_domid(exactly::<1>(payload)?[0])?,
            },
            MsgType::Write => {
                let nul = payload
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(Error::Unterminated)?;
                Request::Write {
                    path: path::check(&payload[..nul])?,
                    value: &payload[nul + 1..],
                }
            }
            MsgType::Mkdir => Request::Mkdir {
                path: one_path(payload)?,
            },
            MsgType::Rm => Request::Rm {
                path: one_path(payload)?,
            },
            MsgType::SetPerms => {
                let fields = split_strings(payload)?;
                let (p, perms) = fields.split_first().ok_or(Error::MissingField)?;
                if perms.is_empty() {
                    return Err(Error::MissingField);
                }
                Request::SetPerms {
                    path: path::check(p)?,
                    perms: perms
                        .iter()
                        .map(|f| Perm::parse(f))
                        .collect::<Result<_, _>>()?,
                }
            }
            MsgType::SetTarget => {
                let [d, t] = exactly::<2>(payload)?;
                Request::SetTarget {
                    domid: parse_domid(d)?,
                    target: parse_domid(t)?,
                }
            }
            MsgType::ResetWatches => Request::ResetWatches,
            MsgType::GetFeature => match split_strings(payload)?.as_slice() {
                [] => Request::GetFeature { domid: None },
                [d] => Request::GetFeature {
                    domid: Some(parse_domid(d)?),
                },
                _ => return Err(Error::ExtraField),
            },
            MsgType::SetFeature => {
                let [d, f] = exactly::<2>(payload)?;
                Request::SetFeature {
                    domid: parse_domid(d)?,
                    features: u32_field(f)?,
                }
            }
            MsgType::GetQuota => match split_strings(payload)?.as_slice() {
                [] => Request::GetQuota {
                    domid: None,
                    name: None,
                },
                [n] => Request::GetQuota {
                    domid: None,
                    name: Some(ascii(n)?),
                },
                [d, n] => Request::GetQuota {
                    domid: Some(parse_domid(d)?),
                    name: Some(ascii(n)?),
                },
                _ => return Err(Error::ExtraField),
            },
            MsgType::SetQuota => match split_strings(payload)?.as_slice() {
                [n, v] => Request::SetQuota {
                    domid: None,
                    name: ascii(n)?,
                    value: u32_field(v)?,
                },
                [d, n, v] => Request::SetQuota {
                    domid: Some(parse_domid(d)?),
                    name: ascii(n)?,
                    value: u32_field(v)?,
                },
                f if f.len() < 2 => return Err(Error::MissingField),
                _ => return Err(Error::ExtraField),
            },
            MsgType::WatchEvent | MsgType::Error => return Err(Error::UnknownType(msg_type)),
        })
    }

    /// The request's message type.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Request::Control { .. } => MsgType::Control,
            Request::Directory { .. } => MsgType::Directory,
            Request::DirectoryPart { .. } => MsgType::DirectoryPart,
            Request::Read { .. } => MsgType::Read,
            Request::GetPerms { .. } => MsgType::GetPerms,
            Request::Watch { .. } => MsgType::Watch,
            Request::Unwatch { .. } => MsgType::Unwatch,
            Request::TransactionStart => MsgType::TransactionStart,
            Request::TransactionEnd { .. } => MsgType::TransactionEnd,
            Request::Introduce { .. } => MsgType::Introduce,
            Request::Release { .. } => MsgType::Release,
            Request::GetDomainPath { .. } => MsgType::GetDomainPath,
            Request::Write { .. } => MsgType::Write,
            Request::Mkdir { .. } => MsgType::Mkdir,
            Request::Rm { .. } => MsgType::Rm,
            Request::SetPerms { .. } => MsgType::SetPerms,
            Request::IsDomainIntroduced { .. } => MsgType::IsDomainIntroduced,
            Request::Resume { .. } => MsgType::Resume,
            Request::SetTarget { .. } => MsgType::SetTarget,
            Request::ResetWatches => MsgType::ResetWatches,
            Request::GetFeature { .. } => MsgType::GetFeature,
            Request::SetFeature { .. } => MsgType::SetFeature,
            Request::GetQuota { .. } => MsgType::GetQuota,
            Request::SetQuota { .. } => MsgType::SetQuota,
        }
    }

    /// The payload bytes, as `libxenstore` would send them.
    pub fn payload(&self) -> Vec<u8> {
        let s = |x: &str| x.as_bytes().to_vec();
        match self {
            Request::Control { args } => join_strings(args.iter().copied()),
            Request::Directory { path }
            | Request::Read { path }
            | Request::GetPerms { path }
            | Request::Mkdir { path }
            | Request::Rm { path } => join_strings([path.as_bytes()]),
            Request::DirectoryPart { path, offset } => {
                join_strings([path.as_bytes(), &s(&offset.to_string())])
            }
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                join_strings([path.as_bytes(), token])
            }
            Request::TransactionStart | Request::ResetWatches => vec![0],
            Request::TransactionEnd { commit } => {
                if *commit {
                    b"T\0".to_vec()
                } else {
                    b"F\0".to_vec()
                }
            }
            Request::Introduce { domid, mfn, evtchn } => join_strings([
                &domid_str(*domid)[..],
                &s(&mfn.to_string()),
                &s(&evtchn.to_string()),
            ]),
            Request::Release { domid }
            | Request::GetDomainPath { domid }
            | Request::IsDomainIntroduced { domid }
            | Request::Resume { domid } => join_strings([&domid_str(*domid)[..]]),
            Request::Write { path, value } => {
                let mut v = join_strings([path.as_bytes()]);
                v.extend_from_slice(value);
                v
            }
            Request::SetPerms { path, perms } => {
                let emitted: Vec<Vec<u8>> = perms.iter().map(Perm::emit).collect();
                join_strings(
                    core::iter::once(path.as_bytes()).chain(emitted.iter().map(|p| &p[..])),
                )
            }
            Request::SetTarget { domid, target } => {
                join_strings([&domid_str(*domid)[..], &domid_str(*target)])
            }
            Request::GetFeature { domid } => match domid {
                Some(d) => join_strings([&domid_str(*d)[..]]),
                None => Vec::new(),
            },
            Request::SetFeature { domid, features } => {
                join_strings([&domid_str(*domid)[..], &s(&features.to_string())])
            }
            Request::GetQuota { domid, name } => {
                let mut fields: Vec<Vec<u8>> = Vec::new();
                if let Some(d) = domid {
                    fields.push(domid_str(*d));
                }
                if let Some(n) = name {
                    fields.push(s(n));
                }
                join_strings(fields.iter().map(|f| &f[..]))
            }
            Request::SetQuota { domid, name, value } => {
                let mut fields: Vec<Vec<u8>> = Vec::new();
                if let Some(d) = domid {
                    fields.push(domid_str(*d));
                }
                fields.push(s(name));
                fields.push(s(&value.to_string()));
                join_strings(fields.iter().map(|f| &f[..]))
            }
        }
    }

    /// The whole message with the given ids.
    pub fn emit(&self, req_id: u32, tx_id: u32) -> Result<Vec<u8>, Error> {
        crate::emit_message(self.msg_type(), req_id, tx_id, &self.payload())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: MsgType, p: &[u8]) -> Result<Request<'_>, Error> {
        Request::parse(t as u32, p)
    }

    #[test]
    fn libxenstore_payloads() {
        assert_eq!(
            parse(MsgType::Read, b"/a/b\0").unwrap(),
            Request::Read { path: "/a/b" }
        );
        assert_eq!(
            parse(MsgType::Write, b"/a\0x\0y").unwrap(),
            Request::Write {
                path: "/a",
                value: b"x\0y"
            }
        );
        assert_eq!(
            parse(MsgType::Write, b"/a\0").unwrap(),
            Request::Write {
                path: "/a",
                value: b""
            }
        );
        assert_eq!(
            parse(MsgType::Watch, b"@releaseDomain\0tok\0").unwrap(),
            Request::Watch {
                path: "@releaseDomain",
                token: b"tok"
            }
        );
        assert_eq!(
            parse(MsgType::TransactionEnd, b"T\0").unwrap(),
            Request::TransactionEnd { commit: true }
        );
        assert_eq!(
            parse(MsgType::SetPerms, b"/a\0n0\0r5\0").unwrap().payload(),
            b"/a\0n0\0r5\0"
        );
        assert_eq!(
            parse(MsgType::DirectoryPart, b"/\x000\0").unwrap(),
            Request::DirectoryPart {
                path: "/",
                offset: 0
            }
        );
        assert_eq!(
            parse(MsgType::GetQuota, b"").unwrap(),
            Request::GetQuota {
                domid: None,
                name: None
            }
        );
    }

    #[test]
    fn malformed_payloads() {
        assert_eq!(parse(MsgType::Read, b"/a"), Err(Error::Unterminated));
        assert_eq!(parse(MsgType::Read, b""), Err(Error::MissingField));
        assert_eq!(parse(MsgType::Read, b"/a\0/b\0"), Err(Error::ExtraField));
        assert_eq!(parse(MsgType::Read, b"/a//b\0"), Err(Error::BadPath));
        assert_eq!(parse(MsgType::Write, b"/a"), Err(Error::Unterminated));
        assert_eq!(parse(MsgType::Watch, b"/a\0"), Err(Error::MissingField));
        assert_eq!(parse(MsgType::TransactionEnd, b"X\0"), Err(Error::BadValue));
        assert_eq!(parse(MsgType::SetPerms, b"/a\0"), Err(Error::MissingField));
        assert_eq!(parse(MsgType::SetPerms, b"/a\0q1\0"), Err(Error::BadPerm));
        assert_eq!(parse(MsgType::Release, b"70000\0"), Err(Error::BadNumber));
        assert_eq!(Request::parse(20, b""), Err(Error::UnknownType(20)));
        assert_eq!(Request::parse(15, b"a\0b\0"), Err(Error::UnknownType(15)));
    }
}
