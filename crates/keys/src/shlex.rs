//! Splits a command line into words the way sops does for `SOPS_AGE_KEY_CMD` (google/shlex
//! rules): whitespace separates words, single quotes are literal, double quotes allow `\`
//! escapes of `"`, `\`, `$`, `` ` `` and newline, a backslash outside quotes escapes the next
//! character, and `#` at the start of a word begins a comment. No shell is involved.

/// Splits `line` into words; `None` on an unterminated quote or trailing backslash.
pub fn split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        if first == '#' {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\'' => loop {
                    match chars.next()? {
                        '\'' => break,
                        other => word.push(other),
                    }
                },
                '"' => loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => {
                            let escaped = chars.next()?;
                            if !matches!(escaped, '"' | '\\' | '$' | '`' | '\n') {
                                word.push('\\');
                            }
                            word.push(escaped);
                        }
                        other => word.push(other),
                    }
                },
                '\\' => word.push(chars.next()?),
                other => word.push(other),
            }
        }
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(split("cat  /tmp/k.txt").unwrap(), ["cat", "/tmp/k.txt"]);
        assert_eq!(
            split("sh -c 'echo $X; true'").unwrap(),
            ["sh", "-c", "echo $X; true"]
        );
        assert_eq!(
            split(r#"a "b \"c\" \n" d\ e"#).unwrap(),
            ["a", r#"b "c" \n"#, "d e"]
        );
        assert_eq!(split("run # comment").unwrap(), ["run"]);
        assert!(split("a 'open").is_none());
        assert!(split("").unwrap().is_empty());
    }
}
