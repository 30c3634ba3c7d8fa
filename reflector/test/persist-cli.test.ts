import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runPersistCommand } from "../src/persist-cli";
import { PersistStore, createFsStore } from "../src/storage";

let dir: string;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "lockstep-persist-cli-"));
  const blobs = await createFsStore(dir);
  const store = new PersistStore(blobs);
  for (let i = 1; i <= 3; i++) await store.append("SLOT", { sessionId: `sess${i}`, seq: i * 10, size: 100 * i, hash: Uint8Array.of(i), bytes: Uint8Array.of(i, i) });
  await blobs.close();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function run(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPersistCommand([...argv, "--data-dir", dir], { out: (l) => void out.push(l), err: (l) => void err.push(l) });
  return { code, out, err };
}

test("slots and list show what is kept", async () => {
  expect((await run("slots")).out).toEqual(["SLOT"]);
  const list = await run("list", "SLOT");
  expect(list.code).toBe(0);
  expect(list.out).toHaveLength(4);
  expect(list.out[3]).toMatch(/^3\s+\d{4}-\d\d-\d\dT.*300B\s+sess3\s+30$/);
  expect((await run("list", "NONE")).code).toBe(1);
});

test("export writes a version with its metadata; rollback makes an old version the newest as a copy", async () => {
  const file = join(dir, "v2.json");
  expect((await run("export", "SLOT", "--version", "2", "--out", file)).code).toBe(0);
  expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ slot: "SLOT", version: 2, sessionId: "sess2", seq: 20, size: 200, data: Buffer.from([2, 2]).toString("base64") });
  const rolled = await run("rollback", "SLOT", "--to", "1");
  expect(rolled.out[0]).toMatch(/version 1 of SLOT is now the newest \(stored as version 4\)/);
  const latest = JSON.parse((await run("export", "SLOT")).out.join("\n"));
  expect(latest).toMatchObject({ version: 4, seq: 10, data: Buffer.from([1, 1]).toString("base64") });
});

test("bad arguments exit 2 with the usage; a missing version exits 1", async () => {
  expect((await run("rollback", "SLOT")).code).toBe(2);
  expect((await run("frobnicate")).code).toBe(2);
  expect((await run("list", "SLOT", "--version", "x")).code).toBe(2);
  const missing = await run("rollback", "SLOT", "--to", "9");
  expect(missing.code).toBe(1);
  expect(missing.err[0]).toMatch(/has no version 9/);
});
