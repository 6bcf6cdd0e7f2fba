@0xab7bdefaf2b66ff6;
# Records. These capabilities are read-only views: holding them lets the holder read immutable
# artifacts and provenance records of the calls it is entitled to, and verify the hash chain. No
# capability here can change or delete a record: the log is append-only and only the service
# appends, one record per call.

interface ArtifactStore {
  stat @0 (id :Text) -> (size :UInt64, mediaType :Text);
  read @1 (id :Text, offset :UInt64, length :UInt32) -> (bytes :Data);
  # Reads verify the content hash; a damaged artifact is an error, never wrong bytes.
}

struct ProvenanceRecord {
  id @0 :Text;
  seq @1 :UInt64;
  hash @2 :Text;
  prevHash @3 :Text;
  json @4 :Text;   # the canonical record, whose hash is `hash`
}

interface ProvenanceLog {
  get @0 (id :Text) -> (record :ProvenanceRecord);
  list @1 (afterSeq :UInt64, limit :UInt32) -> (records :List(ProvenanceRecord));
  verify @2 () -> (ok :Bool, firstBad :Text, detail :Text);
  exportProv @3 (id :Text) -> (provJson :Text);
  # W3C PROV-JSON document of one result.
}

struct ClosureEntry {
  path @0 :Text;
  kind @1 :Text;       # `file`, `dir`, `symlink`
  hash @2 :Text;
  size @3 :UInt64;
  package @4 :Text;    # Debian package or Python distribution
  version @5 :Text;
  license @6 :Text;
}

interface PackageClosure {
  # The immutable description of exactly what a backend runs: the sandbox binds exactly these.
  id @0 () -> (id :Text);
  entries @1 () -> (entries :List(ClosureEntry));
}
