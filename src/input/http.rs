//! HTTP(S) inputs: mapper artifacts fetched by URL, as the original reduce task did from
//! `INPUT_TASK_IDS` and a Taskcluster artifact URL template.

use super::remote::{Body, Fetch, FetchError, Fetched};

pub struct HttpObject {
    pub client: reqwest::Client,
    pub url: String,
}

/// The artifact URLs of the map tasks named in `INPUT_TASK_IDS` (space-separated).
pub fn artifact_urls(task_ids: &str, template: &str) -> Vec<String> {
    task_ids
        .split_whitespace()
        .map(|id| template.replace("{taskId}", id))
        .collect()
}

impl Fetch for HttpObject {
    async fn fetch(&self, offset: u64, _etag: Option<&str>) -> Result<Fetched, FetchError> {
        let mut req = self.client.get(&self.url);
        if offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| FetchError::retryable(format!("{e}")))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(FetchError::retryable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(FetchError::fatal(format!("HTTP {status}")));
        }
        let starts_at = if status.as_u16() == 206 { offset } else { 0 };
        Ok(Fetched {
            body: Body::Http(resp),
            starts_at,
            etag: None,
        })
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn template_expansion() {
        assert_eq!(
            super::artifact_urls(
                " a  b ",
                "http://q/task/{taskId}/artifacts/public/result.txt"
            ),
            vec![
                "http://q/task/a/artifacts/public/result.txt",
                "http://q/task/b/artifacts/public/result.txt"
            ]
        );
    }
}
