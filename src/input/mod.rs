//! Named inputs and the byte streams behind them. Each source (local disk now; S3 and HTTP
//! plug in beside it) resolves user arguments into [`Input`]s and opens them as streams.

mod local;

pub use local::expand_local;

use std::io;
use std::path::PathBuf;

use crate::decode::ByteStream;

/// One input file of a task.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Input {
    /// What the user and the report call it: the path as given or found.
    pub name: String,
    #[serde(skip)]
    pub location: Location,
    /// Size in bytes when known before reading (for planning and progress).
    pub size: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    /// An argument that named nothing: kept so that the report says so.
    Missing(String),
}

impl Input {
    pub async fn open(&self) -> io::Result<ByteStream> {
        match &self.location {
            Location::Local(path) => {
                let file = tokio::fs::File::open(path).await?;
                Ok(Box::pin(file))
            }
            Location::Missing(why) => Err(io::Error::new(io::ErrorKind::NotFound, why.clone())),
        }
    }

    /// A local path for inputs that are already files on this machine.
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match &self.location {
            Location::Local(p) => Some(p),
            Location::Missing(_) => None,
        }
    }
}
