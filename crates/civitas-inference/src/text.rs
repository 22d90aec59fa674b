//! Turning a stream of token bytes into text: UTF-8 reassembly across token
//! boundaries and stop sequences that may be split across tokens.

/// Accumulates token pieces and releases only text that can no longer be
/// part of a stop sequence.
#[derive(Debug, Default)]
pub struct StopAwareText {
    incomplete: Vec<u8>,
    held: String,
    stops: Vec<String>,
}

/// What one push produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Released {
    /// Text safe to send now.
    pub text: String,
    /// A stop sequence was found: generation must end; the stop sequence
    /// itself and anything after it are dropped.
    pub stopped: bool,
}

impl StopAwareText {
    pub fn new(stops: Vec<String>) -> StopAwareText {
        StopAwareText {
            incomplete: Vec::new(),
            held: String::new(),
            stops: stops.into_iter().filter(|stop| !stop.is_empty()).collect(),
        }
    }

    /// Adds the bytes of one token.
    pub fn push(&mut self, bytes: &[u8]) -> Released {
        self.incomplete.extend_from_slice(bytes);
        let valid_up_to = match std::str::from_utf8(&self.incomplete) {
            Ok(text) => text.len(),
            Err(error) => {
                if error.error_len().is_some() {
                    // Invalid bytes (not just incomplete): replace them.
                    let text = String::from_utf8_lossy(&self.incomplete).into_owned();
                    self.incomplete.clear();
                    self.held.push_str(&text);
                    return self.release();
                }
                error.valid_up_to()
            }
        };
        let rest = self.incomplete.split_off(valid_up_to);
        let complete = std::mem::replace(&mut self.incomplete, rest);
        self.held.push_str(&String::from_utf8_lossy(&complete));
        self.release()
    }

    fn release(&mut self) -> Released {
        if let Some(position) = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min()
        {
            let text = self.held[..position].to_owned();
            self.held.clear();
            return Released { text, stopped: true };
        }
        // Hold back the longest tail that could still begin a stop sequence.
        let mut hold = 0;
        for stop in &self.stops {
            for (index, _) in stop.char_indices().skip(1) {
                if self.held.ends_with(&stop[..index]) {
                    hold = hold.max(index);
                }
            }
        }
        let cut = self.held.len() - hold;
        let text = self.held[..cut].to_owned();
        self.held.drain(..cut);
        Released { text, stopped: false }
    }

    /// Everything still held, at the end of generation.
    pub fn finish(&mut self) -> String {
        let mut text = std::mem::take(&mut self.held);
        if !self.incomplete.is_empty() {
            text.push_str(&String::from_utf8_lossy(&self.incomplete));
            self.incomplete.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let mut text = StopAwareText::new(stops.iter().map(|s| (*s).to_owned()).collect());
        let mut out = String::new();
        for piece in pieces {
            let released = text.push(piece);
            out.push_str(&released.text);
            if released.stopped {
                return (out, true);
            }
        }
        out.push_str(&text.finish());
        (out, false)
    }

    #[test]
    fn reassembles_split_utf8() {
        let bytes = "é日".as_bytes();
        let (out, stopped) = run(&[], &[&bytes[..1], &bytes[1..3], &bytes[3..]]);
        assert_eq!(out, "é日");
        assert!(!stopped);
    }

    #[test]
    fn stop_split_across_pieces_is_removed() {
        let (out, stopped) = run(&["END"], &[b"hello E", b"N", b"D more"]);
        assert_eq!(out, "hello ");
        assert!(stopped);
    }

    #[test]
    fn partial_stop_that_does_not_complete_is_released() {
        let (out, stopped) = run(&["END"], &[b"EN", b"tity"]);
        assert_eq!(out, "ENtity");
        assert!(!stopped);
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let (out, stopped) = run(&["zz", "b"], &[b"aab zz"]);
        assert_eq!(out, "aa");
        assert!(stopped);
    }

    #[test]
    fn invalid_bytes_are_replaced_not_lost() {
        let (out, _) = run(&[], &[&[0xff, b'a']]);
        assert_eq!(out, "\u{fffd}a");
    }
}
