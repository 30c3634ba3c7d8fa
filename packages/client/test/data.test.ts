/**
 * The Data API without a reflector: handle ids and their identity, handles in snapshots and event
 * payloads, the blob envelope (wrong key, tampering, a blob served for another), `Data.hash`, the
 * buffer take-over of `store()`, debug=data output, and an offline session storing and fetching.
 */
import { Data, DataHandle, DecryptionError, Model, Session, UsageError } from "../src/index";
import { openData, sealData, sessionDataKey, shareableKey } from "../src/data/envelope";
import type { DataAccess } from "../src/data/data";
import { DebugLog } from "../src/kernel/debug-log";
import { registry } from "../src/kernel/registry";
import { PayloadCodec, openPayload } from "../src/session/payload";
import { deserialize, serialize } from "../src/serializer";

const SPACE = "S".repeat(43);
const BLOB = "B".repeat(22);

/** An in-memory reflector stand-in that records what it is given. */
function memoryAccess(persistMaster = new Uint8Array(32).fill(3)): DataAccess & { blobs: Map<string, Uint8Array> } {
  const blobs = new Map<string, Uint8Array>();
  return {
    blobs,
    space: SPACE,
    persistMaster,
    async put(blob, bytes) {
      blobs.set(`${SPACE}/${blob}`, bytes.slice());
    },
    async get(space, blob) {
      const bytes = blobs.get(`${space}/${blob}`);
      if (!bytes) throw new Error("missing");
      return bytes.slice();
    },
  };
}

describe("DataHandle ids", () => {
  test("toId and fromId round-trip, and equal ids give the same handle", () => {
    const handle = DataHandle.create(SPACE, BLOB, undefined);
    const id = Data.toId(handle);
    expect(id).toBe(`d1.${SPACE}.${BLOB}`);
    expect(Data.fromId(id)).toBe(handle);
    expect(handle.shareable).toBe(false);
    const shared = Data.fromId(`s1.${SPACE}.${BLOB}.${"k".repeat(43)}`);
    expect(shared.shareable).toBe(true);
    expect(String(shared)).not.toContain("k".repeat(43)); // printing a handle does not print its key
    expect(Object.isFrozen(handle)).toBe(true);
  });

  test("anything else is refused with a UsageError", () => {
    for (const bad of ["", "d1.x.y", `s1.${SPACE}.${BLOB}`, `d1.${SPACE}.${BLOB}.${"k".repeat(43)}`, `x1.${SPACE}.${BLOB}`, `d1.${SPACE}/x.${BLOB}`]) {
      expect(() => Data.fromId(bad)).toThrow(UsageError);
    }
    expect(() => Data.toId({ id: "d1" } as never)).toThrow(UsageError);
  });

  test("handles live in snapshots and in event data as their id, restored to the same handle", () => {
    const handle = DataHandle.create(SPACE, BLOB, undefined);
    const options = { classOf: (o: object) => registry.codecOf(o), classById: (id: string) => registry.codecById(id) };
    const bytes = serialize({ files: [{ handle, name: "a" }], again: handle }, options);
    const back = deserialize(bytes, options) as { files: { handle: DataHandle }[]; again: DataHandle };
    expect(back.files[0]!.handle).toBe(handle);
    expect(back.again).toBe(handle);

    const codec = new PayloadCodec(registry, () => undefined);
    const plain = codec.encodeEvent({ viewId: "v", joinSeq: 1, counter: 1 }, "shelf", "add", { handle });
    const event = codec.decodeEvent(openPayload(plain).events[0]!) as { data: { handle: DataHandle } };
    expect(event.data.handle).toBe(handle);
  });

  test("the library's handle class takes no part in code-version hashes", () => {
    expect(registry.classes().some(({ cls }) => cls === DataHandle)).toBe(false);
  });
});

describe("blob envelopes", () => {
  test("open only under the key, for the very blob they were sealed as", async () => {
    const key = await sessionDataKey(new Uint8Array(32).fill(1));
    const plain = new TextEncoder().encode("hello blob");
    const sealed = await sealData(key, SPACE, BLOB, plain);
    expect(new Uint8Array(await openData(key, SPACE, BLOB, sealed))).toEqual(plain);

    const otherKey = await sessionDataKey(new Uint8Array(32).fill(2));
    await expect(openData(otherKey, SPACE, BLOB, sealed)).rejects.toBeInstanceOf(DecryptionError);
    await expect(openData(key, SPACE, "C".repeat(22), sealed)).rejects.toThrow(/failed authentication/); // served for another blob
    const tampered = sealed.slice();
    tampered[20]! ^= 0x80;
    await expect(openData(key, SPACE, BLOB, tampered)).rejects.toBeInstanceOf(DecryptionError);
    await expect(openData(key, SPACE, BLOB, sealed.subarray(0, 10))).rejects.toThrow(/too short/);
    const versioned = sealed.slice();
    versioned[0] = 9;
    await expect(openData(key, SPACE, BLOB, versioned)).rejects.toThrow(/unknown envelope version 9/);
  });

  test("a shareable key is random per blob", async () => {
    const [a, b] = await Promise.all([shareableKey(), shareableKey()]);
    expect(a.text).toHaveLength(43);
    expect(a.text).not.toBe(b.text);
  });
});

describe("Data", () => {
  test("hash is SHA-256 of the bytes (or UTF-8 of a string), base64url or hex", async () => {
    expect(await Data.hash("abc")).toBe("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    expect(await Data.hash(new TextEncoder().encode("abc").buffer, "hex")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const view = new Uint8Array([0, 0x61, 0x62, 0x63, 0]).subarray(1, 4);
    expect(await Data.hash(view)).toBe(await Data.hash("abc"));
    await expect(Data.hash(42 as never)).rejects.toThrow(UsageError);
    const helper = (x: number): number => x + 1;
    expect(await Data.hash(helper)).toBe(await Data.hash(Function.prototype.toString.call(helper)));
  });

  test("store encrypts before anything leaves, takes the buffer over unless kept, and fetch decrypts; debug=data logs both", async () => {
    const access = memoryAccess();
    const lines: string[] = [];
    const log = jest.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    try {
      const data = new Data(async () => access, new DebugLog(new Set(["data"])));
      const bytes = new TextEncoder().encode("a secret note ".repeat(10));
      const kept = bytes.slice().buffer;
      const handle = await data.store(kept, { keep: true });
      expect(kept.byteLength).toBe(bytes.length);
      const taken = bytes.slice().buffer;
      await data.store(taken);
      expect(taken.byteLength).toBe(0);
      for (const stored of access.blobs.values()) expect(Buffer.from(stored).includes(Buffer.from("a secret note"))).toBe(false);
      expect(new Uint8Array(await data.fetch(handle))).toEqual(bytes);
      expect(new Uint8Array(await data.fetch(Data.toId(handle)))).toEqual(bytes);
      expect(lines.some((l) => /^\[Lockstep\] Data store: \d+B in \d+ ms \(id [A-Za-z0-9_-]{22}\)/.test(l))).toBe(true);
      expect(lines.some((l) => /^\[Lockstep\] Data fetch: 140B in \d+ ms/.test(l))).toBe(true);
    } finally {
      log.mockRestore();
    }
  });

  test("a session-keyed blob does not open under another password's key; a shareable one does", async () => {
    const access = memoryAccess(new Uint8Array(32).fill(1));
    const mine = new Data(async () => access, new DebugLog(new Set()));
    const theirs = new Data(async () => ({ ...access, persistMaster: new Uint8Array(32).fill(2) }), new DebugLog(new Set()));
    const secret = new TextEncoder().encode("only for the session");
    const handle = await mine.store(secret);
    await expect(theirs.fetch(handle)).rejects.toBeInstanceOf(DecryptionError);
    const shared = await mine.store(secret, { shareable: true });
    expect(new Uint8Array(await theirs.fetch(shared))).toEqual(secret);
    await expect(mine.fetch({} as never)).rejects.toThrow(UsageError);
  });
});

class Note extends Model {
  handles: DataHandle[] = [];
  override init(): void {
    this.subscribe("notes", "add", this.add);
  }
  add(handle: DataHandle): void {
    this.handles.push(handle);
  }
}
Note.register("Test.Data.Note");

test('an offline session (debug: "offline") stores and fetches in the page; the model keeps the handle', async () => {
  const session = await Session.join({ appId: "test.data", name: "offline", password: "pw", model: Note, debug: "offline" });
  try {
    const handle = await session.data.store("offline bytes");
    session.view.publish("notes", "add", handle);
    await new Promise<void>((resolve) => {
      const stop = session.afterEntry(() => {
        if ((session.model as Note).handles.length === 1) {
          stop();
          resolve();
        }
      });
    });
    expect((session.model as Note).handles[0]).toBe(handle);
    expect(new TextDecoder().decode(await session.data.fetch(handle))).toBe("offline bytes");
    expect(session.view.session.data).toBe(session.data);
  } finally {
    await session.leave();
  }
});
