//! The application layer's tests against a real PostgreSQL: each cross-aggregate rule and flow
//! through its use-case, without HTTP. One binary, a module per concern.

mod command_runner;
