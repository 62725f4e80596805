//! OpenBao through `signet-testkit`: KV v2 write/read over HTTP (reqwest, rustls on aws-lc-rs).

use serde_json::{Value, json};
use signet_testkit::OpenBao;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn kv_v2_write_then_read_versions() -> TestResult {
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let http = reqwest::Client::new();
    let path = signet_testkit::unique_name("kv-test");
    let url = format!("{}/v1/secret/data/{path}", bao.addr());

    let written: Value = http
        .post(&url)
        .header("X-Vault-Token", bao.root_token())
        .json(&json!({"data": {"username": "app", "password": "first"}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(written["data"]["version"], json!(1));

    http.post(&url)
        .header("X-Vault-Token", bao.root_token())
        .json(&json!({"data": {"username": "app", "password": "second"}}))
        .send()
        .await?
        .error_for_status()?;

    let read: Value = http
        .get(&url)
        .header("X-Vault-Token", bao.root_token())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(
        read["data"]["data"],
        json!({"username": "app", "password": "second"})
    );
    assert_eq!(read["data"]["metadata"]["version"], json!(2));

    let first: Value = http
        .get(format!("{url}?version=1"))
        .header("X-Vault-Token", bao.root_token())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(first["data"]["data"]["password"], json!("first"));

    let refused = http
        .get(&url)
        .header("X-Vault-Token", "not-the-token")
        .send()
        .await?;
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn openbao_env_points_at_the_dev_server() -> TestResult {
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let env: std::collections::HashMap<String, String> = bao.env().into_iter().collect();
    assert_eq!(env["VAULT_ADDR"], bao.addr());
    assert_eq!(env["VAULT_TOKEN"], bao.root_token());
    assert_eq!(env["BAO_ADDR"], bao.addr());
    let health = reqwest::get(format!("{}/v1/sys/health", env["VAULT_ADDR"])).await?;
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    Ok(())
}
