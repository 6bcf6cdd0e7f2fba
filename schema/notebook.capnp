@0xce15877f5cff7ed7;
# Interface only, for now: no backend implements it. Notebook execution is authority-bearing:
# opening a notebook to read it does not execute it, and running a cell uses only the kernels and
# capabilities the session was granted.

interface NotebookSession {
  open @0 (documentId :Text) -> (cells :List(Cell));
  # Read only; executes nothing.
  execute @1 (cellIndex :UInt32) -> (outputArtifact :Text, envelopeJson :Text);
  # Runs one cell in the session's granted kernel, as a job with a provenance record.
}

struct Cell {
  kind @0 :Text;     # `code` or `markdown`
  source @1 :Text;
  outputs @2 :List(Text);  # artifact ids
}
