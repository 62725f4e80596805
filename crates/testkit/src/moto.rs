//! moto's server mode: a local AWS (KMS, Secrets Manager, SSM) at `http://127.0.0.1:<port>`.

use std::sync::OnceLock;
use std::time::Duration;

use crate::Error;
use crate::process::{RunningPeer, http_status, shared_instance, spawn_on_free_port};

const PEER: &str = "moto";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `moto_server` on 127.0.0.1.
pub struct Moto {
    port: u16,
    process: RunningPeer,
}

impl std::fmt::Debug for Moto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moto")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Moto {
    /// Access key id moto accepts (any value works; this is the conventional one).
    pub const ACCESS_KEY_ID: &str = "testing";
    /// Secret access key paired with [`Moto::ACCESS_KEY_ID`].
    pub const SECRET_ACCESS_KEY: &str = "testing";
    /// Region the tests use.
    pub const REGION: &str = "us-east-1";

    /// The moto server shared by every test of this process, started on first use. Tests must
    /// create their own keys/secrets (moto's state is shared).
    pub fn shared() -> Result<&'static Moto, Error> {
        static SHARED: OnceLock<Result<Moto, String>> = OnceLock::new();
        shared_instance(&SHARED, PEER, Moto::start)
    }

    /// Starts a private moto server, stopped when dropped.
    pub fn start() -> Result<Moto, Error> {
        let program = crate::peer_path("moto_server")?;
        let (port, process) =
            spawn_on_free_port(PEER, &program, READY_TIMEOUT, server_args, is_up)?;
        Ok(Moto {
            port,
            process: RunningPeer::new(process),
        })
    }

    /// The endpoint URL, `http://127.0.0.1:<port>`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The environment an AWS SDK needs to talk to this moto: `AWS_ENDPOINT_URL`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint_url()),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", Self::REGION.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Creates a symmetric KMS key and, with `alias`, `alias/<alias>` pointing at it; the key ARN, or
    /// the alias ARN when an alias was asked for.
    pub fn create_kms_key(&self, alias: Option<&str>) -> Result<String, Error> {
        let endpoint = self.endpoint_url();
        let alias = alias.map(str::to_owned);
        // Its own thread and runtime, so callers inside or outside a tokio runtime both work.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| call_error(format!("tokio runtime: {e}")))?;
            runtime.block_on(create_kms_key(endpoint, alias))
        })
        .join()
        .map_err(|_| call_error("the KMS call panicked".to_owned()))?
    }

    /// Kills the server at once, as a crash would (fault tests; a private instance only).
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Starts the server again on the same port. moto keeps nothing: resources must be created
    /// again.
    pub fn restart(&self) -> Result<(), Error> {
        let program = crate::peer_path("moto_server")?;
        let process = crate::process::spawn_on_port(
            PEER,
            &program,
            READY_TIMEOUT,
            self.port,
            &server_args(self.port),
            is_up,
        )?;
        self.process.replace(process);
        Ok(())
    }

    /// moto's recent output, for diagnosing a failing test.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

fn call_error(message: String) -> Error {
    Error::PeerCall {
        peer: PEER,
        message,
    }
}

async fn create_kms_key(endpoint: String, alias: Option<String>) -> Result<String, Error> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(Moto::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            Moto::ACCESS_KEY_ID,
            Moto::SECRET_ACCESS_KEY,
            None,
            None,
            "signet-testkit",
        ))
        .load()
        .await;
    let client = aws_sdk_kms::Client::new(&config);
    let key = client
        .create_key()
        .send()
        .await
        .map_err(|e| call_error(format!("CreateKey: {e}")))?;
    let arn = key
        .key_metadata
        .and_then(|m| m.arn)
        .ok_or_else(|| call_error("CreateKey returned no ARN".to_owned()))?;
    let Some(alias) = alias else {
        return Ok(arn);
    };
    client
        .create_alias()
        .alias_name(format!("alias/{alias}"))
        .target_key_id(&arn)
        .send()
        .await
        .map_err(|e| call_error(format!("CreateAlias: {e}")))?;
    let prefix = arn.rsplit_once(":key/").map(|(p, _)| p).unwrap_or(&arn);
    Ok(format!("{prefix}:alias/{alias}"))
}

fn server_args(port: u16) -> Vec<String> {
    vec![
        "-H".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
    ]
}

fn is_up(port: u16) -> bool {
    http_status(port, "/moto-api/").is_some()
}
