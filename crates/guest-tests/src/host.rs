//! Requests to the host (xtask) over the rig's control port, the guest's second serial port
//! `/dev/ttyS1`.
//!
//! Protocol, one line each way: the guest writes `@@req ID KIND ARG…`, the host answers
//! `@@ack ID ok HEX` or `@@ack ID err HEX` where HEX is the hex-encoded UTF-8 reply. Kinds:
//! `monitor` (an HMP command line, run through QMP's `human-monitor-command`).

use crate::test::{Context, Failure};
use rustix::termios;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU32, Ordering};

const PORT: &str = "/dev/ttyS1";

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

fn open_port() -> Result<File, Failure> {
    let port = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(PORT)
        .context(PORT)?;
    // Raw mode: no echo back to the host, no line editing, no CR/LF translation.
    let mut t = termios::tcgetattr(&port).context(format!("{PORT}: tcgetattr"))?;
    t.make_raw();
    termios::tcsetattr(&port, termios::OptionalActions::Now, &t)
        .context(format!("{PORT}: tcsetattr"))?;
    Ok(port)
}

/// Sends one request and waits for its answer.
pub fn request(kind: &str, arg: &str) -> Result<String, Failure> {
    if arg.contains('\n') {
        return Err(Failure::new(format!(
            "host request {kind}: argument contains a newline"
        )));
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut port = open_port()?;
    writeln!(port, "@@req {id} {kind} {arg}").context(format!("{PORT}: write"))?;
    port.flush().context(format!("{PORT}: flush"))?;
    let mut reader = BufReader::new(port);
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .context(format!("{PORT}: read"))?;
        if n == 0 {
            return Err(Failure::new(format!(
                "{PORT}: end of file waiting for the host"
            )));
        }
        let mut words = line.trim().splitn(4, ' ');
        if words.next() != Some("@@ack") || words.next() != Some(id.to_string().as_str()) {
            continue; // noise or a stale answer
        }
        let status = words.next().unwrap_or("");
        let text = decode_hex(words.next().unwrap_or(""))
            .map_err(Failure::new)
            .context("host answer")?;
        return match status {
            "ok" => Ok(text),
            _ => Err(Failure::new(format!("host refused {kind} {arg:?}: {text}"))),
        };
    }
}

fn decode_hex(hex: &str) -> Result<String, String> {
    if hex.len() % 2 != 0 {
        return Err(format!("odd-length hex ({} digits)", hex.len()));
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or(""), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| format!("bad hex: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::decode_hex;

    #[test]
    fn hex_decodes() {
        assert_eq!(decode_hex("6f6b0a"), Ok("ok\n".to_owned()));
        assert_eq!(decode_hex(""), Ok(String::new()));
        assert!(decode_hex("6").is_err());
        assert!(decode_hex("zz").is_err());
    }
}
