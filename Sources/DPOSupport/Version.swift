/// dpo-dist's version: `dpo-dist --version` prints it, and this is the only place it is written.
public let dpoDistVersion = "0.9.0"
