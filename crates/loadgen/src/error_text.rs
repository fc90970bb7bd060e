//! One-line error descriptions for reports.

/// The error and its causes joined by ": ", skipping a cause that its parent already quotes
/// (I/O errors in reqwest, redis and sqlx often repeat their source in their own message).
pub fn describe(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !parts
            .last()
            .is_some_and(|previous| previous.contains(&text))
        {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::describe;
    use anyhow::Context;

    #[test]
    fn drops_repeated_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let wrapped = anyhow::Error::new(io).context("error communicating: refused");
        let error = Err::<(), _>(wrapped)
            .context("connecting")
            .expect_err("is an error");
        assert_eq!(describe(&error), "connecting: error communicating: refused");
    }
}
