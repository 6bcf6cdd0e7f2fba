//! Package closures of the real backends: what gp, z3, SymPy and Rocq run from, with hashes,
//! Debian packages and licenses, and a cache that makes a warm computation hash nothing.

mod common;

use capsci_store::closure::hash_file;
use capsci_store::{ClosureError, ClosureSpec, EntryKind, EntryRole, Store};
use common::TempDir;
use std::path::{Path, PathBuf};

fn gp_spec() -> ClosureSpec {
    ClosureSpec {
        name: "gp".into(),
        executables: vec!["/usr/bin/gp".into()],
        trees: vec!["/usr/share/pari".into()],
        ..Default::default()
    }
}

#[test]
fn z3_closure_holds_the_binary_and_its_libraries_with_hashes_packages_and_licenses() {
    let dir = TempDir::new("z3");
    let store = Store::open(dir.path()).expect("open");
    let spec = ClosureSpec {
        name: "z3".into(),
        executables: vec!["/usr/bin/z3".into()],
        ..Default::default()
    };
    let (closure, stats) = store.closures().compute(&spec).expect("closure");
    assert!(closure.id.starts_with("blake3:"));
    let z3 = closure.entry(Path::new("/usr/bin/z3")).expect("z3 itself");
    assert_eq!(z3.role, EntryRole::Executable);
    assert_eq!(
        z3.hash.as_deref(),
        Some(hash_file(Path::new("/usr/bin/z3")).expect("hash").as_str())
    );
    // Debian's z3 binary carries the solver statically (libz3.so.4 is a separate package that
    // /usr/bin/z3 does not load), so the closure holds the binary, its C++ runtime and libc.
    assert!(z3.package.as_deref().is_some_and(|p| p == "z3"), "{z3:?}");
    assert!(z3.version.is_some());
    assert!(
        z3.license.as_deref().is_some_and(|l| l.contains("Expat")),
        "{z3:?}"
    );
    assert!(!closure
        .entries
        .iter()
        .any(|e| e.path.to_string_lossy().contains("libz3")));
    let libstdcxx = closure
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::File && e.path.to_string_lossy().contains("libstdc++.so"))
        .expect("libstdc++ in the closure");
    assert_eq!(libstdcxx.role, EntryRole::Library);
    assert_eq!(
        libstdcxx.hash.as_deref(),
        Some(hash_file(&libstdcxx.path).expect("hash").as_str())
    );
    assert_eq!(
        libstdcxx.size,
        std::fs::metadata(&libstdcxx.path).expect("stat").len()
    );
    assert!(
        libstdcxx.package.is_some() && libstdcxx.license.is_some(),
        "{libstdcxx:?}"
    );
    // The loader and libc are there, resolved as the loader would.
    assert!(closure
        .entries
        .iter()
        .any(|e| e.role == EntryRole::Interpreter));
    assert!(closure
        .entries
        .iter()
        .any(|e| e.path.ends_with("libc.so.6")));
    assert!(stats.elf_parsed >= 3);
    // Same files, same id; the warm computation hashes nothing.
    let (again, warm) = store.closures().compute(&spec).expect("again");
    assert_eq!(again, closure);
    assert_eq!(warm.files_hashed, 0, "{warm:?}");
    assert_eq!(warm.elf_parsed, 0);
    assert!(warm.cache_hits >= 3);
    // Stored, so records can cite it.
    assert_eq!(
        store.closures().get(&closure.id).expect("get"),
        Some(closure.clone())
    );
}

#[test]
fn gp_closure_follows_its_symlink_and_binds_pari_data_whole() {
    let dir = TempDir::new("gp");
    let store = Store::open(dir.path()).expect("open");
    let (closure, cold) = store.closures().compute(&gp_spec()).expect("closure");
    let link = closure.entry(Path::new("/usr/bin/gp")).expect("gp symlink");
    assert_eq!(link.kind, EntryKind::Symlink);
    let target = std::fs::read_link("/usr/bin/gp").expect("readlink");
    assert_eq!(
        link.target.as_deref(),
        Some(target.to_string_lossy().as_ref())
    );
    let real = std::fs::canonicalize("/usr/bin/gp").expect("canonicalize");
    let exe = closure.entry(&real).expect("the real gp binary");
    assert_eq!(exe.kind, EntryKind::File);
    assert_eq!(
        exe.hash.as_deref(),
        Some(hash_file(&real).expect("hash").as_str())
    );
    assert!(
        exe.package
            .as_deref()
            .is_some_and(|p| p.contains("pari-gp")),
        "{exe:?}"
    );
    assert_eq!(exe.license.as_deref(), Some("GPL-2+"));
    // PARI's arithmetic kernel (Debian's gp links PARI statically, GMP dynamically).
    let gmp = closure
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::File && e.path.to_string_lossy().contains("libgmp.so"))
        .expect("libgmp");
    assert_eq!(
        gmp.hash.as_deref(),
        Some(hash_file(&gmp.path).expect("hash").as_str())
    );
    let pari = closure
        .entry(Path::new("/usr/share/pari"))
        .expect("pari data");
    assert_eq!(pari.kind, EntryKind::Tree);
    assert!(pari.files.expect("count") > 100);
    assert!(cold.files_hashed > 100);
    let binds = closure.bind_paths();
    assert!(binds.contains(&PathBuf::from("/usr/share/pari")));
    assert!(binds.contains(&PathBuf::from("/usr/bin/gp")));
    assert!(binds.contains(&real));
    assert!(!binds
        .iter()
        .any(|p| p != Path::new("/usr/share/pari") && p.starts_with("/usr/share/pari")));
    let (warm_closure, warm) = store.closures().compute(&gp_spec()).expect("warm");
    assert_eq!(warm_closure.id, closure.id);
    assert_eq!(warm.files_hashed, 0, "{warm:?}");
    assert_eq!(warm.trees_from_cache, 1);
}

#[test]
fn a_changed_file_in_a_tree_changes_the_id_and_rehashes_only_that_file() {
    let dir = TempDir::new("tree");
    let data = TempDir::new("tree-data");
    for i in 0..20 {
        std::fs::create_dir_all(data.path().join(format!("d{}", i % 3))).expect("mkdir");
        std::fs::write(
            data.path().join(format!("d{}/f{i}", i % 3)),
            format!("file {i}"),
        )
        .expect("write");
    }
    std::os::unix::fs::symlink("d0/f0", data.path().join("link")).expect("symlink");
    let store = Store::open(dir.path()).expect("open");
    let spec = ClosureSpec {
        name: "data".into(),
        trees: vec![data.path().to_path_buf()],
        ..Default::default()
    };
    let (first, cold) = store.closures().compute(&spec).expect("closure");
    assert_eq!(cold.files_hashed, 20);
    let (same, warm) = store.closures().compute(&spec).expect("warm");
    assert_eq!(same.id, first.id);
    assert_eq!(warm.files_hashed, 0);
    std::fs::write(data.path().join("d1/f4"), "changed").expect("change");
    let (changed, after) = store.closures().compute(&spec).expect("after change");
    assert_ne!(changed.id, first.id);
    assert_eq!(after.files_hashed, 1, "{after:?}");
    // Retargeting the symlink changes the tree too.
    std::fs::remove_file(data.path().join("link")).expect("rm");
    std::os::unix::fs::symlink("d0/f3", data.path().join("link")).expect("symlink");
    let (relinked, _) = store.closures().compute(&spec).expect("relinked");
    assert_ne!(relinked.id, changed.id);
}

#[test]
fn sympy_and_rocq_closures_cover_their_trees_and_lock() {
    let dir = TempDir::new("sympy");
    let store = Store::open(dir.path()).expect("open");
    let lock = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/requirements.lock");
    let spec = ClosureSpec {
        name: "sympy".into(),
        executables: vec!["/opt/capsci/venv/bin/python3".into()],
        trees: vec![
            "/opt/capsci/venv/lib/python3.11/site-packages".into(),
            "/usr/lib/python3.11".into(),
        ],
        python_lock: Some(lock),
        ..Default::default()
    };
    let (closure, _) = store.closures().compute(&spec).expect("sympy closure");
    let names: Vec<(&str, &str)> = closure
        .python_packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert!(names.contains(&("sympy", "1.13.3")), "{names:?}");
    assert!(names.contains(&("mpmath", "1.3.0")));
    let site = closure
        .entry(Path::new("/opt/capsci/venv/lib/python3.11/site-packages"))
        .expect("site-packages");
    assert!(site.files.expect("files") > 1000);
    assert!(closure
        .entries
        .iter()
        .any(|e| e.path.to_string_lossy().contains("libpython3.11")
            || e.path.to_string_lossy().ends_with("python3.11")));
    let (_, warm) = store.closures().compute(&spec).expect("warm");
    assert_eq!(warm.files_hashed, 0);
    assert_eq!(warm.trees_from_cache, 2);

    let coq_lib = std::process::Command::new("coqc")
        .arg("-where")
        .output()
        .expect("coqc -where");
    let coq_lib = PathBuf::from(String::from_utf8_lossy(&coq_lib.stdout).trim().to_string());
    let rocq = ClosureSpec {
        name: "rocq".into(),
        executables: vec!["/usr/bin/coqc".into()],
        trees: vec![coq_lib.clone()],
        ..Default::default()
    };
    let (closure, _) = store.closures().compute(&rocq).expect("rocq closure");
    let lib = closure.entry(&coq_lib).expect("stdlib tree");
    assert!(lib.files.expect("files") > 500);
    assert!(lib.package.is_some(), "{lib:?}");
    let (_, warm) = store.closures().compute(&rocq).expect("warm");
    assert_eq!(warm.files_hashed, 0);
}

#[test]
fn missing_or_non_elf_executables_are_typed_errors() {
    let dir = TempDir::new("bad");
    let store = Store::open(dir.path()).expect("open");
    let missing = ClosureSpec {
        name: "x".into(),
        executables: vec!["/nonexistent/tool".into()],
        ..Default::default()
    };
    assert!(matches!(
        store.closures().compute(&missing),
        Err(ClosureError::Io { .. })
    ));
    let script = ClosureSpec {
        name: "x".into(),
        executables: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")],
        ..Default::default()
    };
    assert!(matches!(
        store.closures().compute(&script),
        Err(ClosureError::Elf { .. })
    ));
    let lock = TempDir::new("badlock");
    let file = lock.path().join("req.txt");
    std::fs::write(&file, "sympy>=1\n").expect("write");
    let bad_lock = ClosureSpec {
        name: "x".into(),
        python_lock: Some(file),
        ..Default::default()
    };
    assert!(matches!(
        store.closures().compute(&bad_lock),
        Err(ClosureError::Lock { .. })
    ));
}

/// The real closure spec of a standard backend on this Debian host, spelled out as the backends'
/// own `roots()` give them (the store knows no backend by name).
fn standard_spec(name: &str, python_lock: &std::path::Path) -> capsci_store::ClosureSpec {
    let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
    let (executables, files, trees, lock) = match name {
        "gp" => (
            paths(&["/usr/bin/gp"]),
            vec![],
            paths(&["/usr/share/pari"]),
            None,
        ),
        "z3" => (paths(&["/usr/bin/z3"]), vec![], vec![], None),
        "cvc5" => (paths(&["/usr/bin/cvc5"]), vec![], vec![], None),
        "rocq" => (
            paths(&["/usr/bin/coqc"]),
            vec![],
            paths(&["/usr/lib/ocaml/coq", "/usr/lib/ocaml/coq-core"]),
            None,
        ),
        _ => (
            paths(&["/opt/capsci/venv/bin/python3"]),
            paths(&["/opt/capsci/venv/pyvenv.cfg"]),
            paths(&[
                "/opt/capsci/venv/lib/python3.11/site-packages",
                "/usr/lib/python3.11",
            ]),
            Some(python_lock.to_path_buf()),
        ),
    };
    capsci_store::ClosureSpec {
        name: name.into(),
        executables,
        files,
        trees,
        python_lock: lock,
    }
}

#[test]
fn the_standard_backends_closures_compute() {
    let dir = TempDir::new("known");
    let store = Store::open(dir.path()).expect("open");
    let lock = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/requirements.lock");
    for name in ["gp", "z3", "cvc5", "rocq", "sympy"] {
        let spec = standard_spec(name, &lock);
        let (closure, _) = store.closures().compute(&spec).expect(name);
        assert_eq!(closure.name, name);
        let exe = &spec.executables[0];
        assert!(closure.entry(exe).is_some(), "{name}: {}", exe.display());
        assert!(!closure.licenses().is_empty(), "{name} has no license");
        assert!(
            closure
                .entries
                .iter()
                .any(|e| e.role == EntryRole::Interpreter),
            "{name}"
        );
        assert!(!closure.bind_paths().is_empty());
    }
}

#[test]
fn a_closure_serialises_and_its_id_is_the_hash_of_its_canonical_form() {
    let dir = TempDir::new("canon");
    let store = Store::open(dir.path()).expect("open");
    let lock = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/requirements.lock");
    let spec = standard_spec("z3", &lock);
    let (closure, _) = store.closures().compute(&spec).expect("closure");
    let canonical = closure.canonical_form().expect("canonical");
    assert_eq!(
        closure.id,
        format!("blake3:{}", blake3::hash(canonical.as_bytes()).to_hex())
    );
    let json = serde_json::to_string(&closure).expect("json");
    let back: capsci_store::PackageClosure = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, closure);
}
