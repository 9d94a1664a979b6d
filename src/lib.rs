//! polymr: a language-agnostic MapReduce driver.
//!
//! Data flows one way through the modules:
//! `config` → `input` → `decode` → `records` → `process` (mapper child) → `output` / `report`.
//! `task` holds the per-task work that every executor shares; `commands` are the thin
//! entry points of the binary.

pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod decode;
pub mod exec;
pub mod exit;
pub mod input;
pub mod limits;
pub mod logging;
pub mod notify;
pub mod output;
pub mod page;
pub mod plan;
pub mod prepare;
pub mod process;
pub mod records;
pub mod report;
pub mod settings;
pub mod shuffle;
pub mod signals;
pub mod storage;
pub mod task;
