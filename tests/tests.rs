//! One integration-test binary, a module per area. Every test runs the real `polymr` binary
//! against real child processes and real files in a temporary directory.

mod util;

mod browser;
mod children;
mod config;
mod credentials;
mod docker;
mod failures;
mod filter;
mod map;
mod notify;
mod page;
mod plan;
mod props;
mod records;
mod reliability;
mod remote;
mod run;
mod servers;
mod spark;
mod taskcluster;
mod telemetry_jobs;
