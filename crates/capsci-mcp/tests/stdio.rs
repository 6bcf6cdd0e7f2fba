//! An MCP conversation over stdio (our server with its framing guard, an rmcp client) through
//! the real service: real gp and z3 in the real sandbox, a real store.

mod common;

use capsci_service::Grant;
use common::*;
use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_conversation_over_stdio() {
    let store = TempStore::new("conversation");
    let service = service(&store, 1);
    let (client, _recorder) = connect(service.clone(), Grant::scientific_base()).await;

    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("capsci")
    );
    assert!(info.capabilities.tools.is_some() && info.capabilities.resources.is_some());

    // tools/list: every method of the full grant, small enough for an agent's context.
    let listed = client.list_tools(None).await.expect("tools/list");
    let names: BTreeSet<String> = listed.tools.iter().map(|t| t.name.to_string()).collect();
    let expected: BTreeSet<String> = [
        "number_theory_eval",
        "computer_algebra",
        "smt_solver_check",
        "optimization_solver_solve",
        "proof_checker_check",
        "proof_checker_goals",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names, expected);
    let bytes = serde_json::to_vec(&listed).expect("json").len();
    assert!(bytes < 16 * 1024, "tools/list is {bytes} bytes, over 16 KB");
    for tool in &listed.tools {
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
        assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
    }

    // tools/call: PARI factors 2^64+1; structuredContent is the envelope.
    let result = call(
        &client,
        "number_theory_eval",
        json!({"expr": "factor(2^64+1)"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true));
    let env = envelope(&result).clone();
    assert_eq!(env["interface"], "NumberTheory");
    assert_eq!(env["status"], "ok", "{env}");
    let value = env["result"]["value"].as_str().expect("value");
    assert!(
        value.contains("274177") && value.contains("67280421310721"),
        "{value}"
    );
    let summary = text(&result);
    assert!(
        summary.starts_with("ok (gp, evidence advisory) job_"),
        "{summary}"
    );
    assert!(!summary.contains('\n'), "summary is one line: {summary}");
    let record = env["provenance"]["record"].as_str().expect("record");
    assert!(summary.contains(record), "{summary}");

    // The provenance record names the MCP principal and the client from `initialize`.
    let records = service.store().log().list(0, 1000).expect("log");
    let last = &records.last().expect("a record").body.draft;
    assert_eq!(last.principal, "agent:test");
    assert_eq!(last.runner["front_end"], "mcp-stdio");
    assert_eq!(last.runner["client"]["name"], "capsci-test-client");
    assert_eq!(last.runner["client"]["version"], "9.9.9");

    // resources/read: the call's input artifact is what gp was given.
    let input_id = env["artifacts"]["input"].as_str().expect("input id");
    let read = client
        .read_resource(ReadResourceRequestParams::new(format!(
            "capsci://artifact/{input_id}"
        )))
        .await
        .expect("resources/read");
    let bytes_read = match &read.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => text.clone().into_bytes(),
        ResourceContents::BlobResourceContents { blob, .. } => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(blob)
                .expect("base64")
        }
        other => panic!("unexpected resource contents {other:?}"),
    };
    assert!(
        String::from_utf8_lossy(&bytes_read).contains("factor(2^64+1)"),
        "input artifact: {}",
        String::from_utf8_lossy(&bytes_read)
    );

    // An unknown artifact, and one that exists but belongs to no call of this session.
    let unknown = client
        .read_resource(ReadResourceRequestParams::new(format!(
            "capsci://artifact/blake3:{}",
            "0".repeat(64)
        )))
        .await;
    assert!(unknown.is_err(), "unknown artifact must be an error");
    let foreign = service
        .store()
        .artifacts()
        .put_bytes(b"someone else's data", "text/plain")
        .expect("put");
    let foreign = client
        .read_resource(ReadResourceRequestParams::new(format!(
            "capsci://artifact/{foreign}"
        )))
        .await;
    assert!(
        foreign.is_err(),
        "another session's artifact must not be readable"
    );

    // The envelope schema is a resource.
    let schema = client
        .read_resource(ReadResourceRequestParams::new("capsci://schema/envelope"))
        .await
        .expect("schema");
    let ResourceContents::TextResourceContents { text: schema, .. } = &schema.contents[0] else {
        panic!("schema is text")
    };
    let schema: Value = serde_json::from_str(schema).expect("schema json");
    assert!(schema.get("properties").is_some() || schema.get("$defs").is_some());

    // SMT: sat, with a model capsci checked.
    let result = call(
        &client,
        "smt_solver_check",
        json!({"smtlib": "(declare-const x Int)(declare-const y Int)(assert (> x 2))(assert (= y (* 2 x)))(check-sat)"}),
    )
    .await;
    let env = envelope(&result);
    assert_eq!(env["status"], "sat", "{env}");
    assert_eq!(env["evidence"], "checked", "{env}");
    let model = env["result"]["model"].as_array().expect("model");
    assert!(model.iter().any(|m| m["name"] == "x"), "{env}");
    assert!(text(&result).starts_with("sat (z3, evidence checked) job_"));

    // A second tiny call is served by the hot spare and still recorded.
    let result = call(
        &client,
        "smt_solver_check",
        json!({"smtlib": "(declare-const x Int)(assert (> x 0))(assert (< x 0))(check-sat)"}),
    )
    .await;
    assert_eq!(envelope(&result)["status"], "unsat");

    // Bad arguments are a tool error the agent can read, not a dead session.
    let result = call(
        &client,
        "number_theory_eval",
        json!({"expr": "1", "tiemout_s": 3}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("tiemout_s"), "{}", text(&result));

    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attenuated_grant_shows_and_runs_only_its_methods() {
    let store = TempStore::new("attenuated");
    let service = service(&store, 0);
    let grant_file = store.0.join("grant.json");
    std::fs::write(
        &grant_file,
        serde_json::to_vec(&json!({
            "profile": "sub-agent",
            "methods": [
                {"interface": "SmtSolver", "method": "check"},
                {"interface": "ComputerAlgebra", "method": "diff"}
            ]
        }))
        .expect("json"),
    )
    .expect("grant file");
    let grant = Grant::scientific_base().attenuate(&Grant::load(&grant_file).expect("grant"));
    let (client, _) = connect(service, grant).await;

    let listed = client.list_tools(None).await.expect("tools/list");
    let names: Vec<String> = listed.tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["computer_algebra", "smt_solver_check"]);
    let cas = &listed.tools[0];
    assert_eq!(
        cas.input_schema["properties"]["op"]["enum"],
        json!(["diff"])
    );

    // An absent tool cannot be called.
    let refused = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("number_theory_eval")
                .with_arguments(args(json!({"expr": "1+1"}))),
        )
        .await;
    assert!(refused.is_err(), "an ungranted tool must be an error");

    // An ungranted operation of a granted interface: a tool error naming it; no job runs.
    let result = call(
        &client,
        "computer_algebra",
        json!({"op": "simplify", "expr": "x+x"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("not granted"), "{}", text(&result));

    // The granted one works.
    let result = call(
        &client,
        "smt_solver_check",
        json!({"smtlib": "(declare-const b Bool)(assert b)(check-sat)", "backend": "cvc5"}),
    )
    .await;
    assert_eq!(envelope(&result)["status"], "sat", "{}", envelope(&result));
    assert_eq!(envelope(&result)["backend"]["name"], "cvc5");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_quota_is_a_tool_error_and_no_job_runs() {
    let store = TempStore::new("quota");
    let service = service(&store, 0);
    let mut grant = Grant::scientific_base();
    grant.quotas.artifact_bytes = 1;
    let (client, _) = connect(service.clone(), grant).await;
    // The first call stores its artifacts and so spends the artifact quota.
    let first = call(&client, "number_theory_eval", json!({"expr": "2+2"})).await;
    assert_eq!(envelope(&first)["status"], "ok");
    let second = call(&client, "number_theory_eval", json!({"expr": "3+3"})).await;
    assert_eq!(second.is_error, Some(true), "{second:?}");
    assert!(
        text(&second).contains("resource_exceeded"),
        "quota error names the status word: {}",
        text(&second)
    );
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_can_name_a_workspace_path_and_cannot_leave_it() {
    let store = TempStore::new("workspace");
    let service = service(&store, 0);
    let ws = store.0.join("ws");
    std::fs::create_dir_all(&ws).expect("ws");
    std::fs::write(
        ws.join("Plus.v"),
        "Theorem plus_O : forall n : nat, 0 + n = n.\nProof. intros n. reflexivity. Qed.\n",
    )
    .expect("Plus.v");
    std::fs::write(
        store.0.join("Outside.v"),
        "Theorem t : True. Proof. exact I. Qed.\n",
    )
    .expect("outside");
    std::os::unix::fs::symlink(store.0.join("Outside.v"), ws.join("Link.v")).expect("link");
    let server = capsci_mcp::McpServer::with_grant(
        capsci_mcp::ServiceSlot::ready(service),
        Grant::scientific_base(),
        "agent:test",
        "mcp-stdio",
    )
    .with_workspace(capsci_mcp::Workspace::open(&ws).expect("workspace"));
    let (client, _) = connect_server(server).await;

    let listed = client.list_tools(None).await.expect("tools/list");
    let check = listed
        .tools
        .iter()
        .find(|t| t.name == "proof_checker_check")
        .expect("proof tool");
    assert!(check.input_schema["properties"].get("path").is_some());

    let result = call(&client, "proof_checker_check", json!({"path": "Plus.v"})).await;
    let env = envelope(&result);
    assert_eq!(env["status"], "accepted", "{env}");
    assert!(env["result"]["theorems"]
        .as_array()
        .expect("theorems")
        .iter()
        .any(|t| t["name"].as_str().unwrap_or("").contains("plus_O")));

    for escape in [
        "../Outside.v",
        "Link.v",
        "/etc/passwd",
        "sub/../../Outside.v",
    ] {
        let result = call(&client, "proof_checker_check", json!({"path": escape})).await;
        assert_eq!(result.is_error, Some(true), "{escape} must be refused");
        assert!(result.structured_content.is_none(), "{escape} made a job");
    }
    client.cancel().await.expect("close");
}
