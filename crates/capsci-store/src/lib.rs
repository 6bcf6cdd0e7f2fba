//! The embedded store: content-addressed artifacts, the hash-chained provenance log, jobs and package closures
