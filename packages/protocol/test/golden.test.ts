/**
 * Golden frames. Each hex string was worked out by hand from the layouts in PROTOCOL.md; encoding
 * must produce exactly these bytes and these bytes must keep decoding to the same message.
 * Never edit a fixture to make a test pass: a changed frame is a protocol version change.
 * Version 2 (PROTOCOL.md §12) changed the version byte of every frame and the layouts of Join,
 * Sync and Divergence; the version 1 frames kept below must be refused.
 */
import {
  CloseCode,
  MessageType,
  decodeClientMessage,
  decodeEntries,
  decodeServerMessage,
  encodeClientMessage,
  encodeEntries,
  encodeRelay,
  encodeSend,
  encodeServerMessage,
  encodeTick,
  type ClientMessage,
  type ServerMessage,
  type StreamEntry,
} from "../src/index";
import { hex, normHex, toHex } from "@lockstep/test-support";
import { expectProtocolError } from "./helpers";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** `"00 01 02 … (n-1)"`: the hex of bytes 0 … n − 1 (n ≤ 256), for hash fixtures. */
const seqBytes = (n: number): string => Array.from({ length: n }, (_, i) => i.toString(16).padStart(2, "0")).join(" ");

const clientFrames: ReadonlyArray<readonly [string, string, ClientMessage]> = [
  [
    "Join, empty auth, viewData '{}'",
    // ver type | len "s1" | len "p1" | len "v1" | tps=20 | auth len 0 | viewData len 2 "{}" | resumeSeq 0
    "02 01  02 73 31  02 70 31  02 76 31  14  00  02 7b 7d  00",
    { type: MessageType.Join, sessionId: "s1", persistentId: "p1", viewId: "v1", tps: 20, auth: new Uint8Array(0), viewData: ascii("{}"), resumeSeq: 0 },
  ],
  [
    "Join with auth, tps 60",
    "02 01  04 41 41 41 41  01 42  03 63 2d 5f  3c  04 de ad be ef  00  00",
    { type: MessageType.Join, sessionId: "AAAA", persistentId: "B", viewId: "c-_", tps: 60, auth: Uint8Array.of(0xde, 0xad, 0xbe, 0xef), viewData: new Uint8Array(0), resumeSeq: 0 },
  ],
  [
    "Join resuming view 'v1' after seq 300",
    // ver type | "s1" | "p1" | "v1" | tps=20 | auth len 0 | viewData len 0 | resumeSeq 300
    "02 01  02 73 31  02 70 31  02 76 31  14  00  00  ac 02",
    { type: MessageType.Join, sessionId: "s1", persistentId: "p1", viewId: "v1", tps: 20, auth: new Uint8Array(0), viewData: new Uint8Array(0), resumeSeq: 300 },
  ],
  [
    "Join resuming after seq 2^53-1 (the largest resumeSeq)",
    "02 01  01 73  01 70  01 76  01  00  00  ff ff ff ff ff ff ff 0f",
    { type: MessageType.Join, sessionId: "s", persistentId: "p", viewId: "v", tps: 1, auth: new Uint8Array(0), viewData: new Uint8Array(0), resumeSeq: 2 ** 53 - 1 },
  ],
  ["Send 'hello' (PROTOCOL.md example)", "02 02  05  68 65 6c 6c 6f", { type: MessageType.Send, payload: ascii("hello") }],
  ["Send, empty payload", "02 02  00", { type: MessageType.Send, payload: new Uint8Array(0) }],
  ["Send, 128 zero bytes (2-byte length)", `02 02  80 01  ${"00 ".repeat(128)}`, { type: MessageType.Send, payload: new Uint8Array(128) }],
  ["Leave", "02 03", { type: MessageType.Leave }],
  ["Ping 0", "02 04  00", { type: MessageType.Ping, id: 0 }],
  ["Ping 300", "02 04  ac 02", { type: MessageType.Ping, id: 300 }],
  ["Ping 2^53-1", "02 04  ff ff ff ff ff ff ff 0f", { type: MessageType.Ping, id: 2 ** 53 - 1 }],
  [
    "SnapshotVote seq 300, 4-byte hash",
    // ver type | seq 300 | hash len 4 de ad be ef
    "02 05  ac 02  04 de ad be ef",
    { type: MessageType.SnapshotVote, seq: 300, hash: Uint8Array.of(0xde, 0xad, 0xbe, 0xef) },
  ],
  [
    "SnapshotVote with a 32-byte hash (HMAC-SHA-256 size)",
    `02 05  01  20 ${seqBytes(32)}`,
    { type: MessageType.SnapshotVote, seq: 1, hash: Uint8Array.from({ length: 32 }, (_, i) => i) },
  ],
  [
    "SnapshotVote with a 64-byte hash (the limit)",
    `02 05  80 01  40 ${"aa ".repeat(64)}`,
    { type: MessageType.SnapshotVote, seq: 128, hash: new Uint8Array(64).fill(0xaa) },
  ],
  [
    "SnapshotChunk seq 300, total 5, offset 2, 3 bytes",
    // ver type | seq 300 | hash len 2 ab cd | total 5 | offset 2 | data len 3 01 02 03
    "02 09  ac 02  02 ab cd  05  02  03 01 02 03",
    { type: MessageType.SnapshotChunk, seq: 300, hash: Uint8Array.of(0xab, 0xcd), total: 5, offset: 2, data: Uint8Array.of(1, 2, 3) },
  ],
  [
    "PersistChunk slot 'sl', 1-byte token and hash, size 9, the whole 2-byte envelope",
    // ver type | slot "sl" | token len 1 aa | seq 7 | hash len 1 bb | size 9 | total 2 | offset 0 | data len 2 01 02
    "02 0a  02 73 6c  01 aa  07  01 bb  09  02  00  02 01 02",
    { type: MessageType.PersistChunk, slot: "sl", token: Uint8Array.of(0xaa), seq: 7, hash: Uint8Array.of(0xbb), size: 9, total: 2, offset: 0, data: Uint8Array.of(1, 2) },
  ],
  [
    "SnapshotUpload seq 300",
    // ver type | seq 300 | hash len 2 ab cd | snapshot len 3 01 02 03
    "02 06  ac 02  02 ab cd  03 01 02 03",
    { type: MessageType.SnapshotUpload, seq: 300, hash: Uint8Array.of(0xab, 0xcd), snapshot: Uint8Array.of(1, 2, 3) },
  ],
  [
    "SnapshotUpload, 128-byte snapshot (2-byte length)",
    `02 06  05  01 ee  80 01  ${"00 ".repeat(128)}`,
    { type: MessageType.SnapshotUpload, seq: 5, hash: Uint8Array.of(0xee), snapshot: new Uint8Array(128) },
  ],
  [
    "PersistUpload slot 'P' seq 300",
    // ver type | slot "P" | token 2: 0a 0b | seq 300 | hash 1: ee | size 1000 | blob 3: 01 02 03
    "02 07  01 50  02 0a 0b  ac 02  01 ee  e8 07  03 01 02 03",
    { type: MessageType.PersistUpload, slot: "P", token: Uint8Array.of(10, 11), seq: 300, hash: Uint8Array.of(0xee), size: 1000, blob: Uint8Array.of(1, 2, 3) },
  ],
  [
    "PersistLoad slot 'k-1' request 7",
    "02 08  03 6b 2d 31  01 0c  07",
    { type: MessageType.PersistLoad, slot: "k-1", token: Uint8Array.of(12), requestSeq: 7 },
  ],
];

const serverFrames: ReadonlyArray<readonly [string, string, ServerMessage]> = [
  [
    "Sync with one entry of each kind",
    // ver type | "s1" | "v2" | time 1000 | seq 3 | snapshot 0 | persisted 2: 01 02 | auth 0 | flags 0 | 3 entries
    // | Relay seq 1 time 0 "hi" | ViewJoin seq 2 time 50 "v1" viewData 0 | ViewExit seq 3 time 1000 "v1"
    "02 41  02 73 31  02 76 32  e8 07  03  00  02 01 02  00  00  03" +
      "  42 01 00 02 68 69  43 02 32 02 76 31 00  44 03 e8 07 02 76 31",
    {
      type: MessageType.Sync,
      sessionId: "s1",
      viewId: "v2",
      time: 1000,
      seq: 3,
      snapshot: new Uint8Array(0),
      persisted: Uint8Array.of(1, 2),
      auth: new Uint8Array(0),
      resumed: false,
      entries: [
        { type: MessageType.Relay, seq: 1, time: 0, payload: ascii("hi") },
        { type: MessageType.ViewJoin, seq: 2, time: 50, viewId: "v1", viewData: new Uint8Array(0) },
        { type: MessageType.ViewExit, seq: 3, time: 1000, viewId: "v1" },
      ],
    },
  ],
  [
    "Sync of a new session",
    "02 41  01 73  01 76  00  00  00  00  00  00  00",
    {
      type: MessageType.Sync,
      sessionId: "s",
      viewId: "v",
      time: 0,
      seq: 0,
      snapshot: new Uint8Array(0),
      persisted: new Uint8Array(0),
      auth: new Uint8Array(0),
      resumed: false,
      entries: [],
    },
  ],
  [
    "Sync with snapshot and auth",
    "02 41  01 73  01 76  7f  80 01  03 aa bb cc  00  01 05  00  00",
    {
      type: MessageType.Sync,
      sessionId: "s",
      viewId: "v",
      time: 127,
      seq: 128,
      snapshot: Uint8Array.of(0xaa, 0xbb, 0xcc),
      persisted: new Uint8Array(0),
      auth: Uint8Array.of(5),
      resumed: false,
      entries: [],
    },
  ],
  ["Relay seq 300 time 1000 'hello' (PROTOCOL.md example)", "02 42  ac 02  e8 07  05 68 65 6c 6c 6f", { type: MessageType.Relay, seq: 300, time: 1000, payload: ascii("hello") }],
  ["Relay seq 128 time 16384", "02 42  80 01  80 80 01  01 ff", { type: MessageType.Relay, seq: 128, time: 16384, payload: Uint8Array.of(0xff) }],
  ["ViewJoin", "02 43  02  32  02 76 31  02 7b 7d", { type: MessageType.ViewJoin, seq: 2, time: 50, viewId: "v1", viewData: ascii("{}") }],
  ["ViewExit with an astral viewId", "02 44  03  e8 07  04 f0 9f 98 80", { type: MessageType.ViewExit, seq: 3, time: 1000, viewId: "😀" }],
  ["Tick 127", "02 45  7f", { type: MessageType.Tick, time: 127 }],
  ["Tick 2^31", "02 45  80 80 80 80 08", { type: MessageType.Tick, time: 2 ** 31 }],
  ["Tick 2^32", "02 45  80 80 80 80 10", { type: MessageType.Tick, time: 2 ** 32 }],
  ["Tick 2^53-1", "02 45  ff ff ff ff ff ff ff 0f", { type: MessageType.Tick, time: 2 ** 53 - 1 }],
  ["Pong", "02 46  07  c0 c4 07", { type: MessageType.Pong, id: 7, time: 123456 }],
  ["Error TooLarge", "02 47  a4 1f  07 74 6f 6f 20 62 69 67", { type: MessageType.Error, code: CloseCode.TooLarge, message: "too big" }],
  ["SnapshotRequest seq 300 time 1000", "02 48  ac 02  e8 07", { type: MessageType.SnapshotRequest, seq: 300, time: 1000 }],
  ["SnapshotRequest seq 1 time 0", "02 48  01  00", { type: MessageType.SnapshotRequest, seq: 1, time: 0 }],
  ["UploadRequest seq 300", "02 49  ac 02", { type: MessageType.UploadRequest, seq: 300 }],
  ["UploadRequest seq 2^53-1", "02 49  ff ff ff ff ff ff ff 0f", { type: MessageType.UploadRequest, seq: 2 ** 53 - 1 }],
  [
    "Divergence seq 300, 4-byte hash",
    // ver type | seq 300 | hash len 4 de ad be ef | split 0
    "02 4a  ac 02  04 de ad be ef  00",
    { type: MessageType.Divergence, seq: 300, hash: Uint8Array.of(0xde, 0xad, 0xbe, 0xef), split: false },
  ],
  [
    "Divergence with a 32-byte hash",
    `02 4a  80 80 01  20 ${seqBytes(32)}  00`,
    { type: MessageType.Divergence, seq: 16384, hash: Uint8Array.from({ length: 32 }, (_, i) => i), split: false },
  ],
  [
    "Divergence seq 300, split: a tie, no majority hash",
    // ver type | seq 300 | hash len 0 | split 1
    "02 4a  ac 02  00  01",
    { type: MessageType.Divergence, seq: 300, hash: new Uint8Array(0), split: true },
  ],
  [
    "Sync after a snapshot: entries start after the snapshot's seq and include a SnapshotRequest",
    // ver type | "s" | "v" | time 1000 | seq 302 | snapshot 2: aa bb | persisted 0 | auth 0 | flags 0 | 2 entries
    // | Relay seq 301 time 990 "hi" | SnapshotRequest seq 302 time 1000
    "02 41  01 73  01 76  e8 07  ae 02  02 aa bb  00  00  00  02" +
      "  42 ad 02 de 07 02 68 69  48 ae 02 e8 07",
    {
      type: MessageType.Sync,
      sessionId: "s",
      viewId: "v",
      time: 1000,
      seq: 302,
      snapshot: Uint8Array.of(0xaa, 0xbb),
      persisted: new Uint8Array(0),
      auth: new Uint8Array(0),
      resumed: false,
      entries: [
        { type: MessageType.Relay, seq: 301, time: 990, payload: ascii("hi") },
        { type: MessageType.SnapshotRequest, seq: 302, time: 1000 },
      ],
    },
  ],
  [
    "resumed Sync (PROTOCOL.md example): the entries after the Join's resumeSeq 299, no snapshot",
    // ver type | "s" | "v" | time 1000 | seq 300 | snapshot 0 | persisted 0 | auth 0 | flags 01 resumed | 1 entry
    // | Relay seq 300 time 1000 "hello"
    "02 41  01 73  01 76  e8 07  ac 02  00  00  00  01  01  42 ac 02 e8 07 05 68 65 6c 6c 6f",
    {
      type: MessageType.Sync,
      sessionId: "s",
      viewId: "v",
      time: 1000,
      seq: 300,
      snapshot: new Uint8Array(0),
      persisted: new Uint8Array(0),
      auth: new Uint8Array(0),
      resumed: true,
      entries: [{ type: MessageType.Relay, seq: 300, time: 1000, payload: ascii("hello") }],
    },
  ],
  [
    "resumed Sync with no entries (nothing happened after resumeSeq), with the check envelope",
    "02 41  01 73  01 76  e8 07  ac 02  00  00  01 05  01  00",
    {
      type: MessageType.Sync,
      sessionId: "s",
      viewId: "v",
      time: 1000,
      seq: 300,
      snapshot: new Uint8Array(0),
      persisted: new Uint8Array(0),
      auth: Uint8Array.of(5),
      resumed: true,
      entries: [],
    },
  ],
  [
    "PersistAck Stored version 3",
    // ver type | slot "P" | seq 300 | outcome 0 | version 3 | message ""
    "02 4b  01 50  ac 02  00  03  00",
    { type: MessageType.PersistAck, slot: "P", seq: 300, outcome: 0, version: 3, message: "" },
  ],
  [
    "PersistAck Denied",
    "02 4b  01 50  05  03  00  02 6e 6f",
    { type: MessageType.PersistAck, slot: "P", seq: 5, outcome: 3, version: 0, message: "no" },
  ],
  [
    "Persisted seq 301 time 1000: slot 'P' up to 300, 1000 bytes",
    "02 4c  ad 02  e8 07  01 50  ac 02  e8 07  02 ab cd",
    { type: MessageType.Persisted, seq: 301, time: 1000, slot: "P", upTo: 300, size: 1000, hash: Uint8Array.of(0xab, 0xcd) },
  ],
  [
    "PersistData seq 9 time 50: slot 'k' for request 7, 2-byte blob",
    "02 4d  09  32  01 6b  07  02 aa bb",
    { type: MessageType.PersistData, seq: 9, time: 50, slot: "k", requestSeq: 7, blob: Uint8Array.of(0xaa, 0xbb) },
  ],
  ["Error with 2-, 3- and 4-byte UTF-8", "02 47  a1 1f  09 c3 a9 e2 82 ac f0 9f 98 80", { type: MessageType.Error, code: CloseCode.VersionMismatch, message: "é€😀" }],
];

/**
 * Version 1 frames, byte for byte as version 1 encoded them. Version 2 reads none of them: they are
 * refused with VersionMismatch, like frames of any other version, whatever their layout.
 */
const version1Frames: ReadonlyArray<readonly [string, "client" | "server", string]> = [
  ["Join", "client", "01 01  02 73 31  02 70 31  02 76 31  14  00  02 7b 7d"],
  ["Send 'hello'", "client", "01 02  05  68 65 6c 6c 6f"],
  ["Leave", "client", "01 03"],
  ["SnapshotVote", "client", "01 05  ac 02  04 de ad be ef"],
  ["Sync of a new session", "server", "01 41  01 73  01 76  00  00  00  00  00  00"],
  ["Relay", "server", "01 42  ac 02  e8 07  05 68 65 6c 6c 6f"],
  ["Divergence", "server", "01 4a  ac 02  04 de ad be ef"],
  ["Tick", "server", "01 45  7f"],
];

describe("version 1 frames", () => {
  test.each(version1Frames)("v1 %s is refused with VersionMismatch", (_name, direction, fixture) => {
    const decode = direction === "client" ? (f: Uint8Array) => decodeClientMessage(f) : (f: Uint8Array) => decodeServerMessage(f);
    const error = expectProtocolError(() => decode(hex(fixture)), CloseCode.VersionMismatch);
    expect(error.message).toBe("protocol version 1 is not supported (this peer speaks 2)");
  });

  test("every version 2 fixture with a version 1 byte is refused with VersionMismatch", () => {
    for (const [, fixture] of clientFrames) expectProtocolError(() => decodeClientMessage(Uint8Array.from([1, ...hex(fixture).subarray(1)])), CloseCode.VersionMismatch);
    for (const [, fixture] of serverFrames) expectProtocolError(() => decodeServerMessage(Uint8Array.from([1, ...hex(fixture).subarray(1)])), CloseCode.VersionMismatch);
  });
});

describe("client frames", () => {
  test.each(clientFrames)("%s encodes to the fixture", (_name, fixture, msg) => {
    expect(toHex(encodeClientMessage(msg))).toBe(normHex(fixture));
  });

  test.each(clientFrames)("%s decodes from the fixture", (_name, fixture, msg) => {
    expect(decodeClientMessage(hex(fixture))).toEqual(msg);
  });
});

describe("server frames", () => {
  test.each(serverFrames)("%s encodes to the fixture", (_name, fixture, msg) => {
    expect(toHex(encodeServerMessage(msg))).toBe(normHex(fixture));
  });

  test.each(serverFrames)("%s decodes from the fixture", (_name, fixture, msg) => {
    expect(decodeServerMessage(hex(fixture))).toEqual(msg);
  });
});

const entryLists: ReadonlyArray<readonly [string, string, readonly StreamEntry[]]> = [
  ["no entries", "00", []],
  ["one SnapshotRequest", "01  48 01 00", [{ type: MessageType.SnapshotRequest, seq: 1, time: 0 }]],
  [
    "one entry of each kind",
    // count 4 | ViewJoin seq 1 time 0 "v1" viewData 0 | Relay seq 2 time 50 "hi"
    // | SnapshotRequest seq 3 time 50 | ViewExit seq 300 time 1000 "v1"
    "04  43 01 00 02 76 31 00  42 02 32 02 68 69  48 03 32  44 ac 02 e8 07 02 76 31",
    [
      { type: MessageType.ViewJoin, seq: 1, time: 0, viewId: "v1", viewData: new Uint8Array(0) },
      { type: MessageType.Relay, seq: 2, time: 50, payload: ascii("hi") },
      { type: MessageType.SnapshotRequest, seq: 3, time: 50 },
      { type: MessageType.ViewExit, seq: 300, time: 1000, viewId: "v1" },
    ],
  ],
];

describe("entry lists (encodeEntries)", () => {
  test.each(entryLists)("%s encodes to the fixture", (_name, fixture, entries) => {
    expect(toHex(encodeEntries(entries))).toBe(normHex(fixture));
  });

  test.each(entryLists)("%s decodes from the fixture", (_name, fixture, entries) => {
    expect(decodeEntries(hex(fixture))).toEqual(entries);
  });

  test("a stored list is byte for byte the tail of a Sync frame", () => {
    for (const [, fixture, msg] of serverFrames) {
      if (msg.type !== MessageType.Sync) continue;
      const list = encodeEntries(msg.entries);
      expect(toHex(hex(fixture).subarray(-list.length))).toBe(toHex(list));
    }
  });
});

test("the hot-path encoders produce the same golden bytes", () => {
  expect(toHex(encodeSend(ascii("hello")))).toBe(normHex("02 02 05 68 65 6c 6c 6f"));
  expect(toHex(encodeRelay(300, 1000, ascii("hello")))).toBe(normHex("02 42 ac 02 e8 07 05 68 65 6c 6c 6f"));
  expect(toHex(encodeTick(2 ** 32))).toBe(normHex("02 45 80 80 80 80 10"));
});
