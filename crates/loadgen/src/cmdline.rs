//! Renders argv as a command line that can be pasted back into a shell.

/// Joins arguments, single-quoting those a POSIX shell would otherwise split or expand.
pub fn render(args: impl IntoIterator<Item = String>) -> String {
    args.into_iter()
        .map(|arg| quote(&arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn quotes_only_what_the_shell_would_mangle() {
        let args = [
            "loadgen",
            "auth",
            "--target",
            "http://127.0.0.1:8080",
            "--out",
            "my dir",
            "it's",
        ];
        assert_eq!(
            render(args.map(String::from)),
            r"loadgen auth --target http://127.0.0.1:8080 --out 'my dir' 'it'\''s'"
        );
    }
}
