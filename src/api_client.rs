//! Calls to a running `busbar serve`'s API from the command line (`busbar replay`, `busbar connectors`): the
//! bearer token, a clear error when the server cannot be reached, and the server's own message on a refusal.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// What the server answered: its JSON on success, or the message of its `{code, message}` error.
pub type Answer = Result<Value, String>;

impl ApiClient {
    pub fn new(api: &str, token: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Self { http, base: api.trim_end_matches('/').to_owned(), token })
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Answer> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach busbar serve at {} (is it running? --api sets the address)", self.base))?;
        let status = response.status();
        let answer: Value =
            response.json().await.with_context(|| format!("{}{path} answered {status} without JSON", self.base))?;
        if status.is_success() {
            Ok(Ok(answer))
        } else {
            Ok(Err(answer["message"].as_str().unwrap_or("the server refused the request").to_owned()))
        }
    }
}
