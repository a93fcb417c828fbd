//! A Python object as a Nexus vault: anything with `get`, `set`, `delete`
//! and `list` methods (see `nexus.VaultProtocol`).

use std::sync::{Arc, Mutex};

use nexus_sdk::{Secret, Vault, VaultError};
use pyo3::prelude::*;

/// The last exception a Python vault raised, so the error that reaches
/// Python again carries it as its `__cause__`.
#[derive(Clone, Default)]
pub(crate) struct VaultErrorSlot(Arc<Mutex<Option<PyErr>>>);

impl VaultErrorSlot {
    pub(crate) fn take(&self) -> Option<PyErr> {
        self.0.lock().ok()?.take()
    }

    fn put(&self, e: PyErr) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(e);
        }
    }
}

pub(crate) struct PyVault {
    obj: Py<PyAny>,
    backend: String,
    errors: VaultErrorSlot,
}

impl PyVault {
    pub(crate) fn new(obj: Bound<'_, PyAny>, errors: VaultErrorSlot) -> PyResult<PyVault> {
        for m in ["get", "set", "delete", "list"] {
            if !obj.hasattr(m)? {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "the vault object has no `{m}` method; it needs get, set, delete and list"
                )));
            }
        }
        let backend = match obj.getattr("backend") {
            Ok(b) if !b.is_callable() => b.extract::<String>().unwrap_or_else(|_| "python".into()),
            _ => format!("python:{}", obj.get_type().name()?),
        };
        Ok(PyVault {
            obj: obj.unbind(),
            backend,
            errors,
        })
    }

    fn call<T>(
        &self,
        method: &str,
        f: impl for<'a> FnOnce(&Bound<'a, PyAny>) -> PyResult<Bound<'a, PyAny>>,
        extract: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
    ) -> Result<T, VaultError> {
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            let r = f(obj).and_then(|v| extract(&v));
            r.map_err(|e| {
                let why = format!(
                    "{method}() raised {}",
                    e.value(py)
                        .repr()
                        .map_or_else(|_| "an exception".to_string(), |r| r.to_string(),)
                );
                self.errors.put(e);
                VaultError::Backend {
                    backend: self.backend.clone(),
                    why,
                }
            })
        })
    }
}

impl Vault for PyVault {
    fn backend(&self) -> &str {
        &self.backend
    }

    fn get(&self, name: &str) -> Result<Option<Secret>, VaultError> {
        nexus_sdk::validate_name(name)?;
        self.call(
            "get",
            |o| o.call_method1("get", (name,)),
            |v| {
                if v.is_none() {
                    Ok(None)
                } else {
                    v.extract::<String>().map(|s| Some(Secret::new(s)))
                }
            },
        )
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), VaultError> {
        nexus_sdk::validate_name(name)?;
        self.call(
            "set",
            |o| o.call_method1("set", (name, value.expose())),
            |_| Ok(()),
        )
    }

    fn delete(&self, name: &str) -> Result<bool, VaultError> {
        nexus_sdk::validate_name(name)?;
        self.call(
            "delete",
            |o| o.call_method1("delete", (name,)),
            |v| Ok(v.is_truthy().unwrap_or(false)),
        )
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, VaultError> {
        self.call(
            "list",
            |o| o.call_method1("list", (prefix,)),
            |v| {
                let mut names: Vec<String> = v.extract()?;
                names.sort();
                Ok(names)
            },
        )
    }
}
