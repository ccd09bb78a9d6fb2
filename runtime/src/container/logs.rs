//! Container logs: stdout and stderr captured by the monitor into
//! `container.log`, one line per output line in the CRI format the kubelet
//! uses (`<RFC3339Nano> <stream> <F|P> <text>`), so `kcnode logs`, and later
//! `kubectl logs`, can replay them with timestamps and keep the two streams
//! apart.

use std::io::Write;

use super::state::now_rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Lines longer than this are split into partial (`P`) records.
const MAX_LINE: usize = 16 * 1024;

/// Turns output chunks into log records, keeping incomplete lines until
/// their newline arrives.
pub struct LogWriter<W: Write> {
    out: W,
    pending: [Vec<u8>; 2],
}

impl<W: Write> LogWriter<W> {
    pub fn new(out: W) -> Self {
        LogWriter {
            out,
            pending: [Vec::new(), Vec::new()],
        }
    }

    /// Records a chunk of output from `stream`.
    pub fn write(&mut self, stream: Stream, chunk: &[u8]) -> std::io::Result<()> {
        let ts = now_rfc3339();
        let idx = stream as usize;
        let mut records = Vec::new();
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.pending[idx].extend_from_slice(&rest[..nl]);
            records.extend(record(&ts, stream, b'F', &self.pending[idx]));
            self.pending[idx].clear();
            rest = &rest[nl + 1..];
        }
        self.pending[idx].extend_from_slice(rest);
        if self.pending[idx].len() >= MAX_LINE {
            records.extend(record(&ts, stream, b'P', &self.pending[idx]));
            self.pending[idx].clear();
        }
        if !records.is_empty() {
            self.out.write_all(&records)?;
        }
        Ok(())
    }

    /// Writes out unfinished lines (at the end of the output).
    pub fn finish(&mut self) -> std::io::Result<()> {
        let ts = now_rfc3339();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let idx = stream as usize;
            if !self.pending[idx].is_empty() {
                let r = record(&ts, stream, b'P', &self.pending[idx]);
                self.out.write_all(&r)?;
                self.pending[idx].clear();
            }
        }
        self.out.flush()
    }
}

fn record(ts: &str, stream: Stream, tag: u8, text: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(ts.len() + text.len() + 12);
    r.extend_from_slice(ts.as_bytes());
    r.push(b' ');
    r.extend_from_slice(stream.name().as_bytes());
    r.push(b' ');
    r.push(tag);
    r.push(b' ');
    r.extend_from_slice(text);
    r.push(b'\n');
    r
}

/// One parsed log record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp: &'a str,
    pub stream: Stream,
    /// False for a `P` record: the line continues in the next record.
    pub complete: bool,
    pub text: &'a [u8],
}

pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let complete = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some(Record {
        timestamp,
        stream,
        complete,
        text: parts.next().unwrap_or(b""),
    })
}

/// Renders one record as the user sees it: the text (with a newline if the
/// line is complete), prefixed by its timestamp if asked.
pub fn render(rec: &Record, timestamps: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(rec.text.len() + 40);
    if timestamps {
        out.extend_from_slice(rec.timestamp.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(rec.text);
    if rec.complete {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_partials_kept() {
        let mut w = LogWriter::new(Vec::new());
        w.write(Stream::Stdout, b"hello\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\n").unwrap();
        w.write(Stream::Stdout, b"tail").unwrap();
        w.finish().unwrap();
        let text = String::from_utf8(w.out).unwrap();
        let recs: Vec<_> = text
            .lines()
            .map(|l| parse(l.as_bytes()).unwrap())
            .map(|r| {
                (
                    r.stream,
                    r.complete,
                    String::from_utf8(r.text.to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            recs,
            vec![
                (Stream::Stdout, true, "hello".to_string()),
                (Stream::Stderr, true, "oops".to_string()),
                (Stream::Stdout, true, "world".to_string()),
                (Stream::Stdout, false, "tail".to_string()),
            ]
        );
    }

    #[test]
    fn records_render_with_or_without_timestamps() {
        let r = parse(b"2026-01-01T00:00:00.000000000Z stdout F a b").unwrap();
        assert_eq!(render(&r, false), b"a b\n");
        assert_eq!(render(&r, true), b"2026-01-01T00:00:00.000000000Z a b\n");
        assert!(parse(b"garbage").is_none());
    }
}
