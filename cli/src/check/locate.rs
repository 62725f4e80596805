//! Line numbers for findings. The parsers used here give values, not positions (but for the YAML
//! store's spans), so a finding's line is found by looking for what it is about in the text: the
//! object's `kind:` line, a key, or the token itself. Never fails: an unknown line is `None`.

use std::ops::Range;

/// A text and where its lines start.
pub struct Locator<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Locator { text, line_starts }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// The offset at which 1-based `line` starts (the end of the text past the last line).
    pub fn line_start(&self, line: usize) -> usize {
        line.checked_sub(1)
            .and_then(|i| self.line_starts.get(i))
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Lines (offset of the start, text) that begin within `range`.
    fn lines(&self, range: Range<usize>) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.line_starts
            .iter()
            .copied()
            .filter(move |s| range.contains(s))
            .map(|s| {
                let end = self.text[s..].find('\n').map_or(self.text.len(), |e| s + e);
                (s, &self.text[s..end])
            })
    }

    /// The first line in `range` that sets `kind` to `kind` (YAML or JSON spelling); returns its
    /// start offset.
    pub fn kind_line(&self, range: Range<usize>, kind: &str) -> Option<usize> {
        self.lines(range).find_map(|(start, line)| {
            let rest = strip_key(line, "kind")?;
            let value = rest
                .trim()
                .trim_end_matches(',')
                .trim()
                .trim_matches(['"', '\'']);
            (value == kind).then_some(start)
        })
    }

    /// The first line in `range` whose entry has key `key` (`key:`, `"key":`, `key=`, `key =`,
    /// `- key: …`); returns its start offset.
    pub fn key_line(&self, range: Range<usize>, key: &str) -> Option<usize> {
        self.lines(range)
            .find_map(|(start, line)| strip_key(line, key).map(|_| start))
    }

    /// The first occurrence of `needle` in `range`: its offset.
    pub fn find(&self, range: Range<usize>, needle: &str) -> Option<usize> {
        if needle.is_empty() {
            return None;
        }
        let end = range.end.min(self.text.len());
        let start = range.start.min(end);
        self.text[start..end].find(needle).map(|i| start + i)
    }
}

/// The rest of `line` after `key` and its separator, when the line is an entry for `key`.
fn strip_key<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let line = line.trim_start();
    let line = line.strip_prefix("- ").map_or(line, str::trim_start);
    let (line, quoted) = match line.strip_prefix(['"', '\'']) {
        Some(rest) => (rest, true),
        None => (line, false),
    };
    let rest = line.strip_prefix(key)?;
    let rest = if quoted {
        rest.strip_prefix(['"', '\''])?
    } else {
        rest
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.strip_prefix([':', '='])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keys_and_kinds() {
        let text = "a: 1\n---\nkind: Secret\ndata:\n  password: eA==\n";
        let loc = Locator::new(text);
        assert_eq!(loc.line_of(0), 1);
        assert_eq!(loc.line_of(5), 2);
        assert_eq!(loc.line_of(text.len() - 1), 5);
        let at = loc.kind_line(0..text.len(), "Secret").unwrap();
        assert_eq!(loc.line_of(at), 3);
        assert_eq!(loc.kind_line(0..text.len(), "SealedSecret"), None);
        let at = loc.key_line(0..text.len(), "password").unwrap();
        assert_eq!(loc.line_of(at), 5);
        // A key is a whole key, not a prefix of another.
        assert_eq!(loc.key_line(0..text.len(), "pass"), None);
        let json = "{\n  \"kind\": \"Secret\",\n  \"data\": {\"k\": \"v\"}\n}";
        let loc = Locator::new(json);
        assert_eq!(
            loc.line_of(loc.kind_line(0..json.len(), "Secret").unwrap()),
            2
        );
        let env = "A=1\nTOKEN = x\n";
        let loc = Locator::new(env);
        assert_eq!(loc.line_of(loc.key_line(0..env.len(), "TOKEN").unwrap()), 2);
        assert_eq!(loc.line_of(loc.find(0..env.len(), "x").unwrap()), 2);
    }
}
