//! Local inference for Civitas: the model catalogue, the model store
//! (pull, import, verify), and the engines that run models in-process.
//!
//! API boundary: callers hand in rendered-ready messages and parameters and
//! get text events back; nothing here knows about HTTP.

pub mod catalogue;
pub mod embed;
mod embed_gemm;
pub mod engine;
pub mod grammar;
pub mod model_store;
pub mod template;
pub mod text;

pub use catalogue::{CatalogueEntry, ModelKind};
pub use engine::{
    ChatEngine, EngineConfig, EngineError, GenerationEvent, GenerationParams, Prompt, StopReason,
};
pub use model_store::{InstalledModel, ModelStore, ModelStoreError, PullEvent};
