//! Shared test setup: a real service on a temporary store, and an rmcp client talking to our
//! stdio server (framing guard included) over in-process pipes.
#![allow(dead_code)]

use capsci_mcp::{serve_guarded, McpServer, ServiceSlot};
use capsci_service::{Grant, Service, ServiceConfig};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, Implementation, ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A temporary store directory, removed on drop.
pub struct TempStore(pub PathBuf);

impl TempStore {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "capsci-mcp-test-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("temp store");
        TempStore(dir)
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real service on `store` (the sandbox helper is found next to the test binary's
/// directory: build it first with `cargo build -p capsci-sandbox --bins`).
pub fn service(store: &TempStore, spares: usize) -> Arc<Service> {
    Service::open(ServiceConfig {
        store_dir: store.0.clone(),
        spares_per_backend: spares,
        default_limits: capsci_core::Limits::default(),
    })
    .expect("service (is target/debug/capsci-jail built? cargo build -p capsci-sandbox --bins)")
}

/// A client handler that keeps every progress notification it receives.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().expect("lock").push(params);
    }

    fn get_info(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.client_info = Implementation::new("capsci-test-client", "9.9.9");
        config
    }
}

/// Starts our stdio server for `grant` over pipes and connects an rmcp client to it (the
/// client runs `initialize`).
pub async fn connect(
    service: Arc<Service>,
    grant: Grant,
) -> (RunningService<RoleClient, Recorder>, Recorder) {
    let server = McpServer::with_grant(
        ServiceSlot::ready(service),
        grant,
        "agent:test",
        "mcp-stdio",
    );
    connect_server(server).await
}

/// Connects an rmcp client to `server` over pipes, through the framing guard.
pub async fn connect_server(server: McpServer) -> (RunningService<RoleClient, Recorder>, Recorder) {
    let (client_side, server_side) = tokio::io::duplex(1 << 20);
    let (server_read, server_write) = tokio::io::split(server_side);
    tokio::spawn(async move {
        let _ = serve_guarded(server, server_read, server_write).await;
    });
    let recorder = Recorder::default();
    let (client_read, client_write) = tokio::io::split(client_side);
    let client = recorder
        .clone()
        .serve((client_read, client_write))
        .await
        .expect("initialize");
    (client, recorder)
}

/// Tool arguments from a JSON object literal.
pub fn args(value: Value) -> rmcp::model::JsonObject {
    match value {
        Value::Object(o) => o,
        other => panic!("arguments must be an object, got {other}"),
    }
}

/// Calls a tool and returns its result.
pub async fn call(
    client: &RunningService<RoleClient, Recorder>,
    tool: &'static str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args(arguments)))
        .await
        .expect("tools/call")
}

/// The envelope of a tool result.
pub fn envelope(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .expect("structuredContent carries the envelope")
}

/// The text content of a tool result.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
