//! Route handlers, one module per resource.

pub mod admin;
pub mod audit;
pub mod break_glass;
pub mod chat;
pub mod conversations;
pub mod embeddings;
pub mod health;
pub mod keys;
pub mod knowledge;
pub mod me;
pub mod models;
pub mod protect;
pub mod protection;
pub mod remote;
pub mod scim;
pub mod session;
pub mod sso;
