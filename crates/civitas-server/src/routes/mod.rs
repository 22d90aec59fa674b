//! Route handlers, one module per resource.

pub mod chat;
pub mod conversations;
pub mod embeddings;
pub mod health;
pub mod models;
pub mod remote;
