//! MCP over stdio, behind a framing guard: every incoming line is checked before the SDK sees
//! it, so garbage, wrong shapes and oversized requests get a JSON-RPC error response (the SDK
//! alone would drop them silently) and the server stays up for the next request.

use crate::handler::{McpServer, ServiceSlot};
use crate::McpError as Error;
use capsci_service::{Grant, ServiceConfig};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use std::path::PathBuf;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Largest JSON-RPC message accepted (bytes of one line).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// JSON-RPC error codes used by the guard.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

/// What `capsci mcp` serves.
#[derive(Debug, Clone)]
pub struct StdioConfig {
    /// The store directory.
    pub store_dir: PathBuf,
    /// The grant the server holds (`Grant::scientific_base()` by default).
    pub grant: Grant,
    /// The principal calls are recorded for.
    pub principal: String,
    /// A directory whose proof projects `proof_checker_*` may name by `path`.
    pub workspace: Option<PathBuf>,
}

impl StdioConfig {
    /// A stdio server on `store_dir` holding `grant`, for the principal `agent:mcp-stdio`.
    pub fn new(store_dir: PathBuf, grant: Grant) -> Self {
        StdioConfig {
            store_dir,
            grant,
            principal: "agent:mcp-stdio".into(),
            workspace: None,
        }
    }

    /// The service configuration: one hot spare per backend, so warm calls skip start-up.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            store_dir: self.store_dir.clone(),
            spares_per_backend: 1,
            default_limits: capsci_core::Limits::default(),
        }
    }
}

/// Runs `capsci mcp`: MCP over this process's stdin/stdout until stdin closes. Builds its own
/// tokio runtime (two workers); blocking.
pub fn run_stdio(config: StdioConfig) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime { source })?;
    let workspace = config
        .workspace
        .as_deref()
        .map(crate::workspace::Workspace::open)
        .transpose()?;
    runtime.block_on(async move {
        let slot = ServiceSlot::lazy(config.service_config());
        slot.warm();
        let mut server = McpServer::with_grant(slot, config.grant, config.principal, "mcp-stdio");
        if let Some(workspace) = workspace {
            server = server.with_workspace(workspace);
        }
        serve_guarded(server, tokio::io::stdin(), tokio::io::stdout()).await
    })
}

/// Serves `server` over a byte stream pair (stdin/stdout, or a pipe in tests), with the framing
/// guard in front. Returns when the input closes or the session ends.
pub async fn serve_guarded<R, W>(server: McpServer, input: R, output: W) -> Result<(), Error>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (sdk_in, mut guard_in) = tokio::io::duplex(256 * 1024);
    let (sdk_out_reader, sdk_out) = tokio::io::duplex(256 * 1024);
    let (lines_tx, mut lines_rx) = mpsc::channel::<Vec<u8>>(64);

    // One writer owns the output: whole lines only, from the SDK or from the guard.
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(line) = lines_rx.recv().await {
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let sdk_lines = lines_tx.clone();
    let forwarder = tokio::spawn(async move {
        let mut reader = BufReader::new(sdk_out_reader);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if sdk_lines.send(line).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let guard = tokio::spawn(async move {
        let mut input = BufReader::new(input);
        loop {
            match read_bounded_line(&mut input, MAX_REQUEST_BYTES).await {
                Line::Eof => break,
                Line::Oversized => {
                    let reply = error_line(
                        Value::Null,
                        INVALID_REQUEST,
                        &format!("request over {MAX_REQUEST_BYTES} bytes refused"),
                    );
                    if lines_tx.send(reply).await.is_err() {
                        break;
                    }
                }
                Line::Complete(line) => match check_message(&line) {
                    Verdict::Forward => {
                        if guard_in.write_all(&line).await.is_err()
                            || guard_in.write_all(b"\n").await.is_err()
                        {
                            break;
                        }
                    }
                    Verdict::Skip => {}
                    Verdict::Reply(reply) => {
                        if lines_tx.send(reply).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        // Closing the SDK's input ends the session.
        let _ = guard_in.shutdown().await;
    });

    let served = server
        .serve((sdk_in, sdk_out))
        .await
        .map_err(|e| Error::Session(e.to_string()))?;
    let quit = served.waiting().await;
    guard.abort();
    let _ = forwarder.await;
    let _ = writer.await;
    quit.map(|_| ()).map_err(|e| Error::Session(e.to_string()))
}

/// One line read with a bound.
enum Line {
    Complete(Vec<u8>),
    Oversized,
    Eof,
}

/// Reads one `\n`-terminated line without ever buffering more than `max` bytes of it; an
/// oversized line is consumed to its end and reported.
async fn read_bounded_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, max: usize) -> Line {
    let mut line = Vec::new();
    let mut oversized = false;
    loop {
        let buffer = match reader.fill_buf().await {
            Ok(b) => b,
            Err(_) => return Line::Eof,
        };
        if buffer.is_empty() {
            // EOF: a trailing message without newline is still a message.
            return match (oversized, line.is_empty()) {
                (true, _) => Line::Oversized,
                (false, true) => Line::Eof,
                (false, false) => Line::Complete(line),
            };
        }
        let (chunk, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(i) => (&buffer[..i], Some(i + 1)),
            None => (buffer, None),
        };
        if !oversized {
            if line.len() + chunk.len() > max {
                oversized = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = done.unwrap_or(buffer.len());
        reader.consume(consumed);
        if done.is_some() {
            return if oversized {
                Line::Oversized
            } else {
                Line::Complete(line)
            };
        }
    }
}

/// What the guard does with a line.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// A well-formed MCP message: hand it to the SDK.
    Forward,
    /// Blank line, or a malformed notification (JSON-RPC: never answer a notification).
    Skip,
    /// Answer with this error line.
    Reply(Vec<u8>),
}

fn error_line(id: Value, code: i64, message: &str) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message}
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// Checks one line: JSON, a JSON-RPC 2.0 object, and a message the MCP SDK can decode.
fn check_message(line: &[u8]) -> Verdict {
    let text = line.strip_suffix(b"\r").unwrap_or(line);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Skip;
    }
    let value: Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Reply(error_line(
                Value::Null,
                PARSE_ERROR,
                &format!("parse error: {e}"),
            ))
        }
    };
    let Value::Object(object) = &value else {
        return Verdict::Reply(error_line(
            Value::Null,
            INVALID_REQUEST,
            "invalid request: a JSON-RPC message is a JSON object (batches are not supported)",
        ));
    };
    let id = object.get("id").cloned();
    let id_ok = matches!(id, None | Some(Value::String(_)) | Some(Value::Number(_)));
    let reply_id = if id_ok {
        id.clone().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") || !id_ok {
        return Verdict::Reply(error_line(
            reply_id,
            INVALID_REQUEST,
            "invalid request: not a JSON-RPC 2.0 message (jsonrpc must be \"2.0\", id a string or number)",
        ));
    }
    let method = object.get("method");
    if method.is_some_and(|m| !m.is_string()) {
        return Verdict::Reply(error_line(
            reply_id,
            INVALID_REQUEST,
            "invalid request: method must be a string",
        ));
    }
    match serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
        Ok(_) => Verdict::Forward,
        Err(e) => match (method, id) {
            // A notification gets no answer, well-formed or not.
            (Some(_), None) => Verdict::Skip,
            (Some(m), Some(id)) => Verdict::Reply(error_line(
                id,
                INVALID_PARAMS,
                &format!("invalid params for {}: {e}", m.as_str().unwrap_or("?")),
            )),
            (None, _) => Verdict::Reply(error_line(
                reply_id,
                INVALID_REQUEST,
                &format!("invalid request: {e}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(verdict: Verdict) -> Value {
        match verdict {
            Verdict::Reply(line) => serde_json::from_slice(&line).expect("json"),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let r = reply(check_message(b"{not json"));
        assert_eq!(r["error"]["code"], PARSE_ERROR);
        assert_eq!(r["id"], Value::Null);
    }

    #[test]
    fn wrong_types_name_the_request() {
        let r = reply(check_message(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"oops"}"#,
        ));
        assert_eq!(r["id"], 7);
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
        let r = reply(check_message(br#"{"jsonrpc":"2.0","id":8,"method":42}"#));
        assert_eq!(r["error"]["code"], INVALID_REQUEST);
        let r = reply(check_message(br#"[1,2]"#));
        assert_eq!(r["error"]["code"], INVALID_REQUEST);
    }

    #[test]
    fn good_messages_pass() {
        assert_eq!(
            check_message(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Verdict::Forward
        );
        assert_eq!(
            check_message(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Verdict::Forward
        );
        assert_eq!(check_message(b"   "), Verdict::Skip);
    }

    #[tokio::test]
    async fn oversized_lines_are_consumed_and_reported() {
        let mut data = vec![b'x'; 100];
        data.push(b'\n');
        data.extend_from_slice(b"ok\n");
        let mut reader = BufReader::with_capacity(16, &data[..]);
        assert!(matches!(
            read_bounded_line(&mut reader, 50).await,
            Line::Oversized
        ));
        match read_bounded_line(&mut reader, 50).await {
            Line::Complete(line) => assert_eq!(line, b"ok"),
            _ => panic!("next line lost"),
        }
        assert!(matches!(
            read_bounded_line(&mut reader, 50).await,
            Line::Eof
        ));
    }
}
