//! Pure parsers over the text the host gives us. No I/O here: each takes the captured text and
//! returns data, so every format is tested on real captured output.

pub mod blkid;
pub mod bootcfg;
pub mod fstab;
pub mod kv;
pub mod lvm;
pub mod mbr;
pub mod mdadm;
pub mod mdstat;
pub mod mountinfo;
pub mod ondisk;
pub mod xe;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{what}, line {line}: {reason}")]
    Line {
        what: &'static str,
        line: usize,
        reason: String,
    },
    #[error("{what}: {reason}")]
    Format { what: &'static str, reason: String },
}

impl ParseError {
    pub(crate) fn line(what: &'static str, line: usize, reason: impl Into<String>) -> Self {
        ParseError::Line {
            what,
            line,
            reason: reason.into(),
        }
    }
}

/// Undoes the `\ooo` octal escapes the kernel uses for spaces and tabs in mount paths.
pub(crate) fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let digits = bytes.get(i + 1..i + 4).unwrap_or_default();
            if digits.len() == 3 && digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_unescape() {
        assert_eq!(unescape_octal(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_octal(r"trailing\04"), r"trailing\04");
        assert_eq!(unescape_octal(r"\"), r"\");
    }
}
