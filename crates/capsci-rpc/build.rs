//! Compiles `schema/*.capnp` (the single source of truth of the RPC surface) with Debian's
//! `capnp` compiler into Rust code in OUT_DIR.

fn main() {
    let schema_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
    let files = [
        "common", "session", "math", "solvers", "proof", "store", "notebook",
    ];
    let mut command = capnpc::CompilerCommand::new();
    command.src_prefix(&schema_dir);
    for name in files {
        let path = schema_dir.join(format!("{name}.capnp"));
        println!("cargo:rerun-if-changed={}", path.display());
        command.file(path);
    }
    if let Err(error) = command.run() {
        panic!("compiling schema/*.capnp failed (is Debian's `capnproto` installed? run scripts/setup.sh): {error}");
    }
}
