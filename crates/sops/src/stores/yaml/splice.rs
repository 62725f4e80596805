//! Byte-faithful emission: the output is the source text with only what changed rewritten.
//!
//! One walk over the tree collects `(byte range, replacement)` edits — a changed scalar or comment
//! is re-rendered at its span in its original style, an entry without an origin (the engine's fresh
//! `sops` map) is inserted after the last line of its map, a value replaced wholesale is rewritten
//! after its key, text of entries that are no longer in the tree (the `sops` map on decrypt) is cut
//! out by whole lines — and one linear pass splices them into the source.

use super::render::{
    Fresh, Place, block_allowed, block_scalar, double_quoted, may_be_multiline, plain_in_block,
    render_scalar, render_scalar_cow, wrap_plain,
};
use zeroize::{Zeroize as _, Zeroizing};

use crate::Error;
use crate::tree::{
    Comment, Document, Map, MapEntry, Node, Origin, Scalar, ScalarStyle, Seq, SeqItem, Tree, Value,
};

/// The tag written in front of a quoted value that was plain inside a flow collection.
const PLAIN_IN_FLOW_MARK: &str = "!!str ";

struct Edit<'a> {
    start: usize,
    end: usize,
    text: EditText<'a>,
    /// Dropped when another edit covers its bytes (see [`Splicer::untab_flow`]).
    optional: bool,
    /// For a value newly written as a block scalar: its content indentation, and the text to
    /// write instead should the output's next lines join the block (checked once every edit is
    /// known: an entry removed below it, the `sops:` block on decryption, may have kept them
    /// apart in the source).
    unless_joined: Option<(usize, EditText<'a>)>,
}

/// The replacement text of an edit: most changed scalars are written as they are in the tree
/// (a plain ENC value, a plain decrypted string), so they are borrowed from it, not copied.
enum EditText<'a> {
    /// Rendered for the edit. Decrypted values are plaintext: wiped when dropped.
    Owned(Zeroizing<String>),
    /// The tree's own text.
    Borrowed(&'a str),
}

impl std::ops::Deref for EditText<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            EditText::Owned(s) => s,
            EditText::Borrowed(s) => s,
        }
    }
}

/// Where a node sits, for rendering a replacement that needs more than its own span.
#[derive(Clone, Copy)]
enum Parent {
    /// The value of a pair in a block map whose keys are at `col`.
    MapValue {
        /// Column of the keys.
        col: usize,
        /// Where nested blocks are based (the dash of a map that is a sequence item).
        base: usize,
    },
    /// An item of a block sequence whose dashes are at `col`.
    SeqItem { col: usize },
    /// Inside a flow collection.
    Flow,
    /// A document root.
    Root,
}

struct Splicer<'a, 'c> {
    src: &'a str,
    edits: Vec<Edit<'a>>,
    fresh: Fresh,
    step: usize,
    /// Spans of every comment still in the tree, sorted: never mistaken for removed content.
    comment_spans: &'c [(usize, usize)],
    /// The first problem found (reported after the walk).
    error: Option<Error>,
    /// The span of the document being written.
    doc_span: (usize, usize),
    /// Block maps spanning at least this many source bytes splice their values in parallel.
    parallel_min_bytes: usize,
}

fn parent_col(p: Parent) -> usize {
    match p {
        Parent::MapValue { col, .. } | Parent::SeqItem { col } => col,
        Parent::Flow | Parent::Root => 0,
    }
}

/// A block collection whose entries are all comments (YAML would read it as null).
fn only_comments(n: &Node) -> bool {
    match n {
        Node::Map(m) => {
            !m.entries.is_empty() && m.entries.iter().all(|e| matches!(e, MapEntry::Comment(_)))
        }
        Node::Seq(s) => {
            !s.items.is_empty() && s.items.iter().all(|i| matches!(i, SeqItem::Comment(_)))
        }
        Node::Scalar(_) => false,
    }
}

fn node_origin(n: &Node) -> Option<Origin> {
    match n {
        Node::Scalar(s) => s.origin,
        Node::Map(m) => m.origin,
        Node::Seq(s) => s.origin,
    }
}

/// Whether anything under an expanded alias copy changed.
fn dirty(n: &Node) -> bool {
    match n {
        Node::Scalar(s) => s.changed,
        Node::Map(m) => m.entries.iter().any(|e| match e {
            MapEntry::Pair(p) => dirty(&p.value),
            MapEntry::Comment(c) => c.changed,
        }),
        Node::Seq(s) => s.items.iter().any(|i| match i {
            SeqItem::Node(n) => dirty(n),
            SeqItem::Comment(c) => c.changed,
        }),
    }
}

fn collect_comment_spans(n: &Node, out: &mut Vec<(usize, usize)>) {
    fn push(c: &Comment, out: &mut Vec<(usize, usize)>) {
        if let Some(o) = c.origin {
            out.push(o.span);
        }
    }
    match n {
        Node::Scalar(_) => {}
        Node::Map(m) => {
            for e in &m.entries {
                match e {
                    MapEntry::Comment(c) => push(c, out),
                    MapEntry::Pair(p) => collect_comment_spans(&p.value, out),
                }
            }
        }
        Node::Seq(s) => {
            for i in &s.items {
                match i {
                    SeqItem::Comment(c) => push(c, out),
                    SeqItem::Node(n) => collect_comment_spans(n, out),
                }
            }
        }
    }
}

impl<'a> Splicer<'a, '_> {
    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn line_start(&self, p: usize) -> usize {
        self.bytes()[..p]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
    }

    /// The column a block map's keys stand at. Usually where the map starts; but node properties
    /// (a tag or anchor) written before the first key on the same line belong to that key, so then
    /// the keys stand where those properties start (`!t key: v` at column 0 has its keys at 0).
    fn map_column(&self, o: &Origin) -> usize {
        let line_start = self.line_start(o.span.0);
        let prefix = &self.bytes()[line_start..o.span.0];
        let mut i = 0;
        loop {
            while prefix.get(i) == Some(&b' ') {
                i += 1;
            }
            // Sequence indicators before the map (`- - key: v`) are not properties.
            if prefix.get(i) == Some(&b'-') && matches!(prefix.get(i + 1), None | Some(b' ')) {
                i += 1;
                continue;
            }
            break;
        }
        // An explicit key's `?` indicator stands where the keys do too (`? k` at column 0, the
        // key itself at 2; the map's span starts at the `?` even when the key is on a later line).
        let explicit = |p: usize| {
            self.bytes().get(p) == Some(&b'?')
                && matches!(
                    self.bytes().get(p + 1),
                    None | Some(b' ' | b'\t' | b'\n' | b'\r')
                )
        };
        // The span starts at a head comment (`&a # c` / `  s: 1`): the keys are on a later line,
        // where the map's column says.
        if self.bytes().get(o.span.0) == Some(&b'#') {
            return o.column;
        }
        let at_properties = matches!(prefix.get(i), Some(b'!' | b'&'))
            || (i < prefix.len() && explicit(line_start + i))
            || (i == prefix.len()
                && (matches!(self.bytes().get(o.span.0), Some(b'!' | b'&')) || explicit(o.span.0)));
        if at_properties {
            String::from_utf8_lossy(&prefix[..i]).chars().count()
        } else {
            o.column
        }
    }

    /// Where lines added to a block map go: after its last entry. But an empty root may be only
    /// comments and then the properties of its null node (`# c` / `&a`), which stand after the
    /// map's span: the lines go after those, or the properties would end up below the added key.
    fn after_properties(
        &self,
        last_pair_end: Option<usize>,
        last_end: Option<usize>,
        o: &Origin,
    ) -> Option<usize> {
        let (None, Some(end)) = (last_pair_end, last_end) else {
            return last_end;
        };
        let b = self.bytes();
        let mut p = end.max(o.span.1);
        loop {
            while p < b.len() && b[p].is_ascii_whitespace() {
                p += 1;
            }
            if b.get(p) == Some(&b'#') {
                p = self.after_line(p);
                continue;
            }
            break;
        }
        if !matches!(b.get(p), Some(b'&' | b'!')) {
            return last_end;
        }
        while matches!(b.get(p), Some(b'&' | b'!')) {
            p = self.property_end(p, b.len());
            while matches!(b.get(p), Some(b' ' | b'\t')) {
                p += 1;
            }
        }
        Some(p.saturating_sub(1).max(end))
    }

    /// The position just after the line break ending the line that contains `p` (or the end).
    fn after_line(&self, p: usize) -> usize {
        self.bytes()[p..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.src.len(), |i| p + i + 1)
    }

    /// Whether `o` is an alias token (`*a`), not block content that starts with `*` right
    /// below its header.
    fn is_alias(&self, o: &Origin) -> bool {
        let b = self.bytes();
        b.get(o.span.0) == Some(&b'*')
            && !(matches!(o.style, ScalarStyle::Literal | ScalarStyle::Folded)
                && super::parse::block_header(self.src, o.span.0).is_some_and(|(_, header_end)| {
                    header_end < o.span.0
                        && b[header_end..o.span.0].iter().all(u8::is_ascii_whitespace)
                }))
    }

    fn is_flow(&self, o: &Origin) -> bool {
        self.flow_open(o).is_some()
    }

    /// The tag among the node properties written before a scalar starting at `start`: its
    /// position, its text, and whether it is the last property (`!t 5`, not `!t &a 5`).
    fn tag_before(&self, start: usize) -> Option<(usize, &'a str, bool)> {
        let b = self.bytes();
        let mut p = start;
        let mut last = true;
        loop {
            // Properties may stand on an earlier line (`[!t` / `a]`).
            let mut q = p;
            while q > 0 && matches!(b[q - 1], b' ' | b'\t' | b'\n' | b'\r') {
                q -= 1;
            }
            let end = q;
            while q > 0 && !matches!(b[q - 1], b' ' | b'\t' | b'\n' | b'\r' | b'[' | b'{' | b',') {
                q -= 1;
            }
            // After a quoted key the value's properties may follow its `:` at once (`"a":!t v`).
            if let Some(i) = (q + 2..end)
                .find(|&i| matches!(b[i], b'!' | b'&') && matches!(&b[i - 2..i], b"\":" | b"':"))
            {
                q = i;
            }
            // A token inside a comment (`# !!int` above a value) is no property: look on before
            // the comment (`[!` / `# c` / `B]`: the tag stands above it).
            let line = self.line_start(q);
            let comment = (line..end)
                .find(|&i| b[i] == b'#' && (i == line || matches!(b[i - 1], b' ' | b'\t')));
            if let Some(hash) = comment {
                p = hash;
                continue;
            }
            match b.get(q) {
                _ if q == end => return None,
                Some(b'!') => return Some((q, &self.src[q..end], last)),
                Some(b'&') => {
                    last = false;
                    p = q;
                }
                _ => return None,
            }
        }
    }

    /// Where a flow collection's `{` or `[` is. Its span may start earlier: the head comments
    /// above it are its entries (`# c` / `{a: b}`: sops decrypts them with its path), and its
    /// properties (`! # c` / `[a]`) may stand before them, and so may a document marker when
    /// the comments stand before it (`# c` / `---` / `[a]`).
    fn flow_open(&self, o: &Origin) -> Option<usize> {
        let b = self.bytes();
        let mut p = o.span.0;
        while p < o.span.1 {
            if self.document_marker_at(p) {
                p += 3;
                continue;
            }
            match b[p] {
                b' ' | b'\t' | b'\n' | b'\r' => p += 1,
                b'#' => p = self.after_line(p),
                // A directive line (`%YAML 1.2`) of the document's prologue, after its comments.
                b'%' if p == 0 || b[p - 1] == b'\n' => p = self.after_line(p),
                b'!' | b'&' => p = self.property_end(p, o.span.1),
                b'{' | b'[' => return Some(p),
                _ => return None,
            }
        }
        None
    }

    /// The end (before `limit`) of the tag or anchor starting at `p`: a tag runs to a blank, an
    /// anchor's name also ends at a flow indicator (`&a[S]` anchors `[S]`).
    fn property_end(&self, p: usize, limit: usize) -> usize {
        let b = self.bytes();
        let anchor = b[p] == b'&';
        let mut end = p + 1;
        while end < limit
            && !b[end].is_ascii_whitespace()
            && !(anchor && matches!(b[end], b'[' | b']' | b'{' | b'}' | b','))
        {
            end += 1;
        }
        end
    }

    /// Whether a document marker (`---` or `...`, at the start of a line and followed by a blank,
    /// a line break or the end) starts at `p`.
    fn document_marker_at(&self, p: usize) -> bool {
        let b = self.bytes();
        (p == 0 || b[p - 1] == b'\n')
            && (b[p..].starts_with(b"---") || b[p..].starts_with(b"..."))
            && matches!(b.get(p + 3), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
    }

    /// The start of the first document marker line after the line holding `a` and before `b`.
    fn marker_between(&self, a: usize, b: usize) -> Option<usize> {
        let mut p = self.after_line(a);
        while p < b {
            if self.document_marker_at(p) {
                return Some(p);
            }
            p = self.after_line(p);
        }
        None
    }

    /// The `---` line that follows the line holding `p` after blank lines only, if any (a caller
    /// checks it is its document's own marker, not the next document's).
    fn start_marker_after(&self, p: usize) -> Option<usize> {
        let mut q = self.after_line(p);
        while q < self.src.len() {
            if self.document_marker_at(q) {
                return (self.bytes()[q] == b'-').then_some(q);
            }
            let next = self.after_line(q);
            if !self.src[q..next].trim().is_empty() {
                return None;
            }
            q = next;
        }
        None
    }

    /// The start of the `...` end marker line within `span`, if any.
    fn end_marker_in(&self, span: (usize, usize)) -> Option<usize> {
        let mut p = self.line_start(span.0);
        while p < span.1 {
            if self.document_marker_at(p) && self.bytes()[p] == b'.' {
                return Some(p);
            }
            p = self.after_line(p);
        }
        None
    }

    fn edit(&mut self, start: usize, end: usize, text: String) {
        self.edits.push(Edit {
            start,
            end,
            text: EditText::Owned(Zeroizing::new(text)),
            optional: false,
            unless_joined: None,
        });
    }

    /// Inserts whole lines (`text` ends with a line break) after the line holding `after`, or at
    /// the start of the line holding `at_line_of` when nothing precedes.
    /// Blank lines holding a tab right after the line they follow go before them too: yaml.v3
    /// reads such a line where the input had it, but not after the new lines' last value.
    fn insert_lines(&mut self, after: Option<usize>, at_line_of: usize, text: String) {
        let pos = match after {
            Some(e) => {
                let pos = self.after_line(e);
                let bytes = self.bytes();
                let blank_end = bytes[pos..]
                    .iter()
                    .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                    .map_or(bytes.len(), |i| pos + i);
                let blank_lines_end = if blank_end == bytes.len() {
                    blank_end
                } else {
                    self.line_start(blank_end)
                };
                if bytes[pos..blank_lines_end].contains(&b'\t') {
                    blank_lines_end
                } else {
                    pos
                }
            }
            None => self.line_start(at_line_of),
        };
        if pos == self.src.len() && !self.src.is_empty() && !self.src.ends_with('\n') {
            // Lines added at the end of a file without a final line break end with one, as sops
            // writes every file (so `sops:` appended to such a file gives sops' bytes).
            let mut t = String::with_capacity(text.len() + 1);
            t.push('\n');
            t.push_str(&text);
            self.edit(pos, pos, t);
        } else {
            self.edit(pos, pos, text);
        }
    }

    fn document(&mut self, doc: &'a Document) {
        self.doc_span = doc.origin.map_or((0, self.src.len()), |o| o.span);
        let root_origin = node_origin(&doc.root);
        match (&doc.root, root_origin, doc.origin) {
            (_, Some(_), _) => self.node(&doc.root, Parent::Root),
            (Node::Map(m), None, Some(d)) if !m.entries.is_empty() => {
                let mut out = String::new();
                self.fresh.document(&mut out, &doc.root);
                // An empty document ended by `...` gets its lines before the marker.
                match self.end_marker_in(d.span) {
                    Some(marker) => self.insert_lines(None, marker, out),
                    None => self.insert_lines(Some(d.span.1), d.span.1, out),
                }
            }
            (_, None, Some(_)) => {}
            (_, _, None) => {
                let mut out = String::new();
                if !self.src.is_empty() && !self.src.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str("---\n");
                self.fresh.document(&mut out, &doc.root);
                let end = self.src.len();
                self.edit(end, end, out);
            }
        }
    }

    fn node(&mut self, n: &'a Node, parent: Parent) {
        match n {
            Node::Scalar(s) => self.scalar(s, parent),
            Node::Map(m) => self.map(m, n, parent),
            Node::Seq(s) => self.seq(s, n, parent),
        }
    }

    fn content_indent(&self, parent: Parent) -> usize {
        match parent {
            // yaml.v3: nested blocks sit `indent` in from the collection's base; a block scalar
            // item two in from its dash.
            Parent::MapValue { col, base } => (base + self.step).max(col + 1),
            Parent::SeqItem { col } => col + 2,
            Parent::Flow | Parent::Root => self.step,
        }
    }

    /// Whether the next non-blank line after the one holding `p` is a comment indented at least
    /// `indent` (or a blank line indented past it): a block scalar written here would swallow it
    /// as content.
    fn comment_would_join_block(&self, p: usize, indent: usize) -> bool {
        lines_would_join_block(&self.bytes()[self.after_line(p)..], indent)
    }

    /// Whether only blanks (or a comment) follow `p` on its line.
    fn rest_of_line_blank(&self, p: usize) -> bool {
        let rest = &self.bytes()[p..self.after_line(p)];
        rest.iter()
            .all(|&b| b == b' ' || b == b'\t' || b == b'\n' || b == b'\r')
    }

    fn scalar(&mut self, s: &'a Scalar, parent: Parent) {
        let Some(o) = s.origin else { return };
        if !s.changed {
            return;
        }
        let (start, end) = o.span;
        let flow = matches!(parent, Parent::Flow);
        if let (Parent::MapValue { col, .. }, ScalarStyle::Plain, Value::Str(v)) =
            (parent, o.style, &s.value)
            && self.folded_plain_marker(&o, col, v)
        {
            return;
        }
        let block_style = matches!(o.style, ScalarStyle::Literal | ScalarStyle::Folded);
        if block_style && !self.is_alias(&o) {
            self.block_scalar(s, &o, parent);
            return;
        }
        let place = Place {
            flow,
            key: false,
            // Only a value with a line break can become a block: the look at the lines below
            // (a scan per value) is skipped for the others.
            block_ok: !flow
                && may_be_multiline(&s.value)
                && self.rest_of_line_blank(end)
                && !self.comment_would_join_block(end, self.content_indent(parent)),
            content_indent: self.content_indent(parent),
            parent_indent: parent_col(parent),
        };
        let mut start = start;
        let mut want = o.style;
        if flow {
            // A plain scalar in a flow collection that can no longer be plain (an ENC value has
            // commas and brackets) is quoted behind a `!!str` tag, which says "this was plain":
            // when the value can be plain again the tag goes and the scalar is plain as before.
            if want != ScalarStyle::Plain && self.src[..start].ends_with(PLAIN_IN_FLOW_MARK) {
                start -= PLAIN_IN_FLOW_MARK.len();
                want = ScalarStyle::Plain;
            }
        }
        // A core type tag (`!!int 5`) would misread the new text (an ENC string): drop it; the
        // value's own rendering keeps its type. Another tag stays, and then no `!!str` mark can
        // be added (a node has one tag): the value is quoted behind its own tag.
        let mut tagged = false;
        match self.tag_before(start) {
            Some((at, tag, true))
                if ["!!int", "!!float", "!!bool", "!!null", "!!timestamp"].contains(&tag) =>
            {
                start = at;
            }
            Some(_) => tagged = true,
            None => {}
        }
        let space = start == end && start > 0 && self.bytes()[start - 1] == b':';
        let text = Self::scalar_text(&s.value, want, place, flow && !tagged, space);
        let mut end = end;
        let mut unless_joined = None;
        if text.starts_with(['|', '>']) {
            // Blanks after the old scalar would become content of the block's last line.
            let b = self.bytes();
            while end < b.len() && (b[end] == b' ' || b[end] == b'\t') {
                end += 1;
            }
            let inline = Place {
                block_ok: false,
                ..place
            };
            unless_joined = Some((
                place.content_indent,
                Self::scalar_text(&s.value, want, inline, false, space),
            ));
        }
        self.edits.push(Edit {
            start,
            end,
            text,
            optional: false,
            unless_joined,
        });
    }

    /// A changed scalar's new text: `value` rendered for `place` in the `want` style if it can
    /// be, after a space when it follows its `:` directly; `may_mark` marks a formerly plain
    /// string that has to be quoted in a flow collection.
    fn scalar_text(
        value: &'a Value,
        want: ScalarStyle,
        place: Place,
        may_mark: bool,
        space: bool,
    ) -> EditText<'a> {
        let rendered = render_scalar_cow(value, want, place);
        let mark = may_mark
            && want == ScalarStyle::Plain
            && matches!(value, Value::Str(_))
            && (rendered.starts_with('\'') || rendered.starts_with('"'));
        match rendered {
            std::borrow::Cow::Borrowed(t) if !mark && !space => EditText::Borrowed(t),
            rendered => {
                let mut t = Zeroizing::new(String::with_capacity(rendered.len() + 8));
                if space {
                    t.push(' ');
                }
                if mark {
                    t.push_str(PLAIN_IN_FLOW_MARK);
                }
                t.push_str(&rendered);
                // A quoted rendering is plaintext too.
                if let std::borrow::Cow::Owned(mut o) = rendered {
                    zeroize::Zeroize::zeroize(&mut o);
                }
                EditText::Owned(t)
            }
        }
    }

    /// A plain scalar that the source wrapped over several lines exactly as libyaml does at width
    /// 80 (kubebuilder CRDs, yaml.v2 output) loses its line breaks once encrypted. To give them
    /// back on decryption, its ENC value is written as a folded block with an explicit
    /// indentation indicator and strip chomping (`>2-`), content at the continuation indent; a
    /// decrypted value under such a header is wrapped again. Returns whether it wrote the marker.
    fn folded_plain_marker(&mut self, o: &Origin, col: usize, v: &str) -> bool {
        let (start, end) = o.span;
        let span = &self.src[start..end];
        if !span.contains('\n') || !self.rest_of_line_blank(end) || self.is_alias(o) {
            return false;
        }
        let lines: Vec<&str> = span.split('\n').collect();
        let cont = lines[1].len() - lines[1].trim_start_matches(' ').len();
        if lines.iter().any(|l| l.trim().is_empty())
            || cont <= col
            || cont - col > 9
            || self.comment_would_join_block(end, cont)
        {
            // (A comment indented to the content below it would be read as content.)
            return false;
        }
        let original = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        if wrap_plain(&original, o.column, cont) != span
            || v.contains('\n')
            || v.starts_with(' ')
            || !block_allowed(v)
        {
            return false;
        }
        let text = format!(">{}-\n{}{}", cont - col, " ".repeat(cont), v);
        // Blanks after the plain scalar were nothing; after a block's content they would end
        // its value (`ENC[…] ` no longer parses as an encrypted value): they go.
        let b = self.bytes();
        let mut end = end;
        while end < b.len() && matches!(b[end], b' ' | b'\t') {
            end += 1;
        }
        self.edit(start, end, text);
        true
    }

    /// Rewrites a `|`/`>` scalar: the header (found on the line before the content) and the
    /// content lines are separate edits so a comment on the header line stays.
    fn block_scalar(&mut self, s: &Scalar, o: &Origin, parent: Parent) {
        let (start, end) = o.span;
        let b = self.bytes();
        // Without content and a line after it, a block scalar sits at its own header.
        let header = if start == end && matches!(b.get(start), Some(b'|' | b'>')) {
            let line_end = self.src[start..]
                .find(['\r', '\n'])
                .map_or(self.src.len(), |i| start + i);
            Some((start, line_end))
        } else {
            super::parse::block_header(self.src, start)
        };
        let Some((ind, header_line_end)) = header else {
            let text = render_scalar(
                &s.value,
                ScalarStyle::DoubleQuoted,
                Place {
                    flow: false,
                    key: false,
                    block_ok: false,
                    content_indent: 0,
                    parent_indent: 0,
                },
            );
            self.edit(start, end, text);
            return;
        };
        let mut hend = ind + 1;
        while hend < header_line_end && matches!(b[hend], b'1'..=b'9' | b'+' | b'-') {
            hend += 1;
        }
        let header = &self.src[ind..hend];
        if let (Parent::MapValue { .. }, Value::Str(v)) = (parent, &s.value)
            && header.starts_with('>')
            && header.ends_with('-')
            && header.len() == 3
            && !v.contains('\n')
            && plain_in_block(v)
        {
            // The marker left by `folded_plain_marker`: the value was a wrapped plain scalar.
            let indent = start - self.line_start(start);
            let column = ind - self.line_start(ind);
            self.edit(ind, end, wrap_plain(v, column, indent));
            return;
        }
        // The content's own indentation, unless it has none (only blank lines: its span starts
        // at a line's start).
        let content_indent = if start > 0
            && self.line_start(start) <= start
            && o.span.0 > header_line_end
            && start - self.line_start(start) > parent_col(parent)
        {
            start - self.line_start(start)
        } else {
            self.content_indent(parent)
        };
        let content_indent = content_indent.max(1);
        // Blank lines after the content's line (each ended by a line break).
        let mut trailing_blank = 0;
        let mut p = self.after_line(end);
        while p < self.src.len() {
            let next = self.after_line(p);
            let line = &self.src[p..next];
            if !line.ends_with('\n') || !line.trim().is_empty() {
                break;
            }
            trailing_blank += 1;
            p = next;
        }
        match &s.value {
            Value::Str(v) if block_allowed(v) => {
                let indicator = if o.style == ScalarStyle::Folded
                    && !v.trim_end_matches('\n').contains('\n')
                    && !v.starts_with(' ')
                {
                    '>'
                } else {
                    '|'
                };
                let rendered = block_scalar(
                    v,
                    indicator,
                    content_indent,
                    parent_col(parent),
                    trailing_blank,
                );
                let (head, body) = rendered.split_once('\n').unwrap_or((&rendered, ""));
                self.edit(ind, hend, head.to_owned());
                let body = if body.is_empty() && !rendered.contains('\n') {
                    String::new()
                } else {
                    format!("\n{body}")
                };
                self.edit(header_line_end, end, body);
            }
            v => {
                let text = match v {
                    Value::Str(v) => double_quoted(v),
                    other => render_scalar(
                        other,
                        ScalarStyle::Plain,
                        Place {
                            flow: false,
                            key: false,
                            block_ok: false,
                            content_indent: 0,
                            parent_indent: 0,
                        },
                    ),
                };
                self.edit(ind, hend, text);
                self.edit(header_line_end, end, String::new());
            }
        }
    }

    /// Tabs in the indentation of a flow collection's lines (`[a,\n\tb]`) are plain separation
    /// to YAML, but granit-parser refuses them once a quoted scalar came before in the collection
    /// (`['ENC[…]',\n\tb]`: "tabs disallowed within this context"), which is what encryption
    /// writes: a file Signet encrypted would not read back (sops reads it). So a flow collection
    /// with changed values gets spaces there instead; leading blanks of a line in a flow
    /// collection are never data (a multi-line scalar trims them too).
    fn untab_flow(&mut self, span: (usize, usize)) {
        let b = self.bytes();
        let end = span.1.min(b.len());
        let mut p = span.0;
        while let Some(i) = b[p..end].iter().position(|&c| c == b'\n') {
            p += i + 1;
            while p < end && matches!(b[p], b' ' | b'\t') {
                if b[p] == b'\t' {
                    self.edits.push(Edit {
                        start: p,
                        end: p + 1,
                        text: EditText::Borrowed(" "),
                        optional: true,
                        unless_joined: None,
                    });
                }
                p += 1;
            }
        }
    }

    fn comment(&mut self, c: &Comment) {
        if let Some(o) = c.origin
            && c.changed
        {
            if c.text.contains(['\n', '\r']) {
                self.error.get_or_insert(Error::Emit {
                    format: "yaml",
                    message: "a comment cannot contain a line break".into(),
                });
                return;
            }
            self.edit(o.span.0, o.span.1, format!("#{}", c.text));
        }
    }

    /// Rewrites an alias token whose expanded value changed: the value is written out in full.
    fn replace_alias(&mut self, n: &Node, o: &Origin, parent: Parent) {
        let mut out = String::new();
        match (n, parent) {
            (Node::Scalar(_), _) => unreachable!("scalar aliases are handled as scalars"),
            (_, Parent::Flow | Parent::Root) => self.fresh.flow(&mut out, n),
            (_, Parent::MapValue { col, base }) => {
                // Start right after the `:` so no blank is left at the end of the key line.
                let b = self.bytes();
                let mut st = o.span.0;
                while st > 0 && b[st - 1] == b' ' {
                    st -= 1;
                }
                let child = (base + self.step).max(col + 1);
                self.fresh.value_after_key(&mut out, n, child, col);
                self.edit(st, o.span.1, out);
                return;
            }
            (_, Parent::SeqItem { col }) => {
                self.fresh.seq_item(&mut out, n, col);
                // `seq_item` writes the dash; the source already has it.
                let text = out.strip_prefix("- ").map(str::to_owned).unwrap_or(out);
                self.edit(o.span.0, o.span.1, text);
                return;
            }
        }
        self.edit(o.span.0, o.span.1, out);
    }

    /// Position right after the `:` that ends the key starting at `key_start`.
    fn after_colon(&self, key_start: usize, style: ScalarStyle) -> usize {
        let b = self.bytes();
        let mut i = key_start;
        match style {
            ScalarStyle::DoubleQuoted => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            ScalarStyle::SingleQuoted => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            _ => {
                while i < b.len() {
                    if b[i] == b':'
                        && matches!(
                            b.get(i + 1),
                            None | Some(b' ' | b'\n' | b'\r' | b'\t' | b',' | b'}' | b']')
                        )
                    {
                        return i + 1;
                    }
                    i += 1;
                }
                return i;
            }
        }
        while i < b.len() && b[i] != b':' {
            i += 1;
        }
        (i + 1).min(b.len())
    }

    /// Cuts content between retained children that is not in the tree any more, by whole lines.
    fn cut_removed(
        &mut self,
        container: (usize, usize),
        spans: Vec<(usize, usize)>,
        flow: bool,
    ) -> bool {
        self.cut_removed_in(container, spans, flow, false)
    }

    /// [`Self::cut_removed`]; in a block sequence (`dashes`) a removed item takes its `- ` along.
    fn cut_removed_in(
        &mut self,
        container: (usize, usize),
        mut spans: Vec<(usize, usize)>,
        flow: bool,
        dashes: bool,
    ) -> bool {
        spans.sort_unstable();
        let mut cur = container.0;
        let mut gaps = Vec::new();
        for (s, e) in spans {
            if s > cur {
                gaps.push((cur, s));
            }
            cur = cur.max(e);
        }
        if container.1 > cur {
            gaps.push((cur, container.1));
        }
        let mut found = false;
        for (a, b) in gaps {
            if let Some((first, last)) = self.foreign(a, b, flow) {
                found = true;
                if flow {
                    continue;
                }
                let bytes = self.bytes();
                let ls = self.line_start(first);
                let lead_ok = |c: u8| c == b' ' || c == b'\t' || (dashes && c == b'-');
                let mut del_start = if bytes[ls..first].iter().all(|&c| lead_ok(c)) {
                    if dashes && !(ls < a && bytes[ls..a].iter().any(|&c| c != b' ' && c != b'\t'))
                    {
                        ls
                    } else {
                        ls.max(a)
                    }
                } else {
                    first
                };
                let le = self.after_line(last);
                let del_end = if bytes[last + 1..le].iter().all(|c| c.is_ascii_whitespace()) {
                    le.min(b.max(le))
                } else {
                    last + 1
                };
                if del_end == self.src.len()
                    && !self.src.ends_with('\n')
                    && del_start > 0
                    && bytes[del_start - 1] == b'\n'
                {
                    del_start -= 1;
                }
                self.edit(del_start, del_end, String::new());
            }
        }
        found
    }

    /// The `}` of the flow map at `span`, which may run on over comments after it.
    fn flow_map_close(&self, span: (usize, usize)) -> Option<usize> {
        let b = self.bytes();
        let mut q = span.1;
        loop {
            if q > span.0 && b[q - 1].is_ascii_whitespace() {
                q -= 1;
            } else if let Some(s) = self.comment_ending_at(q).filter(|&s| s > span.0) {
                q = s;
            } else {
                break;
            }
        }
        (q > span.0 && b[q - 1] == b'}').then(|| q - 1)
    }

    /// Where the kept comment ending at `q` starts (comments are sorted and do not overlap).
    fn comment_ending_at(&self, q: usize) -> Option<usize> {
        let i = self.comment_spans.partition_point(|&(s, _)| s < q);
        let &(s, e) = self.comment_spans.get(i.checked_sub(1)?)?;
        (e == q).then_some(s)
    }

    /// Whether a kept comment overlaps `[a, b)`.
    fn comment_in(&self, a: usize, b: usize) -> bool {
        let i = self.comment_spans.partition_point(|&(s, _)| s < b);
        i > 0 && self.comment_spans[i - 1].1 > a
    }

    /// Whether a `,` stands in `[a, b)` outside comments.
    fn comma_in(&self, a: usize, b: usize) -> bool {
        let mut ci = self.comment_spans.partition_point(|&(s, _)| s < a);
        let mut i = a;
        while i < b {
            match self.comment_spans.get(ci) {
                Some(&(s, e)) if s == i => {
                    i = e.max(i + 1);
                    ci += 1;
                }
                _ if self.bytes()[i] == b',' => return true,
                _ => i += 1,
            }
        }
        false
    }

    /// The bytes to cut from a flow map at `span`, closed at `close`, whose pairs after its last
    /// kept entry (`last`: where it ends, and whether it is a comment) were removed: from that
    /// entry (from the line after a comment) through the removed text, leaving a trailing comma
    /// in place. `Ok(None)` when nothing was removed; `Err` when something else was.
    fn removed_flow_tail(
        &mut self,
        span: (usize, usize),
        spans: Vec<(usize, usize)>,
        last: Option<(usize, bool)>,
        close: Option<usize>,
    ) -> Result<Option<(usize, usize)>, ()> {
        let before: Vec<_> = spans
            .iter()
            .copied()
            .filter(|s| last.is_some_and(|(end, _)| s.1 <= end))
            .collect();
        let after: Vec<_> = spans
            .iter()
            .copied()
            .filter(|s| close.is_some_and(|c| s.0 > c))
            .collect();
        if !self.cut_removed(span, spans, true) {
            return Ok(None);
        }
        let (Some((end, after_comment)), Some(close)) = (last, close) else {
            return Err(());
        };
        if self.cut_removed((span.0, end), before, true)
            || self.cut_removed((close + 1, span.1), after, true)
        {
            return Err(());
        }
        let start = if after_comment {
            self.after_line(end)
        } else {
            end
        };
        // Back from the `}` over blanks, one comma, and blanks again.
        let b = self.bytes();
        let mut q = close;
        let blanks_back = |mut q: usize| {
            while q > start && b[q - 1].is_ascii_whitespace() {
                q -= 1;
            }
            q
        };
        q = blanks_back(q);
        if q > start && b[q - 1] == b',' {
            q = blanks_back(q - 1);
        }
        let first = b[start..q].iter().find(|c| !c.is_ascii_whitespace());
        let holds_comment = self.comment_in(start, q);
        if start >= q || holds_comment || (!after_comment && first != Some(&b',')) {
            return Err(());
        }
        Ok(Some((start, q)))
    }

    /// First and last byte in `[a, b)` that is neither layout nor syntax of the container.
    fn foreign(&self, a: usize, b: usize, flow: bool) -> Option<(usize, usize)> {
        let bytes = self.bytes();
        let mut i = a;
        let mut first = None;
        let mut last = 0;
        // Skip retained comments that fall into this gap.
        let mut ci = self.comment_spans.partition_point(|&(s, _)| s < a);
        while i < b {
            if ci < self.comment_spans.len() && self.comment_spans[ci].0 == i {
                i = self.comment_spans[ci].1.max(i + 1);
                ci += 1;
                continue;
            }
            let c = bytes[i];
            // A document marker (`---`, `...`) where comments of the next document precede it.
            if (i == 0 || bytes[i - 1] == b'\n')
                && (bytes[i..].starts_with(b"---") || bytes[i..].starts_with(b"..."))
            {
                i += 3;
                continue;
            }
            // A directive (`%TAG …`, `%YAML …`) of the next document, after comments of its
            // prologue: a whole line of its own.
            if c == b'%' && (i == 0 || bytes[i - 1] == b'\n') {
                i = self.after_line(i);
                continue;
            }
            let indicator = matches!(c, b'-' | b'?' | b':')
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
            let layout = c.is_ascii_whitespace()
                || indicator
                || (flow && matches!(c, b',' | b'{' | b'}' | b'[' | b']' | b':' | b'?'));
            if layout {
                i += 1;
                continue;
            }
            if c == b'&' || c == b'!' {
                // An anchor or tag in front of a retained node.
                i = self.property_end(i, b);
                continue;
            }
            if first.is_none() {
                first = Some(i);
            }
            last = i;
            i += 1;
        }
        first.map(|f| (f, last))
    }

    fn map(&mut self, m: &'a Map, n: &'a Node, parent: Parent) {
        let Some(o) = m.origin else { return };
        if self.is_alias(&o) {
            if dirty(n) {
                self.replace_alias(n, &o, parent);
            }
            return;
        }
        // A single-pair map inside a flow sequence (`[k: v]`) has no `{`, but is flow all the
        // same: its values must be written as flow scalars.
        if self.is_flow(&o) || matches!(parent, Parent::Flow) {
            let span = (self.flow_open(&o).unwrap_or(o.span.0), o.span.1);
            // Head comments above the `{` are written where they stand, whatever happens to the
            // collection.
            let head = |e: &&MapEntry| matches!(e, MapEntry::Comment(c) if c.origin.is_some_and(|co| co.span.1 <= span.0));
            for e in m.entries.iter().filter(head) {
                if let MapEntry::Comment(c) = e {
                    self.comment(c);
                }
            }
            let entries = || m.entries.iter().filter(|e| !head(e));
            let spans: Vec<_> = entries()
                .filter_map(|e| match e {
                    MapEntry::Pair(p) => p.origin.map(|o| o.span),
                    MapEntry::Comment(c) => c.origin.map(|o| o.span),
                })
                .collect();
            // Pairs added after the source's last entry (`sops:` on a flow root, on encryption)
            // are written after it, and pairs removed after it (on decryption) are cut; any
            // other change rewrites the whole map, which loses the comments in it.
            let close = self.flow_map_close(span);
            let last = entries()
                .filter_map(|e| match e {
                    MapEntry::Pair(p) => p.origin.map(|o| (o.span.1, false)),
                    MapEntry::Comment(c) => c.origin.map(|o| (o.span.1, true)),
                })
                .filter(|&(end, _)| close.is_some_and(|c| end <= c))
                .max();
            let pair_end = entries()
                .filter_map(|e| match e {
                    MapEntry::Pair(p) => p.origin.map(|o| o.span.1),
                    MapEntry::Comment(_) => None,
                })
                .max();
            let tail = self.removed_flow_tail(span, spans, last, close);
            let appended = appended_flow_pairs(m).filter(|new| new.is_empty() || last.is_some());
            let (Some(appended), Ok(tail)) = (appended, tail) else {
                let mut out = String::new();
                self.fresh.flow(&mut out, n);
                self.edit(span.0, span.1, out);
                return;
            };
            for e in entries() {
                match e {
                    MapEntry::Pair(p) => self.node(&p.value, Parent::Flow),
                    MapEntry::Comment(c) => self.comment(c),
                }
            }
            if let (Some((end, after_comment)), false) = (last, appended.is_empty()) {
                let at = if after_comment {
                    self.after_line(end)
                } else {
                    end
                };
                // A comma already follows the last pair when a comment came after it.
                let mut comma = !after_comment || pair_end.is_some_and(|p| !self.comma_in(p, at));
                let mut out = String::new();
                for e in appended {
                    if let MapEntry::Pair(p) = e {
                        if std::mem::replace(&mut comma, true) {
                            out.push_str(", ");
                        }
                        self.fresh.flow_pair(&mut out, &p.key, &p.value);
                    }
                }
                // Before a cut starting at the same place (a `sops:` replaced).
                self.edit(at, at, out);
            }
            if let Some((from, to)) = tail {
                self.edit(from, to, String::new());
            }
            if dirty(n) {
                self.untab_flow(span);
            }
            return;
        }
        let col = self.map_column(&o);
        let base = match parent {
            Parent::SeqItem { col: dash } if col == dash + 2 => dash,
            _ => col,
        };
        let child = (base + self.step).max(col + 1);
        let value_parent = Parent::MapValue { col, base };
        let spliced = self.splice_values_in_parallel(m, o, value_parent);
        self.edits
            .reserve(spliced.iter().flatten().map(|(edits, _)| edits.len()).sum());
        let mut spliced = spliced.into_iter();
        let mut last_end: Option<usize> = None;
        let mut last_pair_end: Option<usize> = None;
        let mut spans = Vec::with_capacity(m.entries.len());
        for e in &m.entries {
            let spliced = spliced.next().flatten();
            match e {
                MapEntry::Pair(p) => match p.origin {
                    Some(po) => {
                        spans.push(po.span);
                        last_end = Some(last_end.map_or(po.span.1, |l| l.max(po.span.1)));
                        last_pair_end = Some(last_pair_end.map_or(po.span.1, |l| l.max(po.span.1)));
                        if let Some((edits, error)) = spliced {
                            self.edits.extend(edits);
                            if let Some(error) = error {
                                self.error.get_or_insert(error);
                            }
                        } else if self.spliced_in_place(&p.value) {
                            self.node(&p.value, value_parent);
                        } else {
                            // Replaced wholesale, or a block collection left with only comments
                            // (sops' list-comment items, decrypted): written fresh, `[]`/`{}`
                            // and the comments below, as sops does.
                            let st = self.after_colon(po.span.0, po.style);
                            let mut out = String::new();
                            self.fresh.value_after_key(&mut out, &p.value, child, col);
                            self.edit(st, po.span.1, out);
                        }
                    }
                    None => {
                        let mut out = String::new();
                        let one = Map {
                            entries: vec![e.clone()],
                            origin: None,
                        };
                        self.fresh.block_map(&mut out, &one, col, col, false);
                        // Comments after a `...` end marker belong to the document it ends (in
                        // yaml.v3 too), but a key after the marker would start a document
                        // without `---`, which yaml.v3 refuses: the key goes before the marker.
                        // (With no pair, the marker may end the comments: `---` / `... # c`.)
                        let marker = match last_pair_end {
                            Some(a) => last_end.and_then(|b| self.marker_between(a, b)),
                            None => last_end.and_then(|b| self.end_marker_in((self.doc_span.0, b))),
                        };
                        match marker {
                            Some(marker) => self.edit(marker, marker, out),
                            // A root of comments standing above its document's `---` (after an
                            // earlier document's `...`): the key goes after the marker, and after
                            // the properties of the null node that may follow it (`---` / `&a`).
                            None if last_pair_end.is_none()
                                && let Some(marker) = last_end
                                    .and_then(|e| self.start_marker_after(e))
                                    .filter(|&m| m < self.doc_span.1) =>
                            {
                                let after_marker = marker + "---".len();
                                let after = self.after_properties(None, Some(after_marker), &o);
                                self.insert_lines(after, marker, out)
                            }
                            None => {
                                let after = self.after_properties(last_pair_end, last_end, &o);
                                self.insert_lines(after, o.span.0, out)
                            }
                        }
                    }
                },
                MapEntry::Comment(c) => match c.origin {
                    Some(co) => {
                        spans.push(co.span);
                        last_end = Some(last_end.map_or(co.span.1, |l| l.max(co.span.1)));
                        self.comment(c);
                    }
                    None => {
                        let text = format!("{}#{}\n", " ".repeat(col), c.text);
                        let after = self.after_properties(last_pair_end, last_end, &o);
                        self.insert_lines(after, o.span.0, text);
                    }
                },
            }
        }
        self.cut_removed(o.span, spans, false);
    }

    /// Whether a block map's value is spliced where it stands (not written afresh after its key).
    fn spliced_in_place(&self, value: &Node) -> bool {
        node_origin(value)
            .is_some_and(|vo| self.is_flow(&vo) || !only_comments(value) || !dirty(value))
    }

    /// For a large block map (see [`PARALLEL_SPLICE_BYTES`]), the edits of each value
    /// spliced where it stands, worked out on the thread pool, by entry: the walk takes them in
    /// entry order, so the edits and the first error are those of a walk on one thread. Empty
    /// for a smaller map (`None` for every entry).
    fn splice_values_in_parallel(
        &self,
        m: &'a Map,
        o: Origin,
        parent: Parent,
    ) -> Vec<Option<(Vec<Edit<'a>>, Option<Error>)>> {
        use rayon::prelude::*;
        if o.span.1 - o.span.0 < self.parallel_min_bytes || m.entries.len() < 2 {
            return Vec::new();
        }
        m.entries
            .par_iter()
            .map(|e| match e {
                MapEntry::Pair(p) if p.origin.is_some() && self.spliced_in_place(&p.value) => {
                    let mut one = Splicer {
                        src: self.src,
                        edits: Vec::new(),
                        fresh: self.fresh,
                        step: self.step,
                        comment_spans: self.comment_spans,
                        error: None,
                        doc_span: self.doc_span,
                        parallel_min_bytes: self.parallel_min_bytes,
                    };
                    one.node(&p.value, parent);
                    Some((one.edits, one.error))
                }
                _ => None,
            })
            .collect()
    }

    fn seq(&mut self, s: &'a Seq, n: &'a Node, parent: Parent) {
        let Some(o) = s.origin else { return };
        if self.is_alias(&o) {
            if dirty(n) {
                self.replace_alias(n, &o, parent);
            }
            return;
        }
        if let Some(open) = self.flow_open(&o) {
            let span = (open, o.span.1);
            let head = |i: &&SeqItem| matches!(i, SeqItem::Comment(c) if c.origin.is_some_and(|co| co.span.1 <= span.0));
            for i in s.items.iter().filter(head) {
                if let SeqItem::Comment(c) = i {
                    self.comment(c);
                }
            }
            let items = || s.items.iter().filter(|i| !head(i));
            let spans: Vec<_> = items()
                .filter_map(|i| match i {
                    SeqItem::Node(n) => node_origin(n).map(|o| o.span),
                    SeqItem::Comment(c) => c.origin.map(|o| o.span),
                })
                .collect();
            let added = s
                .items
                .iter()
                .any(|i| matches!(i, SeqItem::Node(n) if node_origin(n).is_none()));
            if added || self.cut_removed(span, spans, true) {
                let mut out = String::new();
                self.fresh.flow(&mut out, n);
                self.edit(span.0, span.1, out);
                return;
            }
            for i in items() {
                match i {
                    SeqItem::Node(n) => self.node(n, Parent::Flow),
                    SeqItem::Comment(c) => self.comment(c),
                }
            }
            if dirty(n) {
                self.untab_flow(span);
            }
            return;
        }
        let col = o.column;
        let mut last_end: Option<usize> = None;
        let mut spans = Vec::with_capacity(s.items.len());
        for i in &s.items {
            match i {
                SeqItem::Node(item) => match node_origin(item) {
                    Some(io) => {
                        let from = match io.style {
                            ScalarStyle::Literal | ScalarStyle::Folded => {
                                super::parse::block_header(self.src, io.span.0)
                                    .map_or(io.span.0, |(h, _)| h.min(io.span.0))
                            }
                            _ => io.span.0,
                        };
                        spans.push((from, io.span.1));
                        last_end = Some(last_end.map_or(io.span.1, |l| l.max(io.span.1)));
                        self.node(item, Parent::SeqItem { col });
                    }
                    None => {
                        let mut out = " ".repeat(col);
                        self.fresh.seq_item(&mut out, item, col);
                        out.push('\n');
                        self.insert_lines(last_end, o.span.0, out);
                    }
                },
                SeqItem::Comment(c) => match c.origin {
                    Some(co) => {
                        spans.push(co.span);
                        last_end = Some(last_end.map_or(co.span.1, |l| l.max(co.span.1)));
                        self.comment(c);
                    }
                    None => {
                        let text = format!("{}#{}\n", " ".repeat(col), c.text);
                        self.insert_lines(last_end, o.span.0, text);
                    }
                },
            }
        }
        self.cut_removed_in(o.span, spans, false, true);
    }
}

/// The pairs of `m` added after every pair it had in the source (none: an empty slice); `None`
/// when a pair was added elsewhere, or a value replaced by a new node.
fn appended_flow_pairs(m: &Map) -> Option<&[MapEntry]> {
    let is_new = |e: &MapEntry| matches!(e, MapEntry::Pair(p) if p.origin.is_none());
    let replaced = |e: &MapEntry| matches!(e, MapEntry::Pair(p) if p.origin.is_some() && node_origin(&p.value).is_none());
    let first_new = m.entries.iter().position(is_new).unwrap_or(m.entries.len());
    let (old, new) = m.entries.split_at(first_new);
    (!old.iter().any(replaced) && new.iter().all(is_new)).then_some(new)
}

/// Whether `lines`, written right after a block scalar whose content is indented `indent`, would
/// be read as part of it: their first non-blank line is a comment indented at least `indent`, or
/// a blank line before it is indented past it.
fn lines_would_join_block(lines: &[u8], indent: usize) -> bool {
    for line in lines.split_inclusive(|&c| c == b'\n') {
        let spaces = line.iter().take_while(|&&c| c == b' ').count();
        match line.get(spaces) {
            None | Some(b'\n' | b'\r') if spaces > indent => return true,
            None | Some(b'\n' | b'\r') => {}
            Some(b'#') => return spaces >= indent,
            // A tab where the block's indentation is expected: yaml.v3 refuses the block
            // ("found a tab character where an indentation space is expected").
            Some(b'\t') => return true,
            Some(_) => return false,
        }
    }
    false
}

/// The lines of the output after the one edit `at` ends on, up to and including the first that
/// is not blank (as [`lines_would_join_block`] reads them).
fn output_lines_after(src: &str, edits: &[Edit<'_>], at: usize) -> Zeroizing<Vec<u8>> {
    // The next line may be a decrypted value.
    let mut out = Zeroizing::new(Vec::new());
    let mut line_start = None;
    let mut cur = edits[at].end;
    let rest = edits[at + 1..]
        .iter()
        .flat_map(|e| {
            let before = &src[cur.min(e.start)..e.start];
            cur = e.end;
            [before, &*e.text]
        })
        .chain(std::iter::once_with(|| {
            &src[edits.last().map_or(0, |e| e.end).max(edits[at].end)..]
        }));
    for piece in rest {
        for &c in piece.as_bytes() {
            match line_start {
                None if c == b'\n' => line_start = Some(0),
                None => {}
                Some(from) => {
                    out.push(c);
                    if c == b'\n' {
                        let line = &out[from..];
                        if !line.iter().all(|c| c.is_ascii_whitespace()) {
                            return out;
                        }
                        line_start = Some(out.len());
                    }
                }
            }
        }
    }
    out
}

/// Writes `tree` as its source text with only the changes spliced in.
pub(crate) fn emit(tree: &Tree, src: &str, step: usize) -> Result<String, Error> {
    let edits = edits(tree, src, step)?;
    // The buffer is sized once.
    let mut out = String::with_capacity(output_len(src, &edits));
    for piece in pieces(src, &edits) {
        out.push_str(piece);
    }
    Ok(out)
}

/// [`emit`] written to `out` as it goes, through a buffer of [`STREAM_BUFFER`] bytes wiped
/// when done (what passes through it may be plaintext). Nothing is written when the tree cannot
/// be emitted.
pub(crate) fn emit_to(
    tree: &Tree,
    src: &str,
    step: usize,
    out: &mut dyn std::io::Write,
) -> Result<std::io::Result<()>, Error> {
    let edits = edits(tree, src, step)?;
    // No bigger than the output: all of it is wiped (a small file's is a few KiB). At least one
    // byte, so that every round makes progress.
    let cap = STREAM_BUFFER.min(output_len(src, &edits)).max(1);
    let mut buf = Zeroizing::new(Vec::with_capacity(cap));
    let mut write = || -> std::io::Result<()> {
        for piece in pieces(src, &edits) {
            let mut piece = piece.as_bytes();
            while !piece.is_empty() {
                let room = cap - buf.len();
                let (now, later) = piece.split_at(room.min(piece.len()));
                buf.extend_from_slice(now);
                piece = later;
                if buf.len() == cap {
                    out.write_all(&buf)?;
                    buf.zeroize();
                }
            }
        }
        out.write_all(&buf)?;
        out.flush()
    };
    Ok(write())
}

/// The exact size of the output (edits replace their spans).
fn output_len(src: &str, edits: &[Edit<'_>]) -> usize {
    let added: usize = edits.iter().map(|e| e.text.len()).sum();
    let cut: usize = edits.iter().map(|e| e.end - e.start).sum();
    (src.len() + added).saturating_sub(cut)
}

/// Block maps spanning at least this much source have their values' edits worked out in
/// parallel (below it, the thread pool costs more than it saves).
const PARALLEL_SPLICE_BYTES: usize = 64 * 1024;

/// The most [`emit_to`] buffers before each write.
const STREAM_BUFFER: usize = 64 * 1024;

/// The output in order: source text between the edits, and the edits' texts.
fn pieces<'e>(src: &'e str, edits: &'e [Edit<'_>]) -> impl Iterator<Item = &'e str> {
    let mut cur = 0;
    edits
        .iter()
        .flat_map(move |e| {
            let before = &src[cur..e.start];
            cur = e.end;
            [before, &e.text]
        })
        .chain(std::iter::once_with(move || {
            &src[edits.last().map_or(0, |e| e.end)..]
        }))
}

/// The edits that turn `src` into the output, sorted, without overlaps.
fn edits<'a>(tree: &'a Tree, src: &'a str, step: usize) -> Result<Vec<Edit<'a>>, Error> {
    edits_splicing_in_parallel_from(tree, src, step, PARALLEL_SPLICE_BYTES)
}

/// [`edits`], splicing the values of block maps spanning at least `parallel_min_bytes` in
/// parallel.
fn edits_splicing_in_parallel_from<'a>(
    tree: &'a Tree,
    src: &'a str,
    step: usize,
    parallel_min_bytes: usize,
) -> Result<Vec<Edit<'a>>, Error> {
    let mut comment_spans = Vec::new();
    for d in &tree.documents {
        collect_comment_spans(&d.root, &mut comment_spans);
    }
    comment_spans.sort_unstable();
    let mut sp = Splicer {
        src,
        edits: Vec::new(),
        fresh: Fresh { step },
        step,
        comment_spans: &comment_spans,
        error: None,
        doc_span: (0, src.len()),
        parallel_min_bytes,
    };
    for d in &tree.documents {
        sp.document(d);
    }
    if let Some(e) = sp.error {
        return Err(e);
    }
    let mut edits = sp.edits;
    // The walk goes in source order, so the edits are mostly sorted already.
    if !edits.is_sorted_by_key(|e| e.start) {
        edits.sort_by_key(|e| e.start);
    }
    // A file with CRLF line breaks gets CRLF in what is written into it too.
    if src
        .find('\n')
        .is_some_and(|i| i > 0 && src.as_bytes()[i - 1] == b'\r')
    {
        for e in &mut edits {
            if e.text.contains('\n') {
                let lf = Zeroizing::new(e.text.replace("\r\n", "\n"));
                e.text = EditText::Owned(Zeroizing::new(lf.replace('\n', "\r\n")));
            }
        }
    }
    // An optional edit inside another (or a duplicate) is dropped; so is any other edit an
    // optional one already covers the start of. In place: the first `kept` edits are those kept
    // so far, and what is swapped past them is dropped (wiped) at the end.
    let mut kept: usize = 0;
    for at in 0..edits.len() {
        let e = &edits[at];
        match kept.checked_sub(1).map(|last| &edits[last]) {
            Some(last) if e.optional && e.start < last.end.max(last.start + 1) => {}
            Some(last) if last.optional && e.start < last.end => edits.swap(kept - 1, at),
            _ => {
                edits.swap(kept, at);
                kept += 1;
            }
        }
    }
    edits.truncate(kept);
    let mut kept = edits;
    // Checked before anything is written, so that a streamed output is whole or absent.
    let mut cur = 0;
    for e in &kept {
        if e.start < cur || e.end < e.start || e.end > src.len() {
            return Err(Error::Emit {
                format: "yaml",
                message: format!("overlapping edits at byte {}", e.start),
            });
        }
        cur = e.end;
    }
    for at in 0..kept.len() {
        if let Some((indent, _)) = &kept[at].unless_joined
            && lines_would_join_block(&output_lines_after(src, &kept, at), *indent)
            && let Some((_, inline)) = kept[at].unless_joined.take()
        {
            kept[at].text = inline;
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::{edits_splicing_in_parallel_from, pieces};
    use crate::Store;
    use crate::stores::yaml::YamlStore;
    use crate::stores::yaml::parse::tests::large_varied_document;
    use crate::tree::{Comment, MapEntry, Node, Scalar, SeqItem, Tree, Value};

    /// Gives every scalar and comment a new value, cycling through what is written differently
    /// (plain, multi-line, quoted, not a string); a comment gets a line break if `broken` is its
    /// number (the splicer's one error).
    fn change_everything(tree: &mut Tree, broken: Option<usize>) {
        /// `n` counts values and comments apart.
        fn walk(node: &mut Node, n: &mut (usize, usize), broken: Option<usize>) {
            let comment = |c: &mut Comment, n: &mut (usize, usize)| {
                n.1 += 1;
                let line_break = if broken == Some(n.1) { "\n" } else { "" };
                c.set(format!(" changed {}{line_break}", n.1));
            };
            match node {
                Node::Scalar(Scalar { value, .. }) if *value == Value::Null => {}
                Node::Scalar(s) => {
                    n.0 += 1;
                    let n = n.0;
                    s.set(match n % 4 {
                        0 => Value::Str(format!("new {n}")),
                        1 => Value::Str(format!("two\nlines {n}")),
                        2 => Value::Str("needs: quotes".to_owned()),
                        _ => Value::Int(n.to_string()),
                    });
                }
                Node::Map(m) => {
                    for e in &mut m.entries {
                        match e {
                            MapEntry::Pair(p) => walk(&mut p.value, n, broken),
                            MapEntry::Comment(c) => comment(c, n),
                        }
                    }
                }
                Node::Seq(s) => {
                    for i in &mut s.items {
                        match i {
                            SeqItem::Node(node) => walk(node, n, broken),
                            SeqItem::Comment(c) => comment(c, n),
                        }
                    }
                }
            }
        }
        let mut n = (0, 0);
        for d in &mut tree.documents {
            walk(&mut d.root, &mut n, broken);
            if let Node::Map(m) = &mut d.root {
                m.remove("key5");
                m.insert("added", Node::Scalar(Scalar::new(Value::Str("new".into()))));
            }
        }
    }

    /// Splicing a large map's values on the thread pool writes what a walk on one thread writes,
    /// and reports its error.
    #[test]
    fn values_spliced_in_parallel_write_what_one_thread_writes() {
        let store = YamlStore::default();
        let input = large_varied_document();
        for broken in [None, Some(3), Some(1_000)] {
            let mut tree = store.parse(input.as_bytes()).unwrap();
            change_everything(&mut tree, broken);
            let src = tree.source.as_ref().unwrap().text.clone();
            let write = |parallel_min_bytes| {
                edits_splicing_in_parallel_from(&tree, &src, 4, parallel_min_bytes)
                    .map(|edits| pieces(&src, &edits).collect::<String>())
                    .map_err(|e| e.to_string())
            };
            let (one_thread, parallel) = (write(usize::MAX), write(0));
            assert!(one_thread == parallel, "{broken:?}: the outputs differ");
            assert_eq!(one_thread.is_err(), broken.is_some());
            if let Ok(written) = one_thread {
                assert!(written.contains("two\n"), "the values were changed");
                store.parse(written.as_bytes()).unwrap();
            }
        }
    }
}
