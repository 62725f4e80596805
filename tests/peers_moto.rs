//! moto through `signet-testkit`: AWS KMS Encrypt/Decrypt with an encryption context, through
//! `aws-sdk-kms` on its rustls/aws-lc HTTP client.

use std::collections::HashMap;

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::primitives::Blob;
use signet_testkit::Moto;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn kms_client() -> Result<aws_sdk_kms::Client, Box<dyn std::error::Error>> {
    let moto = tokio::task::spawn_blocking(Moto::shared).await??;
    let env: HashMap<String, String> = moto.env().into_iter().collect();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&env["AWS_ENDPOINT_URL"])
        .region(Region::new(env["AWS_REGION"].clone()))
        .credentials_provider(Credentials::new(
            &env["AWS_ACCESS_KEY_ID"],
            &env["AWS_SECRET_ACCESS_KEY"],
            None,
            None,
            "signet-testkit",
        ))
        .load()
        .await;
    Ok(aws_sdk_kms::Client::new(&config))
}

#[tokio::test]
async fn kms_encrypt_decrypt_with_encryption_context() -> TestResult {
    let kms = kms_client().await?;
    let key = kms
        .create_key()
        .description("signet test key")
        .send()
        .await?;
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or("no key id")?;
    let plaintext = b"a 32-byte data key, more or less".to_vec();

    let encrypted = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(plaintext.clone()))
        .encryption_context("repo", "signet")
        .encryption_context("path", "apps/db.yaml")
        .send()
        .await?;
    let blob = encrypted.ciphertext_blob().ok_or("no ciphertext")?.clone();
    assert_ne!(blob.as_ref(), plaintext.as_slice());
    assert!(encrypted.key_id().is_some_and(|id| id.contains(&key_id)));

    let decrypted = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("repo", "signet")
        .encryption_context("path", "apps/db.yaml")
        .send()
        .await?;
    assert_eq!(
        decrypted.plaintext().map(|p| p.as_ref()),
        Some(plaintext.as_slice())
    );
    assert!(decrypted.key_id().is_some_and(|id| id.contains(&key_id)));

    // The context is bound to the ciphertext: a different one (or none) must fail.
    let wrong = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("repo", "someone-else")
        .encryption_context("path", "apps/db.yaml")
        .send()
        .await;
    assert!(
        wrong.is_err(),
        "decrypt with the wrong encryption context must fail"
    );
    let missing = kms.decrypt().ciphertext_blob(blob).send().await;
    assert!(
        missing.is_err(),
        "decrypt without the encryption context must fail"
    );
    Ok(())
}

#[tokio::test]
async fn moto_env_names_the_four_aws_variables() -> TestResult {
    let moto = tokio::task::spawn_blocking(Moto::shared).await??;
    let env: HashMap<String, String> = moto.env().into_iter().collect();
    assert_eq!(env["AWS_ENDPOINT_URL"], moto.endpoint_url());
    assert!(env["AWS_ENDPOINT_URL"].starts_with("http://127.0.0.1:"));
    assert_eq!(env["AWS_ACCESS_KEY_ID"], "testing");
    assert_eq!(env["AWS_SECRET_ACCESS_KEY"], "testing");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    Ok(())
}
