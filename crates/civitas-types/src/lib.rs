//! Wire types shared by the HTTP server, the inference engine and the tests.
//!
//! Only shapes live here: no I/O, no HTTP framework. The OpenAI-compatible
//! request and response bodies follow OpenAI's published OpenAPI document;
//! every error Civitas can answer with is listed once in [`ErrorCode`].

pub mod error;
pub mod openai;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
