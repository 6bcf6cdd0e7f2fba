//! `capsci token issue|revoke`: the bearer tokens that `serve --http` and Cap'n Proto over TCP
//! accept. A token is printed once; the store keeps only its hash and the grant it opens.

use crate::cli::{Cli, TokenAction};
use crate::commands::call::store_dir;
use capsci_service::tokens::{TokenGrant, TokenStore};
use capsci_service::Grant;
use std::process::ExitCode;

/// Issues or revokes a token in the chosen store.
pub fn run(cli: &Cli, action: &TokenAction) -> anyhow::Result<ExitCode> {
    let tokens = TokenStore::open(&store_dir(cli)?)?;
    match action {
        TokenAction::Issue { grant, principal } => {
            anyhow::ensure!(
                !principal.trim().is_empty(),
                "--principal must name who the token is for"
            );
            let grant = match grant {
                Some(path) => Grant::load(path)?,
                None => Grant::scientific_base(),
            };
            let token = tokens.issue(&TokenGrant {
                grant,
                principal: principal.clone(),
                runner: serde_json::json!({"issued_by": "capsci token issue"}),
            })?;
            out!("{token}");
        }
        TokenAction::Revoke { token } => {
            tokens.revoke(token)?;
            out!("revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
