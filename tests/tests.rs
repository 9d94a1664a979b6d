//! One integration-test binary, a module per area. Every test runs the real `polymr` binary
//! against real child processes and real files in a temporary directory.

mod util;

mod children;
mod config;
mod credentials;
mod docker;
mod failures;
mod map;
mod notify;
mod plan;
mod props;
mod records;
mod reliability;
mod remote;
mod run;
mod servers;
mod spark;
mod telemetry_jobs;
