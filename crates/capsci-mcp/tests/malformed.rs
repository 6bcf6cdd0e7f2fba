//! Malformed JSON-RPC over stdio: garbage, wrong types and an oversized request each get a
//! JSON-RPC error response, and the server answers the next request as if nothing happened.

mod common;

use capsci_mcp::{serve_guarded, McpServer, ServiceSlot, MAX_REQUEST_BYTES};
use capsci_service::Grant;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

struct Raw {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

impl Raw {
    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
        self.writer.write_all(b"\n").await.expect("write");
    }

    async fn receive(&mut self) -> Value {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), self.reader.read_line(&mut line))
            .await
            .expect("the server answers")
            .expect("read");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_messages_get_errors_and_the_server_stays_healthy() {
    let store = TempStore::new("malformed");
    let service = service(&store, 0);
    let (client_side, server_side) = tokio::io::duplex(1 << 20);
    let (server_read, server_write) = tokio::io::split(server_side);
    let server = McpServer::with_grant(
        ServiceSlot::ready(service),
        Grant::scientific_base(),
        "agent:test",
        "mcp-stdio",
    );
    tokio::spawn(async move {
        let _ = serve_guarded(server, server_read, server_write).await;
    });
    let (read, writer) = tokio::io::split(client_side);
    let mut raw = Raw {
        reader: BufReader::new(read),
        writer,
    };

    // Garbage: a parse error with a null id.
    raw.send(b"this is not json {").await;
    let reply = raw.receive().await;
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], Value::Null);

    // A handshake still works after it.
    raw.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}})
        .to_string()
        .as_bytes(),
    )
    .await;
    let reply = raw.receive().await;
    assert_eq!(reply["id"], 1);
    assert_eq!(reply["result"]["serverInfo"]["name"], "capsci", "{reply}");
    raw.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;

    // Wrong types: params not an object, method not a string, a bare array.
    raw.send(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":"factor(6)"}"#)
        .await;
    let reply = raw.receive().await;
    assert_eq!(reply["id"], 2, "{reply}");
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    raw.send(br#"{"jsonrpc":"2.0","id":3,"method":7}"#).await;
    let reply = raw.receive().await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    raw.send(b"[1, 2, 3]").await;
    let reply = raw.receive().await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");

    // Oversized: a 9 MiB request is refused without being parsed.
    let big = "x".repeat(MAX_REQUEST_BYTES + 1024 * 1024);
    let request = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "number_theory_eval", "arguments": {"expr": big}}})
    .to_string();
    raw.send(request.as_bytes()).await;
    let reply = raw.receive().await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("bytes"),
        "{reply}"
    );

    // An unknown method is a protocol error from the SDK, not a crash.
    raw.send(br#"{"jsonrpc":"2.0","id":5,"method":"no/such/method"}"#)
        .await;
    let reply = raw.receive().await;
    assert_eq!(reply["id"], 5);
    assert!(reply.get("error").is_some(), "{reply}");

    // And the next real request is served.
    raw.send(
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
            "params": {"name": "number_theory_eval", "arguments": {"expr": "factor(91)"}}})
        .to_string()
        .as_bytes(),
    )
    .await;
    let reply = raw.receive().await;
    assert_eq!(reply["id"], 6, "{reply}");
    assert_eq!(
        reply["result"]["structuredContent"]["status"], "ok",
        "{reply}"
    );
}
