/** PROTOCOL.md must agree with the code: type codes, close codes, limits, varuint table, worked examples. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CloseCode,
  DEFAULT_LIMITS,
  MessageType,
  PROTOCOL_VERSION,
  ProtocolError,
  Writer,
  decodeClientMessage,
  decodeEntries,
  decodeServerMessage,
  encodeRelay,
  encodeSend,
  encodeServerMessage,
} from "../src/index";
import { hex, toHex } from "@lockstep/test-support";

const spec = readFileSync(join(__dirname, "..", "PROTOCOL.md"), "utf8");

test("every frame type is specified under its code", () => {
  const headings = new Map<string, number>();
  for (const m of spec.matchAll(/^\*\*(\w+) `0x([0-9a-f]{2})`\*\*/gm)) headings.set(m[1]!, parseInt(m[2]!, 16));
  expect(Object.fromEntries(headings)).toEqual({ ...MessageType });
});

test("every close code is in the close-code table, and nothing else", () => {
  const rows = new Map<string, number>();
  for (const m of spec.matchAll(/^\| (4\d{3}) \| (\w+) \|/gm)) rows.set(m[2]!, Number(m[1]));
  expect(Object.fromEntries(rows)).toEqual({ ...CloseCode });
});

test("the limits table shows DEFAULT_LIMITS", () => {
  const documented = new Map<string, number>();
  // Numbers are grouped with spaces ("1 048 576"); a unit or note may follow.
  for (const m of spec.matchAll(/^\| `(\w+)` \| ([\d ]*\d)/gm)) documented.set(m[1]!, Number(m[2]!.replace(/ /g, "")));
  const tps = /^\| `minTps` … `maxTps` \| (\d+) … (\d+) \|/m.exec(spec);
  if (tps === null) throw new Error("PROTOCOL.md has no minTps … maxTps row");
  documented.set("minTps", Number(tps[1]));
  documented.set("maxTps", Number(tps[2]));
  expect(Object.fromEntries(documented)).toEqual({ ...DEFAULT_LIMITS });
});

test("the varuint examples are what the Writer produces", () => {
  const rows = [...spec.matchAll(/^\| (\d+|2\^\d+(?: − 1)?) \| `([0-9a-f ]+)` \|$/gm)];
  expect(rows.length).toBeGreaterThanOrEqual(8);
  for (const [, value, bytes] of rows) {
    const power = /^2\^(\d+)( − 1)?$/.exec(value!);
    const n = power === null ? Number(value) : 2 ** Number(power[1]) - (power[2] === undefined ? 0 : 1);
    const w = new Writer(1);
    w.varUint(n);
    expect(`${value}: ${toHex(w.finish())}`).toBe(`${value}: ${bytes}`);
  }
});

test("the worked examples are exact frames", () => {
  const blocks = [...spec.matchAll(/```\n([0-9a-f ]+)\n/g)].map((m) => m[1]!.trim());
  const hello = new TextEncoder().encode("hello");
  const relay = { type: MessageType.Relay, seq: 300, time: 1000, payload: hello } as const;
  const empty = new Uint8Array(0);
  const resumed = { type: MessageType.Sync, sessionId: "s", viewId: "v", time: 1000, seq: 300, snapshot: empty, persisted: empty, auth: empty, resumed: true, entries: [relay] } as const;
  expect(blocks).toEqual([toHex(encodeSend(hello)), toHex(encodeRelay(300, 1000, hello)), toHex(encodeServerMessage(resumed))]);
  expect(decodeClientMessage(hex(blocks[0]!))).toEqual({ type: MessageType.Send, payload: hello });
  expect(decodeServerMessage(hex(blocks[1]!))).toEqual(relay);
  expect(decodeServerMessage(hex(blocks[2]!))).toEqual(resumed);
});

test("the header table and the title show PROTOCOL_VERSION", () => {
  const version = `0x${PROTOCOL_VERSION.toString(16).padStart(2, "0")}`;
  expect(spec).toMatch(new RegExp(`^\\| 0 \\| 1 \\| version \\| \`${version}\` \\|$`, "m"));
  expect(spec.split("\n")[0]).toBe(`# Lockstep wire protocol — version ${PROTOCOL_VERSION}`);
  expect(spec).toMatch(new RegExp(`^\\*\\*Version ${PROTOCOL_VERSION}\\*\\* \\(this document\\)`, "m"));
});

/** The field names of the table right after a frame's heading, in order. */
function tableFields(frame: string): string[] {
  const at = spec.search(new RegExp(`^\\*\\*${frame} \`0x`, "m"));
  if (at < 0) throw new Error(`PROTOCOL.md has no ${frame} heading`);
  const table = /\| field \| type \| meaning \|\n\|---\|---\|---\|\n((?:\|.*\|\n)+)/.exec(spec.slice(at));
  if (table === null) throw new Error(`PROTOCOL.md has no field table under ${frame}`);
  return [...table[1]!.matchAll(/^\| (\w+) \|/gm)].map((m) => m[1]!);
}

test("the Join, Sync and Divergence tables list the version 2 fields in wire order", () => {
  expect(tableFields("Join")).toEqual(["sessionId", "persistentId", "viewId", "tps", "auth", "viewData", "resumeSeq"]);
  expect(tableFields("Sync")).toEqual(["sessionId", "viewId", "time", "seq", "snapshot", "persisted", "auth", "flags", "count", "entries"]);
  expect(tableFields("Divergence")).toEqual(["seq", "hash", "split"]);
});

test("the Sync entry types listed are exactly the types an entry list decodes", () => {
  const row = /^\| entries \| count × entry \| each: `u8` type \(([^)]*)\)/m.exec(spec);
  if (row === null) throw new Error("PROTOCOL.md has no Sync entries row");
  const documented = [...row[1]!.matchAll(/`0x([0-9a-f]{2})`/g)].map((m) => parseInt(m[1]!, 16));
  const decodable: number[] = [];
  for (let type = 0; type < 256; type++) {
    try {
      decodeEntries(Uint8Array.of(1, type, 1, 0, 0));
      decodable.push(type);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // A known entry type may still fail on these bytes (e.g. a ViewExit needs a string); it must not be "unknown".
      if (!error.message.startsWith("unknown stream entry type")) decodable.push(type);
    }
  }
  expect(documented).toEqual(decodable);
  expect(documented).toEqual([MessageType.Relay, MessageType.ViewJoin, MessageType.ViewExit, MessageType.SnapshotRequest, MessageType.Persisted, MessageType.PersistData]);
});

test("the keys table names every HKDF purpose, snapshots included", () => {
  const infos = [...spec.matchAll(/^\| `(lockstep\/v1\/[a-z-]+\/<sessionId>)` \|/gm)].map((m) => m[1]);
  expect(infos).toEqual([
    "lockstep/v1/message/<sessionId>",
    "lockstep/v1/view-data/<sessionId>",
    "lockstep/v1/check/<sessionId>",
    "lockstep/v1/access/<sessionId>",
    "lockstep/v1/snapshot/<sessionId>",
    "lockstep/v1/snapshot-hash/<sessionId>",
  ]);
});
