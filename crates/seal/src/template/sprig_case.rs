//! sprig's `snakecase`, `kebabcase` and `camelcase`: huandu/xstrings v1.5.0's `ToSnakeCase`,
//! `ToKebabCase` and `ToPascalCase` (sprig's `camelcase` is Pascal case), on Go strings — any
//! bytes, decoded rune by rune as Go does (an invalid byte is U+FFFD of width 1) — with Go's
//! Unicode 15.0 character classes.

use unicode_general_category::{GeneralCategory as Gc, get_general_category};

const RUNE_ERROR: char = '\u{fffd}';

/// `utf8.DecodeRuneInString`: the first rune of `b` and its width (U+FFFD of width 1 for an
/// invalid byte, width 0 for nothing).
fn decode(b: &[u8]) -> (char, usize) {
    if b.is_empty() {
        return (RUNE_ERROR, 0);
    }
    let width = match b[0] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (RUNE_ERROR, 1),
    };
    match b.get(..width).and_then(|w| std::str::from_utf8(w).ok()) {
        Some(t) => (t.chars().next().unwrap_or(RUNE_ERROR), width),
        None => (RUNE_ERROR, 1),
    }
}

/// `mapped`, Rust's case mapping of `c`, where Go's (Unicode 15.0) tables have one: Rust's are
/// Unicode 16's, which map letters Go does not know (or map to them).
pub(super) fn in_go_tables(c: char, mapped: char) -> char {
    let known = |x: char| x.is_ascii() || get_general_category(x) != Gc::Unassigned;
    if mapped != c && known(c) && known(mapped) {
        mapped
    } else {
        c
    }
}

/// `unicode.IsUpper`: general category Lu.
fn is_upper(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    get_general_category(c) == Gc::UppercaseLetter
}

/// `unicode.IsLetter`: general category L.
fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    matches!(
        get_general_category(c),
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
    )
}

/// `unicode.IsNumber`: general category N.
fn is_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    matches!(
        get_general_category(c),
        Gc::DecimalNumber | Gc::LetterNumber | Gc::OtherNumber
    )
}

/// `unicode.IsPunct`: general category P (in ASCII `$+<=>^`|~` are symbols, not punctuation).
fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        return matches!(
            c,
            '!' | '"'
                | '#'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '?'
                | '@'
                | '['
                | '\\'
                | ']'
                | '_'
                | '{'
                | '}'
        );
    }
    matches!(
        get_general_category(c),
        Gc::ConnectorPunctuation
            | Gc::DashPunctuation
            | Gc::OpenPunctuation
            | Gc::ClosePunctuation
            | Gc::InitialPunctuation
            | Gc::FinalPunctuation
            | Gc::OtherPunctuation
    )
}

/// xstrings' `isAlphabet`: a letter outside the common CJK ideograph blocks.
fn is_alphabet(c: char) -> bool {
    is_letter(c)
        && !matches!(c, '\u{4e00}'..='\u{9fcc}' | '\u{3400}'..='\u{4d85}' | '\u{20000}'..='\u{2b81d}')
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || super::sprig::is_go_unicode_space(c)
}

fn push(out: &mut Vec<u8>, c: char) {
    let mut buf = [0; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// sprig's `camelcase`: xstrings' `ToPascalCase` (words split at `-`, `_` and spaces, each
/// capitalised; an all-capitals word lowered after its first letter; leading connectors kept).
pub(super) fn pascal_case(s: &[u8]) -> Vec<u8> {
    let upper = super::sprig::go_upper;
    let lower = super::sprig::go_lower;
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    let (mut r0, mut size) = (RUNE_ERROR, 0);
    let mut first_upper = false;
    // Leading connectors stay.
    while !rest.is_empty() {
        (r0, size) = decode(rest);
        rest = &rest[size..];
        if !is_connector(r0) {
            first_upper = is_upper(r0);
            r0 = upper(r0);
            break;
        }
        push(&mut out, r0);
    }
    if rest.is_empty() {
        // xstrings writes the last rune once more here, even a connector already written.
        if size != 0 {
            push(&mut out, r0);
        }
        return out;
    }
    while !rest.is_empty() {
        let r1 = r0;
        (r0, size) = decode(rest);
        rest = &rest[size..];
        if is_connector(r0) && is_connector(r1) {
            push(&mut out, r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = is_upper(r0);
            r0 = upper(r0);
        } else {
            if first_upper {
                if is_upper(r0) {
                    r0 = lower(r0);
                } else {
                    first_upper = false;
                }
            }
            push(&mut out, r1);
        }
    }
    push(&mut out, r0);
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Word {
    Invalid,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

/// xstrings' `nextValidRune`: the first rune of `s` that is not U+FFFD, and the bytes up to its
/// end; `prev` with all of `s` when there is none.
fn next_valid(s: &[u8], prev: char) -> (char, usize) {
    let mut size = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let (r, w) = decode(rest);
        size += w;
        if r != RUNE_ERROR {
            return (r, size);
        }
        rest = &rest[w..];
    }
    (prev, size)
}

/// xstrings' `nextWord`: the kind and bytes of the word that starts `s`, and what follows it.
fn next_word(s: &[u8]) -> (Word, &[u8], &[u8]) {
    if s.is_empty() {
        return (Word::Invalid, s, s);
    }
    let (mut r, mut size) = next_valid(s, RUNE_ERROR);
    let mut offset = size;
    let mut rest = s;
    if r == RUNE_ERROR {
        return (Word::Invalid, &s[..offset], &s[offset..]);
    }
    // Extends the word while `keep` holds for the next valid rune.
    let run = |r: &mut char,
               size: &mut usize,
               offset: &mut usize,
               rest: &mut &[u8],
               keep: &dyn Fn(char, usize) -> bool| {
        while !rest.is_empty() {
            (*r, *size) = next_valid(rest, *r);
            if !keep(*r, *size) {
                break;
            }
            *offset += *size;
            *rest = &rest[*size..];
        }
    };
    let kind = if is_connector(r) {
        rest = &rest[size..];
        run(&mut r, &mut size, &mut offset, &mut rest, &|c, _| {
            is_connector(c)
        });
        Word::Connector
    } else if is_punct(r) {
        rest = &rest[size..];
        run(&mut r, &mut size, &mut offset, &mut rest, &|c, _| {
            is_punct(c)
        });
        Word::Punct
    } else if is_upper(r) {
        rest = &rest[size..];
        if !rest.is_empty() {
            (r, size) = next_valid(rest, r);
            if is_upper(r) {
                let mut prev_size = size;
                offset += size;
                rest = &rest[size..];
                while !rest.is_empty() {
                    (r, size) = next_valid(rest, r);
                    if !is_upper(r) {
                        break;
                    }
                    prev_size = size;
                    offset += size;
                    rest = &rest[size..];
                }
                // "HTTPStatus" is "HTTP" and "Status": the last capital starts the next word.
                if !rest.is_empty() && is_alphabet(r) {
                    offset -= prev_size;
                    rest = &s[offset..];
                }
            } else if is_alphabet(r) {
                offset += size;
                rest = &rest[size..];
                run(&mut r, &mut size, &mut offset, &mut rest, &|c, _| {
                    is_alphabet(c) && !is_upper(c)
                });
            }
        }
        Word::Upper
    } else if is_alphabet(r) {
        rest = &rest[size..];
        run(&mut r, &mut size, &mut offset, &mut rest, &|c, _| {
            is_alphabet(c) && !is_upper(c)
        });
        Word::Alphabet
    } else if is_number(r) {
        rest = &rest[size..];
        run(&mut r, &mut size, &mut offset, &mut rest, &|c, _| {
            is_number(c)
        });
        Word::Number
    } else {
        rest = &rest[size..];
        run(&mut r, &mut size, &mut offset, &mut rest, &|c, w| {
            !(w == 0 || is_connector(c) || is_alphabet(c) || is_number(c) || is_punct(c))
        });
        Word::Other
    };
    (kind, &s[..offset], rest)
}

/// xstrings' `toLower`: capitals and connectors of a capitalised or connector word lowered and
/// replaced; any other word copied as it is (its bytes, valid or not).
fn lower_word(out: &mut Vec<u8>, kind: Word, word: &[u8], connector: char) {
    if kind != Word::Upper && kind != Word::Connector {
        out.extend_from_slice(word);
        return;
    }
    let mut rest = word;
    while !rest.is_empty() {
        let (r, w) = decode(rest);
        rest = &rest[w..];
        if is_connector(r) {
            push(out, connector);
        } else if is_upper(r) {
            push(out, super::sprig::go_lower(r));
        } else {
            push(out, r);
        }
    }
}

/// sprig's `snakecase` (`connector` `_`) and `kebabcase` (`-`): xstrings'
/// `camelCaseToLowerCase`.
pub(super) fn to_lower_case(s: &[u8], connector: char) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 2);
    if s.is_empty() {
        return out;
    }
    let (mut wt, mut word, mut rest) = next_word(s);
    while !rest.is_empty() {
        if wt != Word::Connector {
            lower_word(&mut out, wt, word, connector);
        }
        let prev = wt;
        let last = word;
        (wt, word, rest) = next_word(rest);
        match prev {
            Word::Number => {
                while wt == Word::Alphabet || wt == Word::Number {
                    lower_word(&mut out, wt, word, connector);
                    (wt, word, rest) = next_word(rest);
                }
                if !matches!(wt, Word::Invalid | Word::Punct | Word::Connector) {
                    push(&mut out, connector);
                }
            }
            Word::Connector => lower_word(&mut out, prev, last, connector),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        push(&mut out, connector);
                    }
                    continue;
                }
                if rest.is_empty() {
                    continue;
                }
                let number = word;
                (wt, word, rest) = next_word(rest);
                // A number is part of the word before it ("Bld4Floor" is "bld4_floor") unless
                // letters follow it ("HTTP2xx" is "http_2xx").
                if wt != Word::Alphabet {
                    lower_word(&mut out, Word::Number, number, connector);
                    if wt != Word::Connector && wt != Word::Punct {
                        push(&mut out, connector);
                    }
                    continue;
                }
                push(&mut out, connector);
                lower_word(&mut out, Word::Number, number, connector);
                while wt == Word::Alphabet || wt == Word::Number {
                    lower_word(&mut out, wt, word, connector);
                    (wt, word, rest) = next_word(rest);
                }
                if !matches!(wt, Word::Invalid | Word::Connector | Word::Punct) {
                    push(&mut out, connector);
                }
            }
        }
    }
    lower_word(&mut out, wt, word, connector);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::sprig::{go_lower, go_upper};

    /// The ASCII fast paths say what the Unicode 15 tables say (`$+<=>^`|~` are symbols).
    #[test]
    fn ascii_classes_match_the_tables() {
        for c in (0u8..0x80).map(char::from) {
            let gc = get_general_category(c);
            assert_eq!(is_upper(c), gc == Gc::UppercaseLetter, "{c:?}");
            assert_eq!(is_number(c), gc == Gc::DecimalNumber, "{c:?}");
            assert_eq!(
                is_letter(c),
                matches!(gc, Gc::UppercaseLetter | Gc::LowercaseLetter),
                "{c:?}"
            );
            let punct = matches!(
                gc,
                Gc::ConnectorPunctuation
                    | Gc::DashPunctuation
                    | Gc::OpenPunctuation
                    | Gc::ClosePunctuation
                    | Gc::InitialPunctuation
                    | Gc::FinalPunctuation
                    | Gc::OtherPunctuation
            );
            assert_eq!(is_punct(c), punct, "{c:?}");
        }
    }

    /// Go's unicode.ToUpper/ToLower (checked for every code point against Go 1.26): simple
    /// mappings only, and none that Unicode 16 added (Rust's tables are 16's).
    #[test]
    fn case_mappings_are_go_unicode_15_simple_ones() {
        for (c, upper, lower) in [
            ('a', 'A', 'a'),
            ('ß', 'ß', 'ß'),
            ('ᾳ', 'ᾼ', 'ᾳ'),
            ('ᾈ', 'ᾈ', 'ᾀ'),
            ('İ', 'İ', 'i'),
            ('ǅ', 'Ǆ', 'ǆ'),
            ('\u{19b}', '\u{19b}', '\u{19b}'),
            ('\u{264}', '\u{264}', '\u{264}'),
            ('\u{a7cb}', '\u{a7cb}', '\u{a7cb}'),
            ('\u{1c89}', '\u{1c89}', '\u{1c89}'),
        ] {
            assert_eq!((go_upper(c), go_lower(c)), (upper, lower), "{c:?}");
        }
    }
}
