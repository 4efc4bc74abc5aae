//! Request bodies that may carry card data: `application/x-www-form-urlencoded` with Stripe's
//! bracket nesting (`card[number]=…`), and JSON for Adyen, written into a buffer that is wiped
//! when dropped and never reallocated without wiping the old copy. The finished body is handed
//! to the HTTP client as bytes whose owner wipes them once the client has sent and dropped them.

use zeroize::Zeroizing;

/// A body buffer that wipes every copy of itself it leaves behind.
pub(crate) struct WipedBuffer(Zeroizing<Vec<u8>>);

impl WipedBuffer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    /// Appends `bytes`; when the buffer must grow, the new one is allocated here and the old one
    /// is wiped as it drops (a plain `Vec` would free it unwiped on reallocation).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let needed = self.0.len() + bytes.len();
        if needed > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(self.0.capacity() * 2)));
            bigger.extend_from_slice(&self.0);
            self.0 = bigger;
        }
        self.0.extend_from_slice(bytes);
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The body for the HTTP client: the same memory, wiped when the client drops it.
    pub(crate) fn into_body(self) -> reqwest::Body {
        reqwest::Body::from(bytes::Bytes::from_owner(self))
    }
}

impl AsRef<[u8]> for WipedBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A form-encoded body with bracket-nested names: `field(&["card", "number"], "4242…")` writes
/// `card[number]=4242…`. Names and values are percent-encoded; brackets stay literal, as
/// Stripe's own libraries send them.
pub(crate) struct FormBody {
    buffer: WipedBuffer,
}

impl FormBody {
    pub(crate) fn new() -> Self {
        Self {
            buffer: WipedBuffer::with_capacity(1024),
        }
    }

    pub(crate) fn field(&mut self, path: &[&str], value: &str) -> &mut Self {
        if !self.buffer.as_slice().is_empty() {
            self.buffer.push(b"&");
        }
        for (i, segment) in path.iter().enumerate() {
            if i > 0 {
                self.buffer.push(b"[");
            }
            self.escaped(segment);
            if i > 0 {
                self.buffer.push(b"]");
            }
        }
        self.buffer.push(b"=");
        self.escaped(value);
        self
    }

    fn escaped(&mut self, text: &str) {
        for chunk in url::form_urlencoded::byte_serialize(text.as_bytes()) {
            self.buffer.push(chunk.as_bytes());
        }
    }

    pub(crate) fn into_buffer(self) -> WipedBuffer {
        self.buffer
    }
}

/// A JSON string literal written straight into the buffer (RFC 8259 escaping), so card data is
/// never held by an intermediate `serde_json::Value` that would drop unwiped.
pub(crate) fn push_json_string(buffer: &mut WipedBuffer, text: &str) {
    buffer.push(b"\"");
    for c in text.chars() {
        match c {
            '"' => buffer.push(b"\\\""),
            '\\' => buffer.push(b"\\\\"),
            c if (c as u32) < 0x20 => {
                let escaped = format!("\\u{:04x}", c as u32);
                buffer.push(escaped.as_bytes());
            }
            c => {
                let mut utf8 = [0u8; 4];
                buffer.push(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    buffer.push(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(form: FormBody) -> String {
        String::from_utf8(form.into_buffer().as_slice().to_vec()).unwrap()
    }

    #[test]
    fn nested_names_are_written_with_brackets_and_values_are_escaped() {
        let mut form = FormBody::new();
        form.field(&["type"], "card")
            .field(&["card", "number"], "4242424242424242")
            .field(&["billing_details", "address", "postal_code"], "SW1A 1AA")
            .field(&["metadata", "payment_id"], "p&1=2");
        assert_eq!(
            text(form),
            "type=card&card[number]=4242424242424242\
             &billing_details[address][postal_code]=SW1A+1AA&metadata[payment_id]=p%261%3D2"
        );
    }

    #[test]
    fn the_written_form_parses_back_to_the_same_pairs() {
        let mut form = FormBody::new();
        form.field(&["description"], "Invoice 7 — ż & ü")
            .field(&["payment_method_options", "card", "moto"], "true");
        let written = text(form);
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(written.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            pairs,
            [
                ("description".into(), "Invoice 7 — ż & ü".into()),
                ("payment_method_options[card][moto]".into(), "true".into()),
            ]
        );
    }

    #[test]
    fn the_buffer_grows_past_its_first_capacity_without_losing_bytes() {
        let mut buffer = WipedBuffer::with_capacity(4);
        for _ in 0..100 {
            buffer.push(b"0123456789");
        }
        assert_eq!(buffer.as_slice().len(), 1000);
        assert!(buffer.as_slice().starts_with(b"01234567890123"));
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut buffer = WipedBuffer::with_capacity(8);
        push_json_string(&mut buffer, "a\"b\\c\nd é");
        let written = std::str::from_utf8(buffer.as_slice()).unwrap().to_owned();
        assert_eq!(written, r#""a\"b\\c\u000ad é""#);
        let back: String = serde_json::from_str(&written).unwrap();
        assert_eq!(back, "a\"b\\c\nd é");
    }
}
