//! `--jq EXPR`: a jq filter over `--json` output, with jaq (a maintained jq
//! in Rust), printing strings raw as `gh --jq` does.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, unwrap_valr, Compiler, Ctx, Vars};
use jaq_json::Val;

/// Runs `expr` on `input`; one line per output value (strings unquoted).
pub(crate) fn run(expr: &str, input: &serde_json::Value) -> Result<Vec<String>, String> {
    let text = serde_json::to_string(input).map_err(|e| e.to_string())?;
    let value =
        jaq_json::read::parse_single(text.as_bytes()).map_err(|e| format!("the JSON: {e}"))?;
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(
            &arena,
            File {
                code: expr,
                path: (),
            },
        )
        .map_err(|errs| {
            format!(
                "--jq `{expr}` does not parse ({} error(s)); check the syntax",
                errs.len()
            )
        })?;
    let filter = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            let names: Vec<String> = errs
                .iter()
                .flat_map(|(_, es)| es.iter().map(|(name, _)| format!("`{name}`")))
                .collect();
            format!("--jq `{expr}`: unknown {}", names.join(", "))
        })?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut out = Vec::new();
    for v in filter.id.run((ctx, value)).map(unwrap_valr) {
        let v = v.map_err(|e| format!("--jq `{expr}`: {e}"))?;
        out.push(match &v {
            Val::TStr(b) => String::from_utf8_lossy(b).into_owned(),
            _ => v.to_string(),
        });
        if out.len() > 1_000_000 {
            return Err(format!("--jq `{expr}` produced more than a million values"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_like_gh() {
        let v = json!({"providers": [{"name": "a", "ready": true}, {"name": "b", "ready": false}]});
        assert_eq!(
            run(".providers[] | select(.ready) | .name", &v).unwrap(),
            ["a"]
        );
        assert_eq!(run(".providers | length", &v).unwrap(), ["2"]);
        assert_eq!(run("[.providers[].name]", &v).unwrap(), [r#"["a","b"]"#]);
        assert!(run(".providers[", &v)
            .unwrap_err()
            .contains("does not parse"));
        assert!(run("nosuchfn", &v).is_err());
    }
}
