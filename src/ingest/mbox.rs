//! Splits an mbox into messages, one in memory at a time, each bounded in size.
//!
//! The format is the common one: a message starts at a line beginning with `From `; a
//! line of one or more `>` followed by `From ` loses one `>` (mboxrd); anything before
//! the first `From ` line is ignored. (The same reading as mail-parser's iterator, whose
//! messages earlier imports archived, so that their hashes stay the same — but a message,
//! or a line, larger than the bound is skipped with an error instead of filling memory.)

use std::io::BufRead;

/// Largest message taken from an mbox (larger ones are reported, not read).
pub const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// One message's bytes, or why it was skipped.
pub type Item = Result<Vec<u8>, String>;

pub struct Messages<R> {
    reader: R,
    max: usize,
    /// The message being read (after its `From ` line), or none before the first one.
    current: Option<Vec<u8>>,
    /// The current message outgrew `max`: its remaining lines are skipped.
    oversized: bool,
    /// The reader is at the start of a line (not in the middle of one a bulk copy cut
    /// at the end of the buffer).
    at_line_start: bool,
    done: bool,
}

impl<R: BufRead> Messages<R> {
    pub fn new(reader: R) -> Messages<R> {
        Messages::with_limit(reader, MAX_MESSAGE)
    }

    pub fn with_limit(reader: R, max: usize) -> Messages<R> {
        Messages {
            reader,
            max,
            current: None,
            oversized: false,
            at_line_start: true,
            done: false,
        }
    }

    /// Reads one line (with its `\n`) of at most `cap` bytes into `line`; a longer line
    /// is read to its end but only its first `cap + 1` bytes are kept. `Ok(false)` at EOF.
    fn read_line(&mut self, line: &mut Vec<u8>, cap: usize) -> std::io::Result<bool> {
        line.clear();
        let mut any = false;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(any);
            }
            any = true;
            let (take, end) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = (cap + 1).saturating_sub(line.len());
            line.extend_from_slice(&buf[..take.min(room)]);
            self.reader.consume(take);
            if end {
                self.at_line_start = true;
                return Ok(true);
            }
        }
    }

    /// Copies whole lines from the buffer into the current message while none of them
    /// starts with `F` or `>`; the part of a line the buffer ends in is copied too (its
    /// start was checked). `Ok(false)` when nothing was copied: the next line needs a
    /// look of its own (or the input is at its end).
    fn copy_plain_lines(&mut self) -> std::io::Result<bool> {
        let buf = self.reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        let special = |b: u8| b == b'F' || b == b'>';
        if self.at_line_start && special(buf[0]) {
            return Ok(false);
        }
        // Up to the first line (after a newline) that starts with `F` or `>`, or the end
        // of the buffer.
        let mut end = buf.len();
        let mut ends_line = false;
        for i in memchr::memchr_iter(b'\n', buf) {
            match buf.get(i + 1) {
                Some(&b) if special(b) => {
                    end = i + 1;
                    ends_line = true;
                    break;
                }
                Some(_) => {}
                None => ends_line = true,
            }
        }
        let max = self.max;
        if let Some(m) = &mut self.current
            && !self.oversized
        {
            if m.len() + end > max {
                self.oversized = true;
                m.clear();
                m.shrink_to_fit();
            } else {
                m.extend_from_slice(&buf[..end]);
            }
        }
        self.reader.consume(end);
        self.at_line_start = ends_line;
        Ok(true)
    }

    fn finish(&mut self) -> Option<Item> {
        let m = self.current.take()?;
        if std::mem::take(&mut self.oversized) {
            return Some(Err(format!(
                "message larger than {} MiB: skipped",
                self.max / (1024 * 1024)
            )));
        }
        Some(Ok(m))
    }
}

impl<R: BufRead> Iterator for Messages<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        let mut line = Vec::with_capacity(128);
        loop {
            // The fast path: inside a message, runs of lines that start with neither `F`
            // nor `>` (which could be a `From ` line or a quoted one) are copied in bulk.
            if self.current.is_some() {
                match self.copy_plain_lines() {
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e.to_string()));
                    }
                    Ok(true) => continue,
                    Ok(false) => {}
                }
            }
            let cap = self.max;
            match self.read_line(&mut line, cap) {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.to_string()));
                }
                Ok(false) => {
                    self.done = true;
                    return self.finish();
                }
                Ok(true) => {}
            }
            if line.starts_with(b"From ") {
                let previous = self.finish();
                self.current = Some(Vec::new());
                if previous.is_some() {
                    return previous;
                }
                continue;
            }
            let Some(m) = &mut self.current else { continue };
            if self.oversized {
                continue;
            }
            let unquote = line.first() == Some(&b'>') && {
                let i = line.iter().position(|&c| c != b'>').unwrap_or(line.len());
                line[i..].starts_with(b"From ")
            };
            let part = if unquote { &line[1..] } else { &line[..] };
            if m.len() + part.len() > self.max {
                self.oversized = true;
                m.clear();
                m.shrink_to_fit();
                continue;
            }
            m.extend_from_slice(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], max: usize) -> Vec<Item> {
        Messages::with_limit(input, max).collect()
    }

    #[test]
    fn splits_like_mail_parser_and_unquotes_from_lines() {
        let mbox = b"preamble\nFrom a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\nBody\n>From here\n>>From there\n\nFrom b@x Mon Jan  1 00:00:00 2024\nSubject: 2\n\nZwei\n";
        let ours: Vec<Vec<u8>> = split(mbox, 1 << 20)
            .into_iter()
            .map(|m| m.unwrap())
            .collect();
        let theirs: Vec<Vec<u8>> = mail_parser::mailbox::mbox::MessageIterator::new(&mbox[..])
            .map(|m| m.unwrap().contents().to_vec())
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 2);
        assert!(ours[0].ends_with(b"From here\n>From there\n\n"));
    }

    #[test]
    fn an_oversized_message_is_skipped_and_the_next_one_read() {
        let mut mbox = b"From a@x\nSubject: big\n\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'x', 5000));
        mbox.extend_from_slice(b"\nFrom b@x\nSubject: small\n\nok\n");
        let items = split(&mbox, 1000);
        assert_eq!(items.len(), 2);
        assert!(items[0].as_ref().unwrap_err().contains("larger than"));
        assert_eq!(items[1].as_ref().unwrap(), b"Subject: small\n\nok\n");
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_mail_parser_on_any_lines(lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just("From a@x Mon Jan  1 00:00:00 2024\n".to_string()),
                proptest::strategy::Just(">From quoted\n".to_string()),
                proptest::strategy::Just(">>From twice\n".to_string()),
                proptest::strategy::Just("\n".to_string()),
                proptest::strategy::Just(">not from\n".to_string()),
                "[a-zA-Z >]{0,20}\n",
                "[a-z]{0,5}",
                "[F>rom ]{0,7}",
            ],
            0..40,
        )) {
            let input = lines.concat().into_bytes();
            let ours: Vec<Vec<u8>> = split(&input, 1 << 20).into_iter().map(|m| m.unwrap()).collect();
            let theirs: Vec<Vec<u8>> = mail_parser::mailbox::mbox::MessageIterator::new(&input[..])
                .map(|m| m.unwrap().contents().to_vec())
                .collect();
            // Buffers that cut lines anywhere, even in a `From ` (the bulk copy's edges).
            for capacity in [1, 2, 3, 5, 7, 16] {
                let cut: Vec<Vec<u8>> =
                    Messages::new(std::io::BufReader::with_capacity(capacity, &input[..]))
                        .map(|m| m.unwrap())
                        .collect();
                proptest::prop_assert_eq!(&cut, &theirs, "buffer of {}", capacity);
            }
            proptest::prop_assert_eq!(ours, theirs);
        }
    }
}
