//! Anti-forgery for forms and cookie-authenticated API calls: a random token in a `__Host-`
//! cookie that the page repeats in a hidden field or header (double submit). A cross-site page
//! can neither read the cookie nor set it, and SameSite=Strict keeps the session cookie home.

use subtle::ConstantTimeEq;

/// A fresh token for the CSRF cookie.
#[must_use]
pub fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    data_encoding::BASE64URL_NOPAD.encode(&b)
}

/// Whether the submitted token equals the cookie's, in constant time; both must be present.
#[must_use]
pub fn tokens_match(sent: Option<&str>, cookie: Option<&str>) -> bool {
    match (sent, cookie) {
        (Some(s), Some(c)) if s.len() >= 32 => bool::from(s.as_bytes().ct_eq(c.as_bytes())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_long_token_matches() {
        let t = new_token();
        assert!(tokens_match(Some(&t), Some(&t)));
        assert!(!tokens_match(Some(&new_token()), Some(&t)));
        assert!(!tokens_match(None, Some(&t)));
        assert!(!tokens_match(Some(""), Some("")));
    }
}
