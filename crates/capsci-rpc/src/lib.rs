//! capsci's Cap'n Proto surface.
//!
//! The Rust code for every interface is generated at build time from `schema/*.capnp`, which is
//! the single source of truth of the RPC surface. Capability-passing style: a
//! `ScientificSession` hands out one capability per granted interface, never an "any method"
//! dispatcher.
//!
//! - [`net`]: addresses, listeners and the serving loop (`capsci serve --capnp`).
//! - [`server`]: the capability objects, each a thin adapter over `capsci_service::Session`.
//! - [`client`]: `capsci --connect`, and forwarding CLI calls to a running service.
//! - [`convert`]: wire types to and from the core's requests, envelopes and grants.

macro_rules! generated {
    ($($module:ident),+) => {
        $(
            #[allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used)]
            #[doc = concat!("Generated from `schema/", stringify!($module), ".capnp`.")]
            pub mod $module {
                include!(concat!(env!("OUT_DIR"), "/", stringify!($module), ".rs"));
            }
        )+
    };
}

generated!(
    common_capnp,
    session_capnp,
    math_capnp,
    solvers_capnp,
    proof_capnp,
    store_capnp,
    notebook_capnp
);

pub mod client;
pub mod convert;
pub mod net;
pub mod server;

pub use client::{call_blocking, try_local_service, ClientError, LocalService, Reply};
pub use net::{
    run_until_signal, serve_until_signal, spawn, Addr, NetError, RunningServer, ServeConfig,
    LOCAL_SOCKET,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Lists a generated enum's variants as snake_case words, in ordinal order.
    fn words<E: TryFrom<u16> + std::fmt::Debug>() -> Vec<String> {
        (0u16..)
            .map_while(|n| E::try_from(n).ok())
            .map(|variant| {
                let mut word = String::new();
                for (i, c) in format!("{variant:?}").chars().enumerate() {
                    if c.is_ascii_uppercase() && i > 0 {
                        word.push('_');
                    }
                    word.push(c.to_ascii_lowercase());
                }
                word
            })
            .collect()
    }

    fn core_words(all: &[impl std::fmt::Display]) -> Vec<String> {
        all.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rpc_status_enums_match_the_core_vocabularies() {
        use capsci_core::{EvalStatus, JobState, OptStatus, ProofStatus, SmtStatus};
        assert_eq!(
            words::<math_capnp::EvalStatus>(),
            core_words(EvalStatus::ALL)
        );
        assert_eq!(
            words::<solvers_capnp::SmtStatus>(),
            core_words(SmtStatus::ALL)
        );
        assert_eq!(
            words::<solvers_capnp::OptStatus>(),
            core_words(OptStatus::ALL)
        );
        assert_eq!(
            words::<proof_capnp::ProofStatus>(),
            core_words(ProofStatus::ALL)
        );
        assert_eq!(
            words::<session_capnp::JobState>(),
            core_words(JobState::ALL)
        );
    }

    #[test]
    fn a_grant_survives_the_wire() -> capnp::Result<()> {
        let mut message = capnp::message::Builder::new_default();
        {
            let mut grant = message.init_root::<session_capnp::grant::Builder>();
            grant.set_profile("scientific-base");
            let mut methods = grant.reborrow().init_methods(1);
            methods.reborrow().get(0).set_interface("SmtSolver");
            methods.reborrow().get(0).set_method("check");
            grant.init_quotas().set_concurrent_jobs(2);
        }
        let mut bytes = Vec::new();
        capnp::serialize::write_message(&mut bytes, &message)?;
        let reader = capnp::serialize::read_message(
            &mut bytes.as_slice(),
            capnp::message::ReaderOptions::new(),
        )?;
        let grant = reader.get_root::<session_capnp::grant::Reader>()?;
        assert_eq!(grant.get_profile()?.to_str()?, "scientific-base");
        assert_eq!(grant.get_methods()?.get(0).get_method()?.to_str()?, "check");
        assert_eq!(grant.get_quotas()?.get_concurrent_jobs(), 2);
        Ok(())
    }
}
