//! A JavaScript object as a Nexus vault: `get`, `set`, `delete` and `list`
//! methods, each returning its value directly (not a Promise).
//!
//! On the JavaScript thread the methods are called directly; from Nexus's
//! own threads (a key lookup during `chat`) through a threadsafe function,
//! waiting for the answer while the event loop runs it.

use std::sync::{mpsc, Arc, Mutex};
use std::thread::ThreadId;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::Env;
use nexus_sdk::{Secret, Vault, VaultError};

/// The last exception a host vault threw, so the error that reaches
/// JavaScript again carries it as its `cause`.
#[derive(Clone, Default)]
pub(crate) struct ErrorSlot(Arc<Mutex<Option<napi::Error>>>);

impl ErrorSlot {
    pub(crate) fn take(&self) -> Option<napi::Error> {
        self.0.lock().ok()?.take()
    }

    fn put(&self, e: napi::Error) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(e);
        }
    }
}

type Tsfn<A, R> = ThreadsafeFunction<A, R, A, Status, false, true>;
type VResult<T> = std::result::Result<T, VaultError>;

struct Method<A: JsValuesTupleIntoVec + 'static, R: FromNapiValue + 'static> {
    direct: FunctionRef<A, R>,
    threadsafe: Tsfn<A, R>,
}

impl<A: JsValuesTupleIntoVec + 'static, R: FromNapiValue + Send + 'static> Method<A, R> {
    fn new(obj: &Object<'_>, name: &str) -> Result<Self> {
        let f: Function<'_, A, R> = obj.get_named_property(name).map_err(|_| {
            Error::new(
                Status::InvalidArg,
                format!(
                    "the vault object has no `{name}` method; it needs get, set, delete and list"
                ),
            )
        })?;
        let bound = f.bind(obj)?;
        Ok(Method {
            direct: bound.create_ref()?,
            threadsafe: bound
                .build_threadsafe_function()
                .callee_handled::<false>()
                .weak::<true>()
                .build()?,
        })
    }
}

pub(crate) struct JsVault {
    env: usize,
    js_thread: ThreadId,
    backend: String,
    get: Method<String, Option<String>>,
    set: Method<FnArgs<(String, String)>, UnknownReturnValue>,
    delete: Method<String, bool>,
    list: Method<String, Vec<String>>,
    errors: ErrorSlot,
}

impl JsVault {
    pub(crate) fn new(env: &Env, obj: Object<'_>, errors: ErrorSlot) -> Result<JsVault> {
        let backend = obj
            .get_named_property::<Option<String>>("backend")
            .ok()
            .flatten()
            .unwrap_or_else(|| "js".to_string());
        Ok(JsVault {
            env: env.raw() as usize,
            js_thread: std::thread::current().id(),
            backend,
            get: Method::new(&obj, "get")?,
            set: Method::new(&obj, "set")?,
            delete: Method::new(&obj, "delete")?,
            list: Method::new(&obj, "list")?,
            errors,
        })
    }

    fn call<A, R, T>(
        &self,
        m: &Method<A, R>,
        what: &str,
        args: A,
        out: impl FnOnce(R) -> T,
    ) -> VResult<T>
    where
        A: JsValuesTupleIntoVec + 'static,
        R: FromNapiValue + Send + 'static,
    {
        let r: Result<R> = if std::thread::current().id() == self.js_thread {
            let env = Env::from_raw(self.env as napi::sys::napi_env);
            m.direct.borrow_back(&env).and_then(|f| f.call(args))
        } else {
            let (tx, rx) = mpsc::channel();
            let status = m.threadsafe.call_with_return_value(
                args,
                ThreadsafeFunctionCallMode::Blocking,
                move |r: Result<R>, _env| {
                    let _ = tx.send(r);
                    Ok(())
                },
            );
            if status != Status::Ok {
                Err(Error::new(status, "the JavaScript vault is gone"))
            } else {
                rx.recv().unwrap_or_else(|_| {
                    Err(Error::new(
                        Status::GenericFailure,
                        "the JavaScript vault did not answer",
                    ))
                })
            }
        };
        r.map(out).map_err(|e| {
            let why = format!("{what}() threw: {}", e.reason);
            self.errors.put(e);
            VaultError::Backend {
                backend: self.backend.clone(),
                why,
            }
        })
    }
}

impl Vault for JsVault {
    fn backend(&self) -> &str {
        &self.backend
    }

    fn get(&self, name: &str) -> VResult<Option<Secret>> {
        nexus_sdk::validate_name(name)?;
        self.call(&self.get, "get", name.to_string(), |v| v.map(Secret::new))
    }

    fn set(&self, name: &str, value: &Secret) -> VResult<()> {
        nexus_sdk::validate_name(name)?;
        let args = FnArgs::from((name.to_string(), value.expose().to_string()));
        self.call(&self.set, "set", args, |_| ())
    }

    fn delete(&self, name: &str) -> VResult<bool> {
        nexus_sdk::validate_name(name)?;
        self.call(&self.delete, "delete", name.to_string(), |b| b)
    }

    fn list(&self, prefix: &str) -> VResult<Vec<String>> {
        self.call(&self.list, "list", prefix.to_string(), |mut v| {
            v.sort();
            v
        })
    }
}
