//! MCP over streamable HTTP (`capsci serve --http ADDR`): every request presents a bearer token
//! (`Authorization: Bearer <token>`), resolved through the store's [`TokenStore`] before the
//! MCP layer sees the request. A missing, forged or revoked token gets `401` and no session.

use crate::handler::{Authorized, McpServer, ServiceSlot, TokenSessions};
use crate::stdio::MAX_REQUEST_BYTES;
use crate::McpError as Error;
use bytes::Bytes;
use capsci_service::tokens::{TokenError, TokenStore};
use capsci_service::Service;
use http::{header, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type McpHttp = StreamableHttpService<McpServer, LocalSessionManager>;

/// Serves MCP over streamable HTTP at `addr` until the process ends. The MCP endpoint is `/mcp`
/// (any path is accepted).
pub async fn serve_http(service: Arc<Service>, addr: SocketAddr) -> Result<(), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    serve_http_on(service, listener, CancellationToken::new()).await
}

/// Serves MCP over streamable HTTP on a bound listener until `shutdown` is cancelled.
pub async fn serve_http_on(
    service: Arc<Service>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let local = listener
        .local_addr()
        .map_err(|source| Error::Accept { source })?;
    let tokens = TokenStore::open(service.store().dir()).map_err(|source| Error::Tokens {
        source: Box::new(source),
    })?;
    let slot = ServiceSlot::ready(service);
    let sessions = Arc::new(TokenSessions::default());
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown.child_token())
        .with_max_request_body_bytes(MAX_REQUEST_BYTES);
    let ip = local.ip().to_string();
    config.allowed_hosts = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        ip.clone(),
        format!("[{ip}]"),
    ];
    let mcp: McpHttp = StreamableHttpService::new(
        move || Ok(McpServer::with_tokens(slot.clone(), sessions.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(|source| Error::Accept { source })?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let (mcp, tokens, stop) = (mcp.clone(), tokens.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (mcp, tokens) = (mcp.clone(), tokens.clone());
                async move { Ok::<_, Infallible>(authorize_then_serve(mcp, tokens, request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// The bearer token of a request, if it presents one.
fn bearer(request: &Request<Incoming>) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
}

fn refusal(status: StatusCode, message: &str) -> Response<BoxBody<Bytes, Infallible>> {
    let body = serde_json::json!({"error": message}).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"capsci\""),
        );
    }
    response
}

async fn authorize_then_serve(
    mcp: McpHttp,
    tokens: TokenStore,
    mut request: Request<Incoming>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let Some(token) = bearer(&request) else {
        return refusal(StatusCode::UNAUTHORIZED, "a bearer token is required");
    };
    let lookup = token.clone();
    let resolved = tokio::task::spawn_blocking(move || tokens.resolve(&lookup)).await;
    let grant = match resolved {
        Ok(Ok(grant)) => grant,
        Ok(Err(TokenError::Unknown)) => {
            return refusal(StatusCode::UNAUTHORIZED, "unknown or revoked token")
        }
        Ok(Err(e)) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    request.extensions_mut().insert(Authorized { token, grant });
    mcp.handle(request).await
}
