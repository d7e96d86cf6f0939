//! Text the farm prints for people to read or paste: shell words and terminal-safe lines.

/// Quotes a word for a POSIX shell when it needs it, for the commands the farm suggests. A word
/// with control characters (a key may hold any) is written `$'...'` with them escaped, so that
/// pasting it neither runs anything nor puts an escape sequence on the terminal.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        word.to_owned()
    } else if word.chars().any(char::is_control) {
        let mut quoted = String::from("$'");
        for c in word.chars() {
            match c {
                '\\' => quoted.push_str(r"\\"),
                '\'' => quoted.push_str(r"\'"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        quoted.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        quoted
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A line safe to print on a terminal: control characters (escape sequences, carriage returns,
/// backspaces, newlines) are shown escaped (`\u{1b}`) instead of acting on the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed_and_never_break_out() {
        assert_eq!(quote("shots/a.blend"), "shots/a.blend");
        assert_eq!(quote("my scene.blend"), "'my scene.blend'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's.blend"), r"'it'\''s.blend'");
        assert_eq!(quote("a'; rm -rf ~ #.blend"), r"'a'\''; rm -rf ~ #.blend'");
        assert_eq!(quote("$(reboot).blend"), "'$(reboot).blend'");
        assert_eq!(quote("a\n\x1b[2Jb'\\.blend"), r"$'a\x0a\x1b[2Jb\'\\.blend'");
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(printable("Error: plain"), "Error: plain");
        assert_eq!(
            printable("Error: \x1b]0;owned\x07\x1b[2J\rgone\u{9b}"),
            "Error: \\u{1b}]0;owned\\u{7}\\u{1b}[2J\\rgone\\u{9b}"
        );
        assert_eq!(printable("ü ✓ 日本"), "ü ✓ 日本");
    }
}
