//! Arguments a tool's input schema accepts, built from the schema alone.
//!
//! Enforcement checks call tools that the token must not reach. The server validates
//! arguments before its scope check runs, so the arguments have to be valid, or the
//! refusal would say "invalid arguments" and prove nothing about scopes.

use serde_json::{Map, Value, json};

/// A value for every required property of `schema` (an object schema), following
/// `$ref`s into `$defs`; optional properties are left out.
pub fn minimal(schema: &Value) -> Value {
    let mut out = Map::new();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in required {
        let prop = resolve(schema, &schema["properties"][name]);
        out.insert(name.to_owned(), value_for(schema, &prop));
    }
    Value::Object(out)
}

fn resolve(root: &Value, schema: &Value) -> Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => root["$defs"][name].clone(),
        None => schema.clone(),
    }
}

fn value_for(root: &Value, schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(default) = schema.get("default").filter(|d| !d.is_null()) {
        return default.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema[key].as_array() {
            let first = options
                .iter()
                .map(|o| resolve(root, o))
                .find(|o| o["type"] != "null")
                .unwrap_or(Value::Null);
            return value_for(root, &first);
        }
    }
    match schema["type"].as_str() {
        Some("string") => json!(string_for(schema)),
        Some("integer") => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        Some("number") => json!(schema["minimum"].as_f64().unwrap_or(1.0).max(1.0)),
        Some("boolean") => json!(false),
        Some("array") => {
            let min = schema["minItems"].as_u64().unwrap_or(0) as usize;
            let item = resolve(root, &schema["items"]);
            json!(vec![value_for(root, &item); min])
        }
        Some("object") => minimal(schema),
        _ => json!("x"),
    }
}

fn string_for(schema: &Value) -> String {
    match schema["format"].as_str() {
        Some("date-time") => "2026-01-01T00:00:00Z".into(),
        Some("date") => "2026-01-01".into(),
        Some("email") => "someone@example.test".into(),
        Some("uri") => "https://example.test/".into(),
        _ => "x".repeat(schema["minLength"].as_u64().unwrap_or(1).max(1) as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_properties_get_values_of_their_type_and_optional_ones_none() {
        let schema = json!({
            "type": "object",
            "properties": {
                "note_id": {"type": "integer"},
                "title": {"type": "string"},
                "category": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null},
                "kind": {"enum": ["a", "b"]},
                "when": {"type": "string", "format": "date-time"},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "opts": {"$ref": "#/$defs/Opts"}
            },
            "required": ["note_id", "title", "kind", "when", "tags", "opts"],
            "$defs": {"Opts": {"type": "object", "properties": {"flag": {"type": "boolean"}}, "required": ["flag"]}}
        });
        assert_eq!(
            minimal(&schema),
            json!({"note_id": 1, "title": "x", "kind": "a", "when": "2026-01-01T00:00:00Z", "tags": ["x"], "opts": {"flag": false}})
        );
    }
}
