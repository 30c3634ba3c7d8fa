import { writeFileSync } from "node:fs";
import { createFsStore, createPostgresStore, PersistStore, type BlobStore } from "./storage/index";

/** Where the commands write: lines to stdout and stderr. */
export interface PersistCliIo {
  out(line: string): void;
  err(line: string): void;
}

/** The `lockstep-reflector persist …` help text. */
export const PERSIST_USAGE = `Usage: lockstep-reflector persist <command> [--data-dir D | --postgres URL]

Inspects and repairs persisted data (what persistSession() and persist() fields save), stored
under a slot: the session's persistentId, or an app-wide slot. Data stays encrypted: these
commands move and list opaque bytes. Run them against the same storage as the reflector; a
--data-dir is locked by the reflector using it, so stop the reflector first (PostgreSQL needs not).

Commands:
  slots                          list every slot that holds data
  list <slot>                    list the versions kept of a slot (newest last)
  export <slot> [--version N] [--out FILE]
                                 write a version (default: the newest) as JSON with its
                                 metadata and base64 data (default: to stdout)
  rollback <slot> --to N         make version N the newest again, as a copy (nothing is
                                 overwritten); the next new session of the slot starts from it

Options:
  --data-dir D      filesystem storage (default ./lockstep-data)
  --postgres URL    PostgreSQL storage

Without either, LOCKSTEP_DATA_DIR or LOCKSTEP_POSTGRES name the storage, as for the reflector.`;

interface Parsed {
  readonly command: string;
  readonly slot: string | undefined;
  readonly version: number | undefined;
  readonly to: number | undefined;
  readonly out: string | undefined;
  readonly dataDir: string;
  readonly postgres: string | undefined;
}

function parse(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Parsed | string {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!["--data-dir", "--postgres", "--version", "--to", "--out"].includes(name)) return `unknown option ${JSON.stringify(arg)}`;
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "") return `${name} needs a value`;
    flags.set(name, value);
  }
  const [command, slot, ...rest] = positional;
  if (command === undefined) return "missing command";
  if (rest.length > 0) return `unexpected argument ${JSON.stringify(rest[0])}`;
  const int = (name: string): number | undefined | string => {
    const v = flags.get(name);
    if (v === undefined) return undefined;
    return /^[1-9]\d{0,15}$/.test(v) ? Number(v) : `${name} must be a positive integer, got ${JSON.stringify(v)}`;
  };
  const version = int("--version");
  const to = int("--to");
  if (typeof version === "string") return version;
  if (typeof to === "string") return to;
  if (flags.has("--postgres") && flags.has("--data-dir")) return "use either --data-dir or --postgres, not both";
  // The reflector service's environment names its storage; a flag here overrides it (both flags are one choice).
  const fromEnv = !flags.has("--postgres") && !flags.has("--data-dir");
  if (fromEnv && env["LOCKSTEP_POSTGRES"] && env["LOCKSTEP_DATA_DIR"]) return "LOCKSTEP_POSTGRES and LOCKSTEP_DATA_DIR both name the storage: unset one, or pass --data-dir or --postgres";
  const postgres = flags.get("--postgres") ?? (fromEnv ? env["LOCKSTEP_POSTGRES"] || undefined : undefined);
  const dataDir = flags.get("--data-dir") ?? (fromEnv ? env["LOCKSTEP_DATA_DIR"] || undefined : undefined) ?? "lockstep-data";
  return { command, slot, version, to, out: flags.get("--out"), dataDir, postgres };
}

/**
 * Runs `lockstep-reflector persist <command>`: lists, exports or rolls back persisted data in the
 * reflector's storage (the flags', else `LOCKSTEP_POSTGRES` or `LOCKSTEP_DATA_DIR` of `io.env`).
 * Resolves with the process exit code (0 ok, 1 failed, 2 bad arguments).
 */
export async function runPersistCommand(argv: readonly string[], io: PersistCliIo & { readonly env?: Readonly<Record<string, string | undefined>> }): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.out(PERSIST_USAGE);
    return 0;
  }
  const parsed = parse(argv, io.env ?? {});
  if (typeof parsed === "string") {
    io.err(`lockstep-reflector persist: ${parsed}\n\n${PERSIST_USAGE}`);
    return 2;
  }
  const needsSlot = parsed.command !== "slots";
  if (!["slots", "list", "export", "rollback"].includes(parsed.command)) {
    io.err(`lockstep-reflector persist: unknown command ${JSON.stringify(parsed.command)}\n\n${PERSIST_USAGE}`);
    return 2;
  }
  if (needsSlot && parsed.slot === undefined) {
    io.err(`lockstep-reflector persist ${parsed.command}: name the slot (a persistentId; \`persist slots\` lists them)`);
    return 2;
  }
  if (parsed.command === "rollback" && parsed.to === undefined) {
    io.err("lockstep-reflector persist rollback: say which version with --to N (`persist list <slot>` shows them)");
    return 2;
  }
  let blobs: BlobStore | undefined;
  try {
    blobs = parsed.postgres !== undefined ? await createPostgresStore({ connectionString: parsed.postgres }) : await createFsStore(parsed.dataDir);
    const store = new PersistStore(blobs);
    const slot = parsed.slot!;
    switch (parsed.command) {
      case "slots":
        for (const s of await store.slots()) io.out(s);
        return 0;
      case "list": {
        const versions = await store.versions(slot);
        if (versions.length === 0) {
          io.err(`slot ${slot} holds no data`);
          return 1;
        }
        io.out("version  stored                    size      session                                      seq");
        for (const v of versions) {
          io.out(
            `${String(v.version).padEnd(8)} ${new Date(v.createdAt).toISOString().padEnd(25)} ${`${v.size}B`.padEnd(9)} ${(v.sessionId || "(rollback)").padEnd(44)} ${v.seq}`,
          );
        }
        return 0;
      }
      case "export": {
        const record = parsed.version !== undefined ? await store.get(slot, parsed.version) : await store.latest(slot);
        if (record === undefined) {
          io.err(parsed.version !== undefined ? `slot ${slot} has no version ${parsed.version}` : `slot ${slot} holds no data`);
          return 1;
        }
        const json = JSON.stringify(
          {
            slot,
            version: record.version,
            createdAt: new Date(record.createdAt).toISOString(),
            sessionId: record.sessionId,
            seq: record.seq,
            size: record.size,
            hash: Buffer.from(record.hash).toString("base64"),
            data: Buffer.from(record.bytes).toString("base64"),
          },
          null,
          2,
        );
        if (parsed.out !== undefined) {
          writeFileSync(parsed.out, json + "\n");
          io.out(`exported version ${record.version} of ${slot} to ${parsed.out}`);
        } else {
          io.out(json);
        }
        return 0;
      }
      default: {
        const version = await store.rollback(slot, parsed.to!);
        io.out(`version ${parsed.to} of ${slot} is now the newest (stored as version ${version}); new sessions of this slot start from it`);
        return 0;
      }
    }
  } catch (error) {
    io.err(`lockstep-reflector persist ${parsed.command}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await blobs?.close();
  }
}
