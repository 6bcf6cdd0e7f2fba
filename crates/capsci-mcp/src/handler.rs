//! The MCP server handler: `tools/list` from the session's grant, `tools/call` through
//! [`Session::run_job`] on a blocking thread (progress ticks while it runs, `notifications/cancelled`
//! cancels the job's sandbox), and the session's artifacts as `capsci://artifact/<id>` resources.

use crate::tools::{self, ToolKind, ARTIFACT_URI_PREFIX, ENVELOPE_SCHEMA_URI};
use crate::workspace::Workspace;
use base64::Engine;
use capsci_sandbox::CancelToken;
use capsci_service::tokens::TokenGrant;
use capsci_service::{CallError, Grant, Principal, Service, ServiceConfig, Session};
use capsci_store::ArtifactId;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Resource, ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often a running call reports progress when the client asked for it.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Most artifacts `resources/list` shows (in id order); every artifact of the session stays
/// readable through the `capsci://artifact/{id}` template.
const LISTED_ARTIFACTS: usize = 200;

/// The service, ready or opened in the background on first need (so `initialize` never waits
/// for the store).
#[derive(Debug, Clone)]
pub struct ServiceSlot {
    cell: Arc<tokio::sync::OnceCell<Result<Arc<Service>, String>>>,
    config: Option<ServiceConfig>,
}

impl ServiceSlot {
    /// A slot holding an open service.
    pub fn ready(service: Arc<Service>) -> Self {
        ServiceSlot {
            cell: Arc::new(tokio::sync::OnceCell::new_with(Some(Ok(service)))),
            config: None,
        }
    }

    /// A slot that opens the service with `config` when first asked (or when [`Self::warm`]
    /// starts it in the background).
    pub fn lazy(config: ServiceConfig) -> Self {
        ServiceSlot {
            cell: Arc::new(tokio::sync::OnceCell::new()),
            config: Some(config),
        }
    }

    /// Starts opening the service in the background, so the first call does not wait for it.
    pub fn warm(&self) {
        let slot = self.clone();
        tokio::spawn(async move {
            let _ = slot.get().await;
        });
    }

    /// The service, opening it if needed; the error names what failed.
    pub async fn get(&self) -> Result<Arc<Service>, String> {
        self.cell
            .get_or_init(|| async {
                let Some(config) = self.config.clone() else {
                    return Err("no service configured".to_string());
                };
                let dir = config.store_dir.display().to_string();
                match tokio::task::spawn_blocking(move || Service::open(config)).await {
                    Ok(Ok(service)) => Ok(service),
                    Ok(Err(e)) => Err(format!("store {dir} unavailable: {e}")),
                    Err(e) => Err(format!("opening store {dir} failed: {e}")),
                }
            })
            .await
            .clone()
    }
}

/// A session and the artifacts its calls created (the only ones it may read back).
#[derive(Debug)]
pub(crate) struct Holder {
    session: Session,
    artifacts: Mutex<BTreeSet<String>>,
}

impl Holder {
    fn new(session: Session) -> Arc<Self> {
        Arc::new(Holder {
            session,
            artifacts: Mutex::new(BTreeSet::new()),
        })
    }

    fn remember(&self, envelope: &capsci_core::Envelope) {
        let refs = &envelope.artifacts;
        let mut set = self.artifacts.lock().unwrap_or_else(|p| p.into_inner());
        for id in [&refs.input, &refs.output, &refs.log].into_iter().flatten() {
            set.insert(id.clone());
        }
        set.extend(refs.extra.values().cloned());
    }

    fn owns(&self, id: &str) -> bool {
        self.artifacts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }
}

/// A bearer token the HTTP layer resolved for this request, put in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Authorized {
    /// The token as presented (the key of its session).
    pub token: String,
    /// What it opens.
    pub grant: TokenGrant,
}

/// Sessions of the HTTP server, one per token: every MCP session presenting the same token
/// shares one capsci session (and so one quota ledger).
#[derive(Debug, Default)]
pub(crate) struct TokenSessions {
    sessions: Mutex<HashMap<String, Arc<Holder>>>,
}

/// Who the server acts for.
#[derive(Debug, Clone)]
enum Authority {
    /// One grant for the whole connection (stdio): the session is made on first use, after
    /// `initialize`, so the client's name and version go into the runner metadata.
    Fixed {
        grant: Grant,
        principal: String,
        front_end: &'static str,
        holder: Arc<OnceLock<Arc<Holder>>>,
    },
    /// Each request presents a bearer token (streamable HTTP).
    Token(Arc<TokenSessions>),
}

/// The capsci MCP server handler (one per MCP connection).
#[derive(Debug, Clone)]
pub struct McpServer {
    slot: ServiceSlot,
    authority: Authority,
    workspace: Option<Arc<Workspace>>,
}

impl McpServer {
    /// A server holding `grant` for `principal` (e.g. `agent:mcp-stdio`); `front_end` is
    /// recorded in the runner metadata (`mcp-stdio`).
    pub fn with_grant(
        slot: ServiceSlot,
        grant: Grant,
        principal: impl Into<String>,
        front_end: &'static str,
    ) -> Self {
        McpServer {
            slot,
            authority: Authority::Fixed {
                grant,
                principal: principal.into(),
                front_end,
                holder: Arc::new(OnceLock::new()),
            },
            workspace: None,
        }
    }

    /// Lets the proof tools name projects by `path` inside `workspace` (a directory the local
    /// user granted at server start).
    pub fn with_workspace(mut self, workspace: Workspace) -> Self {
        self.workspace = Some(Arc::new(workspace));
        self
    }

    pub(crate) fn with_tokens(slot: ServiceSlot, sessions: Arc<TokenSessions>) -> Self {
        McpServer {
            slot,
            authority: Authority::Token(sessions),
            workspace: None,
        }
    }

    /// The session (and its artifacts) the request acts under.
    async fn holder(&self, context: &RequestContext<RoleServer>) -> Result<Arc<Holder>, McpError> {
        match &self.authority {
            Authority::Fixed {
                grant,
                principal,
                front_end,
                holder,
            } => {
                if let Some(h) = holder.get() {
                    return Ok(h.clone());
                }
                let service = self.service().await?;
                let client = context
                    .peer
                    .peer_info()
                    .map(|info| {
                        json!({"name": info.client_info.name, "version": info.client_info.version})
                    })
                    .unwrap_or(Value::Null);
                let principal = Principal {
                    id: principal.clone(),
                    runner: json!({"front_end": front_end, "client": client}),
                };
                Ok(holder
                    .get_or_init(|| Holder::new(service.session(grant.clone(), principal)))
                    .clone())
            }
            Authority::Token(sessions) => {
                let authorized = context
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<Authorized>())
                    .cloned()
                    .ok_or_else(|| McpError::invalid_request("no bearer token presented", None))?;
                let service = self.service().await?;
                let mut map = sessions.sessions.lock().unwrap_or_else(|p| p.into_inner());
                let holder = map.entry(authorized.token.clone()).or_insert_with(|| {
                    let grant = authorized.grant;
                    let mut runner = grant.runner.clone();
                    if let Value::Object(o) = &mut runner {
                        o.insert("front_end".into(), json!("mcp-http"));
                    } else {
                        runner = json!({"front_end": "mcp-http", "token_runner": runner});
                    }
                    let principal = Principal {
                        id: grant.principal.clone(),
                        runner,
                    };
                    Holder::new(service.session(grant.grant.clone(), principal))
                });
                Ok(holder.clone())
            }
        }
    }

    async fn service(&self) -> Result<Arc<Service>, McpError> {
        self.slot
            .get()
            .await
            .map_err(|e| McpError::internal_error(e, None))
    }

    /// Runs one call on a blocking thread; ticks progress and honours cancellation meanwhile.
    async fn run_call(
        &self,
        holder: Arc<Holder>,
        request: capsci_core::CallRequest,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let session = holder.session.clone();
        let submit = request.clone();
        let job = match tokio::task::spawn_blocking(move || session.submit_job(&submit)).await {
            Ok(Ok(job)) => job,
            Ok(Err(e)) => return Ok(call_error(e)),
            Err(e) => return Err(McpError::internal_error(format!("call task: {e}"), None)),
        };
        let cancel = CancelToken::new();
        let session = holder.session.clone();
        let (job_id, token) = (job.clone(), cancel.clone());
        let mut handle =
            tokio::task::spawn_blocking(move || session.run_job(&job_id, request, &token));
        let progress = context.meta.get_progress_token();
        let start = Instant::now();
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        let outcome = loop {
            tokio::select! {
                outcome = &mut handle => break outcome,
                _ = context.ct.cancelled(), if !cancel.is_cancelled() => cancel.cancel(),
                _ = ticker.tick(), if progress.is_some() => {
                    if let Some(token) = &progress {
                        let elapsed = start.elapsed().as_secs_f64();
                        let note = ProgressNotificationParam::new(token.clone(), elapsed)
                            .with_message(format!("{job} running, {elapsed:.0} s"));
                        let _ = context.peer.notify_progress(note).await;
                    }
                }
            }
        };
        match outcome {
            Ok(Ok(envelope)) => {
                holder.remember(&envelope);
                let value = serde_json::to_value(&envelope)
                    .map_err(|e| McpError::internal_error(format!("envelope: {e}"), None))?;
                let line = tools::summary(&envelope, &value);
                let mut result = CallToolResult::structured(value);
                result.content = vec![ContentBlock::text(line)];
                Ok(result)
            }
            Ok(Err(e)) => Ok(call_error(e)),
            Err(e) => Err(McpError::internal_error(format!("call task: {e}"), None)),
        }
    }
}

/// A call that made no job (not granted, quota, store) is a tool error the agent can read.
fn call_error(error: CallError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(error.to_string())])
}

/// Whether an artifact of this media type is served as text (when its bytes are UTF-8).
fn is_textual(media_type: &str) -> bool {
    let base = media_type.split(';').next().unwrap_or("").trim();
    base.starts_with("text/")
        || base == "application/json"
        || base.ends_with("+json")
        || base.ends_with("+xml")
        || base == "application/x-ndjson"
        || base == "application/smt-lib"
}

/// Reads an artifact's bytes as an MCP resource (text or base64 blob by media type).
fn read_artifact(service: &Service, uri: &str, id: &str) -> Result<ResourceContents, McpError> {
    let parsed = ArtifactId::parse(id)
        .map_err(|e| McpError::resource_not_found(format!("{uri}: {e}"), None))?;
    let artifacts = service.store().artifacts();
    let meta = artifacts
        .meta(&parsed)
        .map_err(|e| McpError::internal_error(format!("{uri}: {e}"), None))?
        .ok_or_else(|| McpError::resource_not_found(format!("{uri}: no such artifact"), None))?;
    let bytes = artifacts
        .get_bytes(&parsed)
        .map_err(|e| McpError::internal_error(format!("{uri}: {e}"), None))?;
    let media = meta.media_type;
    Ok(if is_textual(&media) {
        match String::from_utf8(bytes) {
            Ok(text) => ResourceContents::text(text, uri).with_mime_type(media),
            Err(e) => ResourceContents::blob(
                base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                uri,
            )
            .with_mime_type(media),
        }
    } else {
        ResourceContents::blob(base64::engine::general_purpose::STANDARD.encode(bytes), uri)
            .with_mime_type(media)
    })
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("capsci", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Scientific tools run sandboxed and recorded. Each result's structuredContent is the \
             capsci envelope (schema: resource capsci://schema/envelope); cite its job, \
             provenance record and artifacts (resources capsci://artifact/<id>).",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let allowed = match &self.authority {
            Authority::Fixed { grant, .. } => grant.allowed_methods(),
            Authority::Token(_) => self
                .holder(&context)
                .await?
                .session
                .grant()
                .allowed_methods(),
        };
        let tools = tools::granted_tools(&allowed)
            .iter()
            .map(|tool| tools::tool_definition(tool, self.workspace.is_some()))
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let holder = self.holder(&context).await?;
        let allowed = holder.session.grant().allowed_methods();
        let kind = ToolKind::from_name(&request.name)
            .filter(|kind| {
                tools::granted_tools(&allowed)
                    .iter()
                    .any(|t| t.kind == *kind)
            })
            .ok_or_else(|| {
                McpError::invalid_params(
                    format!("no tool named {} in this session", request.name),
                    None,
                )
            })?;
        let arguments = request.arguments.unwrap_or_default();
        let workspace = self.workspace.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            tools::call_request(kind, arguments, workspace.as_deref())
        })
        .await
        .map_err(|e| McpError::internal_error(format!("argument task: {e}"), None))?;
        let call = match parsed {
            Ok(call) => call,
            Err(e) => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())]).into())
            }
        };
        Ok(self.run_call(holder, call, &context).await?.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let mut resources = vec![Resource::new(ENVELOPE_SCHEMA_URI, "envelope.schema.json")
            .with_description("JSON Schema of the capsci result envelope (every tool's output)")
            .with_mime_type("application/schema+json")];
        let holder = self.holder(&context).await?;
        let ids: Vec<String> = holder
            .artifacts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .take(LISTED_ARTIFACTS)
            .cloned()
            .collect();
        resources.extend(
            ids.into_iter()
                .map(|id| Resource::new(format!("{ARTIFACT_URI_PREFIX}{id}"), id)),
        );
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{ARTIFACT_URI_PREFIX}{{id}}"), "artifact")
                .with_description(
                "An artifact (input, output, log) of a call made in this session, by the id in \
                     its envelope",
            ),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri;
        if uri == ENVELOPE_SCHEMA_URI {
            let text = serde_json::to_string(&capsci_core::envelope_json_schema())
                .map_err(|e| McpError::internal_error(format!("schema: {e}"), None))?;
            let contents =
                ResourceContents::text(text, uri).with_mime_type("application/schema+json");
            return Ok(ReadResourceResult::new(vec![contents]).into());
        }
        let Some(id) = uri.strip_prefix(ARTIFACT_URI_PREFIX) else {
            return Err(McpError::resource_not_found(
                format!("{uri}: not a capsci resource"),
                None,
            ));
        };
        let holder = self.holder(&context).await?;
        if !holder.owns(id) {
            return Err(McpError::resource_not_found(
                format!("{uri}: no artifact of this session has that id"),
                None,
            ));
        }
        let service = self.service().await?;
        let id = id.to_string();
        let contents = tokio::task::spawn_blocking(move || read_artifact(&service, &uri, &id))
            .await
            .map_err(|e| McpError::internal_error(format!("read task: {e}"), None))??;
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_media_types_are_served_as_text() {
        assert!(is_textual("text/plain; charset=utf-8"));
        assert!(is_textual("application/json"));
        assert!(is_textual("application/schema+json"));
        assert!(is_textual("application/smt-lib"));
        assert!(!is_textual("application/x-coq-vo"));
        assert!(!is_textual("application/octet-stream"));
    }
}
