//! A small client of the aggregator's HTTP API (`docs/api.md`): what `lockstep status`, the
//! demo's builder and adapters, and the tests use to talk to a running service.

use eyre::{Result, WrapErr};
use serde_json::Value;

/// A client of one aggregator.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: alloy::transports::http::reqwest::Client,
}

impl ApiClient {
    /// A client of the aggregator at `base` (`http://host:port`, a trailing `/` is ignored).
    pub fn new(base: impl Into<String>) -> Self {
        let base: String = base.into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: alloy::transports::http::reqwest::Client::new(),
        }
    }

    /// A client of the aggregator listening on `addr`.
    pub fn local(addr: std::net::SocketAddr) -> Self {
        Self::new(format!("http://{addr}"))
    }

    /// The aggregator's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`: the status code and the JSON body (`null` if the body is not JSON).
    pub async fn get(&self, path: &str) -> Result<(u16, Value)> {
        self.send(self.http.get(self.url(path)), "GET", path).await
    }

    /// `POST path` with a JSON body: the status code and the JSON body.
    pub async fn post(&self, path: &str, body: &impl serde::Serialize) -> Result<(u16, Value)> {
        self.send(self.http.post(self.url(path)).json(body), "POST", path)
            .await
    }

    /// Opens `slot` with the builder's sealed `blocks` (`POST /v1/slots`): the status code and
    /// the slot's record.
    pub async fn open_slot(
        &self,
        slot: u64,
        blocks: &[lockstep_rollup_api::SealedBlock],
    ) -> Result<(u16, Value)> {
        let rollups: Vec<Value> = blocks
            .iter()
            .map(|b| {
                serde_json::json!({
                    "rollup_id": b.rollup_id,
                    "pre_root": lockstep_circuits::fr_text::fr_hex(&b.pre_root),
                    "data": format!("0x{}", hex::encode(&b.data)),
                })
            })
            .collect();
        self.post(
            "/v1/slots",
            &serde_json::json!({ "slot": slot, "rollups": rollups }),
        )
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        request: alloy::transports::http::reqwest::RequestBuilder,
        method: &str,
        path: &str,
    ) -> Result<(u16, Value)> {
        let response = request.send().await.wrap_err_with(|| {
            format!(
                "{method} {path}: no aggregator answers at {} (is `lockstep aggregator run` up?)",
                self.base
            )
        })?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}
