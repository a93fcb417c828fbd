//! Small result objects in few N-API calls. The generic conversion makes
//! two calls a property (create the value, set it); for the synchronous
//! hot calls (`route`, `classify`) that was most of their cost, since
//! every N-API call costs 100–150 ns. Here the values are created, then
//! all properties are defined in one `napi_define_properties`.
//! (Public only because `#[napi]` methods return its `Built`.)

use std::ffi::CStr;
use std::ptr;

use napi::bindgen_prelude::{ToNapiValue, TypeName, ValueType};
use napi::{sys, Error, Result, Status};

fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(
            Status::from(status),
            format!("N-API: {what} failed"),
        ))
    }
}

/// A plain object under construction: up to eight properties.
pub(crate) struct Obj {
    env: sys::napi_env,
    props: Vec<sys::napi_property_descriptor>,
}

impl Obj {
    pub(crate) fn new(env: &napi::Env) -> Obj {
        Obj {
            env: env.raw(),
            props: Vec::with_capacity(8),
        }
    }

    fn push(&mut self, key: &'static CStr, value: sys::napi_value) {
        self.props.push(sys::napi_property_descriptor {
            utf8name: key.as_ptr(),
            name: ptr::null_mut(),
            method: None,
            getter: None,
            setter: None,
            value,
            attributes: sys::PropertyAttributes::writable
                | sys::PropertyAttributes::enumerable
                | sys::PropertyAttributes::configurable,
            data: ptr::null_mut(),
        });
    }

    /// A string property.
    pub(crate) fn str(mut self, key: &'static CStr, value: &str) -> Result<Obj> {
        let mut v = ptr::null_mut();
        // SAFETY: a valid env from the current call; `value` is valid UTF-8 of its length.
        check(
            unsafe {
                sys::napi_create_string_utf8(
                    self.env,
                    value.as_ptr().cast(),
                    value.len() as isize,
                    &mut v,
                )
            },
            "creating a string",
        )?;
        self.push(key, v);
        Ok(self)
    }

    /// An optional string; absent when `None`.
    pub(crate) fn opt_str(self, key: &'static CStr, value: Option<&str>) -> Result<Obj> {
        match value {
            Some(v) => self.str(key, v),
            None => Ok(self),
        }
    }

    /// A number property.
    pub(crate) fn num(mut self, key: &'static CStr, value: f64) -> Result<Obj> {
        let mut v = ptr::null_mut();
        // SAFETY: a valid env from the current call.
        check(
            unsafe { sys::napi_create_double(self.env, value, &mut v) },
            "creating a number",
        )?;
        self.push(key, v);
        Ok(self)
    }

    /// An optional number; absent when `None`.
    pub(crate) fn opt_num(self, key: &'static CStr, value: Option<f64>) -> Result<Obj> {
        match value {
            Some(v) => self.num(key, v),
            None => Ok(self),
        }
    }

    /// The object, with every property defined in one call.
    pub(crate) fn done(self) -> Result<Built> {
        let mut obj = ptr::null_mut();
        // SAFETY: a valid env from the current call; the descriptors point
        // at 'static names and at values created on this env in this call.
        unsafe {
            check(
                sys::napi_create_object(self.env, &mut obj),
                "creating an object",
            )?;
            check(
                sys::napi_define_properties(self.env, obj, self.props.len(), self.props.as_ptr()),
                "defining properties",
            )?;
        }
        Ok(Built(obj))
    }
}

/// A finished object, returned to JavaScript as is.
pub struct Built(sys::napi_value);

impl TypeName for Built {
    fn type_name() -> &'static str {
        "Object"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Built {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}
