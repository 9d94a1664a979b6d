//! Uploads to S3: results and reports are published there only once complete.

use std::path::Path;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

/// Parts of a multipart upload; results up to this size go in one PUT.
const PART_SIZE: u64 = 8 << 20;

/// Uploads a local file: one PUT when small, a multipart upload (aborted on failure) when not.
pub async fn upload(client: &Client, bucket: &str, key: &str, path: &Path) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("uploading to s3://{bucket}/{key}: {e}");
    let size = std::fs::metadata(path).map_err(|e| fail(&e))?.len();
    if size <= PART_SIZE {
        let body = ByteStream::from_path(path).await.map_err(|e| fail(&e))?;
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map_err(|e| fail(&DisplayErrorContext(&e)))?;
        return Ok(());
    }
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| fail(&DisplayErrorContext(&e)))?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| fail(&"no upload id"))?
        .to_string();
    let result: Result<(), String> = async {
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1;
        while offset < size {
            let len = PART_SIZE.min(size - offset);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|e| fail(&e))?;
            let part = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(number)
                .body(body)
                .send()
                .await
                .map_err(|e| fail(&DisplayErrorContext(&e)))?;
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .part_number(number)
                    .build(),
            );
            offset += len;
            number += 1;
        }
        client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| fail(&DisplayErrorContext(&e)))?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}
