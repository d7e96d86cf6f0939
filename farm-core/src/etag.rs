//! ETag quoting, fixed in one place. S3's responses quote an ETag (`"9b2c..."`), its event
//! notifications carry it bare (`9b2c...`); the farm keeps the quoted form (on frames, in
//! `job.json`, in a job's environment) and compares bare ones.

/// An ETag without its surrounding quotes (and blanks).
pub fn unquote_etag(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

/// An ETag as S3's responses give it: quoted, whether `etag` was bare or quoted already.
pub fn quote_etag(etag: &str) -> String {
    format!("\"{}\"", unquote_etag(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_quoted_etags_agree() {
        for given in ["9b2c-3", "\"9b2c-3\"", " \"9b2c-3\" "] {
            assert_eq!(unquote_etag(given), "9b2c-3", "{given}");
            assert_eq!(quote_etag(given), "\"9b2c-3\"", "{given}");
        }
    }
}
