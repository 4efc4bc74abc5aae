//! RFC 8785 JSON Canonicalization Scheme for the values audit entries use: objects, arrays,
//! strings, integers, booleans and null. Object members are sorted by their UTF-16 code units;
//! strings are escaped exactly as ECMAScript's `JSON.stringify` does. Floats are refused: audit
//! entries never carry them, and refusing keeps the canonical form unambiguous.

use serde_json::Value;

/// A value that has no single canonical form here.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("audit entries cannot hold non-integer numbers")]
pub struct NotCanonicalisable;

/// The canonical UTF-8 bytes of `value`.
pub fn canonical(value: &Value) -> Result<String, NotCanonicalisable> {
    let mut out = String::new();
    write(value, &mut out)?;
    Ok(out)
}

/// Appends the canonical form of `value`.
pub fn write(value: &Value, out: &mut String) -> Result<(), NotCanonicalisable> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                return Err(NotCanonicalisable);
            }
        }
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => object(map, out)?,
    }
    Ok(())
}

/// Appends the canonical form of an object: members sorted by their UTF-16 code units.
pub fn object(
    map: &serde_json::Map<String, Value>,
    out: &mut String,
) -> Result<(), NotCanonicalisable> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(k, out);
        out.push(':');
        if let Some(v) = map.get(k) {
            write(v, out)?;
        }
    }
    out.push('}');
    Ok(())
}

/// Appends `s` as a canonical JSON string.
pub fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_are_sorted_and_whitespace_dropped() {
        let v = json!({"b": 1, "a": [true, null, "x"], "c": {"z": -3, "y": ""}});
        assert_eq!(
            canonical(&v).unwrap(),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":"","z":-3}}"#
        );
    }

    #[test]
    fn strings_are_escaped_like_ecmascript() {
        let v = json!("quote\" back\\ nl\n tab\t bell\u{7} é €");
        assert_eq!(
            canonical(&v).unwrap(),
            "\"quote\\\" back\\\\ nl\\n tab\\t bell\\u0007 é €\""
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units_as_rfc_8785_shows() {
        // RFC 8785 §3.2.3: "\u20ac" (€) sorts before "\ud83d\ude00" (😀) in UTF-16 but not in UTF-8
        // order of the code points above U+FFFF versus U+E000..U+FFFF.
        let v = json!({"\u{1F600}": 1, "\u{FB33}": 2});
        assert_eq!(canonical(&v).unwrap(), "{\"\u{1F600}\":1,\"\u{FB33}\":2}");
    }

    #[test]
    fn floats_are_refused() {
        assert_eq!(canonical(&json!({"x": 1.5})), Err(NotCanonicalisable));
    }
}
