//! MCP over streamable HTTP with bearer tokens: a session with a token issued from the store
//! (initialize, tools/list, tools/call, resources/read), and every way in without a valid token
//! refused with 401; an oversized body gets 413 and the server keeps serving.

mod common;

use bytes::Bytes;
use capsci_mcp::serve_http_on;
use capsci_service::tokens::{TokenGrant, TokenStore};
use capsci_service::Grant;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// One HTTP exchange: status, headers, and the JSON-RPC messages of the body (plain JSON or
/// server-sent events).
struct Reply {
    status: u16,
    session: Option<String>,
    messages: Vec<Value>,
}

async fn post(
    addr: SocketAddr,
    token: Option<&str>,
    session: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut request = Request::post("/mcp")
        .header("host", format!("127.0.0.1:{}", addr.port()))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let request = request.body(Full::new(Bytes::from(body))).expect("request");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let mut messages = Vec::new();
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        messages.push(value);
    } else {
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                if let Ok(value) = serde_json::from_str::<Value>(data.trim()) {
                    messages.push(value);
                }
            }
        }
    }
    Reply {
        status,
        session,
        messages,
    }
}

fn rpc(id: u64, method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

fn response(reply: &Reply, id: u64) -> Value {
    reply
        .messages
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no response {id} in {:?} (status {})",
                reply.messages, reply.status
            )
        })
}

async fn initialize(addr: SocketAddr, token: &str) -> String {
    let reply = post(
        addr,
        Some(token),
        None,
        rpc(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "http-test", "version": "1"}}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        response(&reply, 1)["result"]["serverInfo"]["name"],
        "capsci"
    );
    let session = reply.session.expect("mcp-session-id");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
        .to_string()
        .into_bytes();
    let ack = post(addr, Some(token), Some(&session), note).await;
    assert!(
        ack.status == 202 || ack.status == 200,
        "status {}",
        ack.status
    );
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_opens_its_grant_over_http_and_nothing_else_does() {
    let store = TempStore::new("http");
    let service = service(&store, 0);
    let tokens = TokenStore::open(&store.0).expect("tokens");
    let mut grant = Grant::scientific_base();
    grant.methods.retain(|m| {
        m.interface == capsci_core::Interface::SmtSolver
            || m.interface == capsci_core::Interface::NumberTheory
    });
    let token = tokens
        .issue(&TokenGrant {
            grant,
            principal: "agent:http-test".into(),
            runner: json!({"model": "test-model"}),
        })
        .expect("issue");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(serve_http_on(service.clone(), listener, shutdown.clone()));

    let session = initialize(addr, &token).await;

    // tools/list shows the token's grant.
    let reply = post(
        addr,
        Some(&token),
        Some(&session),
        rpc(2, "tools/list", json!({})),
    )
    .await;
    let tools = response(&reply, 2)["result"]["tools"].clone();
    let mut names: Vec<&str> = tools
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["number_theory_eval", "smt_solver_check"]);

    // tools/call: the envelope, recorded for the token's principal.
    let reply = post(
        addr,
        Some(&token),
        Some(&session),
        rpc(
            3,
            "tools/call",
            json!({"name": "smt_solver_check",
            "arguments": {"smtlib": "(declare-const x Int)(assert (> x 0))(check-sat)"}}),
        ),
    )
    .await;
    let result = response(&reply, 3)["result"].clone();
    assert_eq!(result["structuredContent"]["status"], "sat", "{result}");
    let records = service.store().log().list(0, 100).expect("log");
    let draft = &records.last().expect("record").body.draft;
    assert_eq!(draft.principal, "agent:http-test");
    assert_eq!(draft.runner["model"], "test-model");
    assert_eq!(draft.runner["front_end"], "mcp-http");

    // resources/read of the call's input.
    let input = result["structuredContent"]["artifacts"]["input"]
        .as_str()
        .expect("input")
        .to_string();
    let reply = post(
        addr,
        Some(&token),
        Some(&session),
        rpc(
            4,
            "resources/read",
            json!({"uri": format!("capsci://artifact/{input}")}),
        ),
    )
    .await;
    let contents = &response(&reply, 4)["result"]["contents"][0];
    assert!(
        contents["text"].as_str().unwrap_or("").contains("(> x 0)"),
        "{contents}"
    );

    // An ungranted tool is not callable.
    let reply = post(
        addr,
        Some(&token),
        Some(&session),
        rpc(
            5,
            "tools/call",
            json!({"name": "computer_algebra",
            "arguments": {"op": "simplify", "expr": "x+x"}}),
        ),
    )
    .await;
    assert!(response(&reply, 5).get("error").is_some());

    // No token, a forged token, and (below) a revoked token: 401, no session, no job.
    let init = rpc(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "intruder", "version": "1"}}),
    );
    let reply = post(addr, None, None, init.clone()).await;
    assert_eq!(reply.status, 401);
    assert!(reply.session.is_none());
    let forged = format!("capsci_{}", "ab".repeat(32));
    let reply = post(addr, Some(&forged), None, init.clone()).await;
    assert_eq!(reply.status, 401);
    assert!(reply.session.is_none());
    // A forged token cannot ride on a real session id either.
    let reply = post(
        addr,
        Some(&forged),
        Some(&session),
        rpc(6, "tools/list", json!({})),
    )
    .await;
    assert_eq!(reply.status, 401);

    // Oversized body: 413, and the server still serves.
    let big = "x".repeat(capsci_mcp::MAX_REQUEST_BYTES + 1024);
    let reply = post(
        addr,
        Some(&token),
        Some(&session),
        rpc(
            7,
            "tools/call",
            json!({"name": "number_theory_eval", "arguments": {"expr": big}}),
        ),
    )
    .await;
    assert_eq!(reply.status, 413);
    // Garbage body: an error, and the server still serves.
    let reply = post(addr, Some(&token), Some(&session), b"{not json".to_vec()).await;
    assert!(reply.status >= 400, "garbage got {}", reply.status);
    let reply = post(
        addr,
        Some(&token),
        Some(&session),
        rpc(
            8,
            "tools/call",
            json!({"name": "number_theory_eval", "arguments": {"expr": "factor(2^64+1)"}}),
        ),
    )
    .await;
    let result = &response(&reply, 8)["result"];
    assert_eq!(result["structuredContent"]["status"], "ok", "{result}");

    // Revoked: the same token no longer opens anything, even on its existing session.
    tokens.revoke(&token).expect("revoke");
    let reply = post(
        addr,
        Some(&token),
        Some(&session),
        rpc(9, "tools/list", json!({})),
    )
    .await;
    assert_eq!(reply.status, 401);
    let reply = post(addr, Some(&token), None, init).await;
    assert_eq!(reply.status, 401);
    shutdown.cancel();
}
