//! A bounded JSON Schema check for structured output: the keywords models
//! are asked to follow (`type`, `properties`, `required`,
//! `additionalProperties`, `items`, `enum`, `const`, bounds on numbers,
//! strings and arrays, `anyOf`/`oneOf`/`allOf`/`not`, and local `$ref`s to
//! `#/$defs/...` or `#/definitions/...`). `pattern` and `format` are not
//! checked. Depth is bounded, so a hostile schema or answer cannot recurse
//! without end.

use serde_json::Value;

/// How deep schemas and values may nest (refs included).
pub const MAX_DEPTH: usize = 64;

/// How many (schema, value) checks one validation may make: combinators
/// nested in combinators could otherwise take exponential time.
pub const MAX_STEPS: usize = 100_000;

/// Checks `value` against `schema`; `Err` names the first place that does
/// not match (`$.items[2].name: expected string`).
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    let mut steps = 0;
    check(schema, schema, value, "$", 0, &mut steps)
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0) && v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn resolve<'a>(root: &'a Value, r: &str) -> Option<&'a Value> {
    if r == "#" {
        return Some(root);
    }
    let path = r.strip_prefix("#/")?;
    let mut at = root;
    for part in path.split('/') {
        let part = part.replace("~1", "/").replace("~0", "~");
        at = at.get(&part)?;
    }
    Some(at)
}

fn check(
    root: &Value,
    schema: &Value,
    v: &Value,
    at: &str,
    depth: usize,
    steps: &mut usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{at}: nested deeper than {MAX_DEPTH} levels"));
    }
    *steps += 1;
    if *steps > MAX_STEPS {
        return Err(format!(
            "{at}: the schema takes more than {MAX_STEPS} checks; simplify it"
        ));
    }
    let s = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{at}: no value is allowed here")),
        Value::Object(s) => s,
        _ => return Ok(()),
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = resolve(root, r)
            .ok_or_else(|| format!("{at}: the schema's $ref `{r}` does not resolve"))?;
        check(root, target, v, at, depth + 1, steps)?;
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_ok(t, v) => {
            return Err(format!("{at}: expected {t}, found {}", kind(v)))
        }
        Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)) => {
            let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
            return Err(format!(
                "{at}: expected {}, found {}",
                names.join(" or "),
                kind(v)
            ));
        }
        _ => {}
    }
    if let Some(Value::Array(options)) = s.get("enum") {
        if !options.contains(v) {
            return Err(format!("{at}: {v} is not one of the allowed values"));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return Err(format!("{at}: expected {c}"));
        }
    }
    if let Some(n) = v.as_f64() {
        let num = |k: &str| s.get(k).and_then(Value::as_f64);
        if num("minimum").is_some_and(|m| n < m) || num("exclusiveMinimum").is_some_and(|m| n <= m)
        {
            return Err(format!("{at}: {n} is below the minimum"));
        }
        if num("maximum").is_some_and(|m| n > m) || num("exclusiveMaximum").is_some_and(|m| n >= m)
        {
            return Err(format!("{at}: {n} is above the maximum"));
        }
    }
    let count = |k: &str| s.get(k).and_then(Value::as_u64).map(|n| n as usize);
    if let Some(text) = v.as_str() {
        let len = text.chars().count();
        if count("minLength").is_some_and(|m| len < m)
            || count("maxLength").is_some_and(|m| len > m)
        {
            return Err(format!(
                "{at}: a string of {len} characters is outside the allowed length"
            ));
        }
    }
    if let Some(items) = v.as_array() {
        if count("minItems").is_some_and(|m| items.len() < m)
            || count("maxItems").is_some_and(|m| items.len() > m)
        {
            return Err(format!(
                "{at}: {} items is outside the allowed count",
                items.len()
            ));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(
                    root,
                    item_schema,
                    item,
                    &format!("{at}[{i}]"),
                    depth + 1,
                    steps,
                )?;
            }
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(Value::Array(req)) = s.get("required") {
            for k in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(k) {
                    return Err(format!("{at}: `{k}` is required"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            let path = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(root, ps, val, &path, depth + 1, steps)?,
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{at}: `{k}` is not allowed")),
                    Some(extra @ Value::Object(_)) => {
                        check(root, extra, val, &path, depth + 1, steps)?
                    }
                    _ => {}
                },
            }
        }
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            check(root, sub, v, at, depth + 1, steps)?;
        }
    }
    let over = |steps: &usize| {
        (*steps > MAX_STEPS)
            .then(|| format!("{at}: the schema takes more than {MAX_STEPS} checks; simplify it"))
    };
    if let Some(Value::Array(any)) = s.get("anyOf") {
        if !any
            .iter()
            .any(|sub| check(root, sub, v, at, depth + 1, steps).is_ok())
        {
            return Err(over(steps).unwrap_or_else(|| format!("{at}: matches none of anyOf")));
        }
    }
    if let Some(Value::Array(one)) = s.get("oneOf") {
        let n = one
            .iter()
            .filter(|sub| check(root, sub, v, at, depth + 1, steps).is_ok())
            .count();
        if n != 1 {
            return Err(over(steps)
                .unwrap_or_else(|| format!("{at}: matches {n} of oneOf, not exactly one")));
        }
    }
    if let Some(not) = s.get("not") {
        if check(root, not, v, at, depth + 1, steps).is_ok() {
            return Err(format!("{at}: matches what `not` forbids"));
        }
    }
    // A branch that ran out of checks must not read as a match (`not`).
    over(steps).map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_common_keywords() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "temp": {"type": "number", "minimum": -90, "maximum": 60},
                "tags": {"type": "array", "items": {"enum": ["sun", "rain"]}, "maxItems": 2},
                "unit": {"$ref": "#/$defs/unit"}
            },
            "required": ["city", "temp"],
            "additionalProperties": false,
            "$defs": {"unit": {"type": "string", "enum": ["C", "F"]}}
        });
        assert!(validate(
            &schema,
            &json!({"city": "Paris", "temp": 21.5, "tags": ["sun"], "unit": "C"})
        )
        .is_ok());
        let bad = |v: Value, needle: &str| {
            let e = validate(&schema, &v).unwrap_err();
            assert!(e.contains(needle), "{e} lacks {needle}");
        };
        bad(json!({"temp": 1}), "`city` is required");
        bad(
            json!({"city": "P", "temp": "hot"}),
            "$.temp: expected number, found string",
        );
        bad(
            json!({"city": "P", "temp": 1, "wind": 3}),
            "`wind` is not allowed",
        );
        bad(
            json!({"city": "P", "temp": 1, "tags": ["snow"]}),
            "$.tags[0]",
        );
        bad(json!({"city": "P", "temp": 100}), "above the maximum");
        bad(json!({"city": "P", "temp": 1, "unit": "K"}), "$.unit");
        bad(json!("just text"), "expected object");
    }

    #[test]
    fn exponential_schemas_stop_at_the_step_budget() {
        // A linear-size schema whose check branches twice per level.
        let mut defs = serde_json::Map::new();
        defs.insert("a0".into(), json!({"type": "string"}));
        for i in 1..=30 {
            let below = format!("#/$defs/a{}", i - 1);
            defs.insert(
                format!("a{i}"),
                json!({"anyOf": [{"$ref": below}, {"$ref": below}]}),
            );
        }
        let s = json!({"$defs": defs, "$ref": "#/$defs/a30"});
        let started = std::time::Instant::now();
        let e = validate(&s, &json!(1)).unwrap_err();
        assert!(e.contains("checks"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn combinators_and_bounds_on_depth() {
        let s = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
        assert!(validate(&s, &json!(3)).is_ok());
        assert!(validate(&s, &json!(3.5)).is_err());
        let one = json!({"oneOf": [{"minimum": 0}, {"maximum": 10}]});
        assert!(validate(&one, &json!(5)).is_err());
        // A self-referencing schema ends at the depth bound, not in a crash.
        let looped = json!({"$ref": "#"});
        assert!(validate(&looped, &json!(1)).unwrap_err().contains("deeper"));
    }
}
