//! Makes the generated schema read well to the API server and to `kubectl explain`.
//!
//! schemars describes Rust, not Kubernetes: unsigned integers get formats (`uint16`, `uint32`)
//! that the API server does not know and warns about on every `kubectl apply -f crds/` (and
//! `uint32` no maximum, so the API server would store a value the operator cannot read), doc
//! comments keep their line breaks (which `kubectl explain` prints in mid-sentence), and an
//! array field carries both its own description and its item type's, which `kubectl explain`
//! prints one after the other.

use schemars::Schema;
use schemars::transform::{RecursiveTransform, Transform};
use serde_json::Value;

/// Applied to the spec and status types (and so to every type nested in them).
pub fn for_kubernetes(schema: &mut Schema) {
    RecursiveTransform(tidy).transform(schema);
}

fn tidy(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(largest) = object
        .get("format")
        .and_then(Value::as_str)
        .and_then(unsigned_maximum)
    {
        // One stored value past what the type holds would fail every list and watch of the
        // kind; the API server refuses it at the door instead.
        object
            .entry("maximum")
            .or_insert_with(|| Value::from(largest));
    }
    if let Some(format) = object.get_mut("format")
        && let Some(kubernetes) = format.as_str().and_then(kubernetes_integer_format)
    {
        *format = Value::from(kubernetes);
    }
    if let Some(Value::String(description)) = object.get_mut("description") {
        *description = as_prose(description);
    }
    if object.contains_key("description")
        && let Some(Value::Object(items)) = object.get_mut("items")
    {
        items.remove("description");
    }
}

/// The integer format Kubernetes knows (`int32` or `int64`) that holds every value of a
/// schemars integer format it does not know; `None` for the formats it knows.
fn kubernetes_integer_format(format: &str) -> Option<&'static str> {
    match format {
        "int8" | "int16" | "uint8" | "uint16" => Some("int32"),
        "uint32" | "uint64" | "uint" => Some("int64"),
        _ => None,
    }
}

/// The largest value of an unsigned schemars format, as Kubernetes stores it (int64 at most).
fn unsigned_maximum(format: &str) -> Option<u64> {
    match format {
        "uint8" => Some(u8::MAX.into()),
        "uint16" => Some(u16::MAX.into()),
        "uint32" | "uint" => Some(u32::MAX.into()),
        "uint64" => Some(i64::MAX.unsigned_abs()),
        _ => None,
    }
}

/// Joins the lines of each paragraph with single spaces; paragraphs stay apart.
fn as_prose(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|paragraph| !paragraph.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tidied(value: Value) -> Value {
        let mut schema = Schema::try_from(value).expect("an object schema");
        for_kubernetes(&mut schema);
        schema.to_value()
    }

    #[test]
    fn unsigned_formats_become_the_kubernetes_format_that_holds_them() {
        let schema = tidied(json!({
            "type": "object",
            "properties": {
                "status": {"type": "integer", "format": "uint16", "minimum": 0, "maximum": 65535},
                "count": {"type": "integer", "format": "uint32", "minimum": 0},
                "id": {"type": "integer", "format": "int64"},
                "at": {"type": "string", "format": "date-time"},
            },
        }));
        let formats: Vec<&str> = ["status", "count", "id", "at"]
            .iter()
            .map(|field| schema["properties"][field]["format"].as_str().unwrap())
            .collect();
        assert_eq!(formats, ["int32", "int64", "int64", "date-time"]);
        assert_eq!(schema["properties"]["status"]["maximum"], 65535);
        assert_eq!(
            schema["properties"]["count"]["maximum"], 4_294_967_295u64,
            "every unsigned integer is bounded by what its type holds"
        );
        assert_eq!(schema["properties"]["id"].get("maximum"), None);
    }

    #[test]
    fn descriptions_lose_their_line_breaks_but_keep_paragraphs() {
        let schema = tidied(json!({
            "description": "A Secret in this request's namespace. Without it the\noperator's default  is used.\n\nSecond paragraph\nhere.",
        }));
        assert_eq!(
            schema["description"],
            "A Secret in this request's namespace. Without it the operator's default is used.\n\nSecond paragraph here."
        );
    }

    #[test]
    fn an_array_field_keeps_its_own_description_only() {
        let schema = tidied(json!({
            "type": "object",
            "properties": {
                "results": {
                    "type": "array",
                    "description": "One entry per job id.",
                    "items": {"type": "object", "description": "What is known about one job."},
                },
                "plain": {
                    "type": "array",
                    "items": {"type": "object", "description": "Kept: the field has none."},
                },
            },
        }));
        let properties = &schema["properties"];
        assert_eq!(
            properties["results"]["description"],
            "One entry per job id."
        );
        assert!(properties["results"]["items"].get("description").is_none());
        assert_eq!(
            properties["plain"]["items"]["description"],
            "Kept: the field has none."
        );
    }
}
