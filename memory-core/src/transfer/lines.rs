//! Reading an input one line at a time with a bound on the line's length: a file that is not
//! JSON lines at all (a binary, one endless line) costs at most the bound in memory, never the
//! whole file.

use std::io::{self, BufRead};

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// The input is exhausted; nothing was read.
    End,
    /// A line is in the buffer, without its `\n` or `\r\n`.
    Line,
    /// A line longer than the bound was consumed and dropped; it had this many bytes.
    TooLong(u64),
}

/// Read the next line into `buf` (cleared first), keeping at most `max` bytes of it. The last
/// line of the input may lack its newline.
pub(crate) fn read_line(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Read> {
    buf.clear();
    let mut total: u64 = 0;
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            if total == 0 {
                return Ok(Read::End);
            }
            break;
        }
        let (chunk, ends) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        total += n as u64;
        if !too_long {
            // Room for the bound plus the line end, which is stripped below.
            if buf.len() + n > max.saturating_add(2) {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        input.consume(n);
        if ends {
            break;
        }
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if too_long || buf.len() > max {
        buf.clear();
        return Ok(Read::TooLong(total));
    }
    Ok(Read::Line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<(Read, Vec<u8>)> {
        // A tiny buffer so lines span several fills.
        let mut r = io::BufReader::with_capacity(3, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let got = read_line(&mut r, &mut buf, max).unwrap();
            if got == Read::End {
                return out;
            }
            out.push((got, buf.clone()));
        }
    }

    #[test]
    fn splits_lines_and_strips_line_ends() {
        let got = all(b"ab\r\n\ncdef\nlast", 10);
        let lines: Vec<&[u8]> = got.iter().map(|(_, l)| l.as_slice()).collect();
        assert_eq!(lines, [&b"ab"[..], b"", b"cdef", b"last"]);
        assert!(got.iter().all(|(r, _)| *r == Read::Line));
        assert!(all(b"", 10).is_empty());
    }

    #[test]
    fn an_overlong_line_is_dropped_and_the_next_one_read() {
        let got = all(b"0123456789abc\nok\n0123\n", 4);
        assert_eq!(got[0], (Read::TooLong(14), Vec::new()));
        assert_eq!(got[1], (Read::Line, b"ok".to_vec()));
        assert_eq!(got[2], (Read::Line, b"0123".to_vec()));
        assert_eq!(got.len(), 3);
    }
}
