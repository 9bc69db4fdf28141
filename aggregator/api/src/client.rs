//! [`ApiClient`]: a typed client of one aggregator.

use serde::{de::DeserializeOwned, Serialize};

use crate::{
    BlockData, ErrorBody, Health, ProofAccepted, ProofSubmission, RollupStatus, SlotList,
    SlotOpening, SlotRecord, SlotStatus, TxAccepted, TxRecord, TxSubmission,
};

/// Why a request got no answer of the expected type.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered (connection refused, reset, timed out).
    #[error("{method} {path}: no aggregator answers at {base} (is `lockstep aggregator run` up?): {reason}")]
    Unreachable {
        /// The request's method.
        method: &'static str,
        /// The request's path.
        path: String,
        /// The aggregator's base URL.
        base: String,
        /// The transport's error.
        reason: String,
    },
    /// The aggregator refused the request with an error body.
    #[error("{method} {path} answered {status} {}: {}", body.error, body.message)]
    Refused {
        /// The request's method.
        method: &'static str,
        /// The request's path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The answer is not the type the API documents.
    #[error("{method} {path} answered {status} with a body that is not {expected}: {reason}")]
    Unexpected {
        /// The request's method.
        method: &'static str,
        /// The request's path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The type expected.
        expected: &'static str,
        /// What was wrong (the body, cut short).
        reason: String,
    },
}

impl ClientError {
    /// The refusal's status and code, if the aggregator refused the request.
    pub fn refusal(&self) -> Option<(u16, &str)> {
        match self {
            Self::Refused { status, body, .. } => Some((*status, body.error.as_str())),
            _ => None,
        }
    }

    /// Whether the same request could succeed later: nothing answered, or the service is
    /// busy or stopping (`503`).
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
            || matches!(self, Self::Refused { status: 503, .. })
    }
}

/// A client of one aggregator: one method per endpoint, typed both ways.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the aggregator at `base` (`http://host:port`, a trailing `/` is ignored).
    pub fn new(base: impl Into<String>) -> Self {
        let base: String = base.into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
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

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/health").await
    }

    /// `GET /v1/rollups/{id}`.
    pub async fn rollup(&self, id: u32) -> Result<RollupStatus, ClientError> {
        self.get(&format!("/v1/rollups/{id}")).await
    }

    /// `GET /v1/slots/{slot}`.
    pub async fn slot(&self, slot: u64) -> Result<SlotStatus, ClientError> {
        self.get(&format!("/v1/slots/{slot}")).await
    }

    /// `GET /v1/slots?limit=…`: the newest slots, newest first.
    pub async fn slots(&self, limit: usize) -> Result<SlotList, ClientError> {
        self.get(&format!("/v1/slots?limit={limit}")).await
    }

    /// `GET /v1/slots/{slot}/blocks/{id}`.
    pub async fn block(&self, slot: u64, id: u32) -> Result<BlockData, ClientError> {
        self.get(&format!("/v1/slots/{slot}/blocks/{id}")).await
    }

    /// `GET /v1/transactions/{id}`.
    pub async fn transaction(&self, id: u64) -> Result<TxRecord, ClientError> {
        self.get(&format!("/v1/transactions/{id}")).await
    }

    /// `POST /v1/slots`.
    pub async fn open_slot(&self, opening: &SlotOpening) -> Result<SlotRecord, ClientError> {
        self.post("/v1/slots", opening).await
    }

    /// `POST /v1/proofs`.
    pub async fn submit_proof(
        &self,
        submission: &ProofSubmission,
    ) -> Result<ProofAccepted, ClientError> {
        self.post("/v1/proofs", submission).await
    }

    /// `POST /v1/transactions`.
    pub async fn submit_transaction(
        &self,
        submission: &TxSubmission,
    ) -> Result<TxAccepted, ClientError> {
        self.post("/v1/transactions", submission).await
    }

    /// `GET path`, untyped: the status and the body as JSON (`null` if it is not JSON). For
    /// tests that look at the wire itself.
    pub async fn get_raw(&self, path: &str) -> Result<(u16, serde_json::Value), ClientError> {
        let response = self
            .send(self.http.get(self.url(path)), "GET", path)
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or_default()))
    }

    /// `POST path` with a JSON body, untyped (see [`Self::get_raw`]).
    pub async fn post_raw(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        let request = self.http.post(self.url(path)).json(body);
        let response = self.send(request, "POST", path).await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or_default()))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self
            .send(self.http.get(self.url(path)), "GET", path)
            .await?;
        decode("GET", path, response).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let request = self.http.post(self.url(path)).json(body);
        let response = self.send(request, "POST", path).await?;
        decode("POST", path, response).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        method: &'static str,
        path: &str,
    ) -> Result<reqwest::Response, ClientError> {
        request.send().await.map_err(|e| ClientError::Unreachable {
            method,
            path: path.into(),
            base: self.base.clone(),
            reason: e.to_string(),
        })
    }
}

/// The body as `T` on a 2xx, the error body otherwise.
async fn decode<T: DeserializeOwned>(
    method: &'static str,
    path: &str,
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let unexpected = |expected: &'static str, reason: String| ClientError::Unexpected {
        method,
        path: path.into(),
        status,
        expected,
        reason,
    };
    if (200..300).contains(&status) {
        serde_json::from_str(&text)
            .map_err(|e| unexpected(std::any::type_name::<T>(), format!("{e}: {}", cut(&text))))
    } else {
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Err(ClientError::Refused {
                method,
                path: path.into(),
                status,
                body,
            }),
            Err(e) => Err(unexpected("an error body", format!("{e}: {}", cut(&text)))),
        }
    }
}

fn cut(text: &str) -> String {
    text.chars().take(300).collect()
}
