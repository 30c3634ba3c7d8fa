/**
 * The Data API endpoint on a real reflector port, driven with raw HTTP: admission by access token,
 * the per-blob cap enforced while the body streams in, quotas, immutability, CORS.
 */
import { createHash } from "node:crypto";
import { request } from "node:http";
import { silentLogger, startReflector, type Reflector } from "../src/index";
import { SessionStore, createMemoryStore } from "../src/storage";

const tokenA = new Uint8Array(32).fill(1);
const tokenB = new Uint8Array(32).fill(2);
const A = "sessionAAAAAAAAAAAAAAAAA";
const B = "sessionBBBBBBBBBBBBBBBBB";
const blob = (n: number): string => `blob${String(n).padStart(16, "0")}`;
const auth = (id: string, token: Uint8Array): string => `Bearer ${id}.${Buffer.from(token).toString("base64url")}`;

let reflector: Reflector;
let base: string;

beforeEach(async () => {
  const blobs = createMemoryStore();
  const sessions = new SessionStore(blobs);
  for (const [id, token] of [[A, tokenA], [B, tokenB]] as const) {
    const verifier = new Uint8Array(createHash("sha256").update(token).digest());
    await sessions.create({ sessionId: id, persistentId: "p", tps: 20, verifier, check: new Uint8Array(4), createdAt: 1 });
  }
  reflector = await startReflector({ port: 0, logger: silentLogger, storage: blobs, caps: { maxDataBytes: 1000, maxDataBytesPerSession: 1500, maxDataBlobsPerSession: 10 } });
  base = reflector.url.replace(/^ws/, "http").replace(/\/$/, "");
});
afterEach(() => reflector.close());

async function put(path: string, body: Uint8Array<ArrayBuffer>, authorization = auth(A, tokenA)): Promise<{ status: number; error?: string }> {
  const res = await fetch(`${base}${path}`, { method: "PUT", body, headers: { authorization } });
  const json = (await res.json()) as { error?: string };
  return { status: res.status, ...(json.error ? { error: json.error } : {}) };
}

test("an upload streamed without a length is refused with 413 as soon as it passes the cap, before it ends", async () => {
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${base}/data/${A}/${blob(1)}`, { method: "PUT", headers: { authorization: auth(A, tokenA), "transfer-encoding": "chunked" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    // 1,200 bytes of a body that never ends: the answer must come without the end.
    for (let i = 0; i < 12; i++) req.write(Buffer.alloc(100, i));
  });
  expect(status).toBe(413);
  expect(JSON.parse(body).error).toMatch(/limit of 1000 bytes per blob/);
  const got = await fetch(`${base}/data/${A}/${blob(1)}`, { headers: { authorization: auth(A, tokenA) } });
  expect(got.status).toBe(404);
});

test("a declared length over the cap is refused before reading; quotas and immutability are enforced", async () => {
  expect(await put(`/data/${A}/${blob(1)}`, new Uint8Array(1001))).toMatchObject({ status: 413 });
  expect(await put(`/data/${A}/${blob(1)}`, new Uint8Array(1000).fill(9))).toEqual({ status: 201 });
  expect(await put(`/data/${A}/${blob(1)}`, new Uint8Array(1))).toMatchObject({ status: 409, error: expect.stringMatching(/already stored/) });
  expect(await put(`/data/${A}/${blob(2)}`, new Uint8Array(600))).toMatchObject({ status: 413, error: expect.stringMatching(/quota of 1500 bytes \(1000 used/) });
  const got = await fetch(`${base}/data/${A}/${blob(1)}`, { headers: { authorization: auth(A, tokenA) } });
  expect(got.status).toBe(200);
  expect(new Uint8Array(await got.arrayBuffer())).toEqual(new Uint8Array(1000).fill(9));
});

test("admission: no, malformed or wrong tokens get 401; a session stores only under its own id but may read another's blob", async () => {
  await put(`/data/${A}/${blob(1)}`, new Uint8Array([1, 2, 3]));
  const path = `${base}/data/${A}/${blob(1)}`;
  for (const authorization of [undefined, "Bearer nonsense", auth(A, tokenB), auth("sessionCCCCCCCCCCCCCCCCC", tokenA), `Basic ${Buffer.from("a:b").toString("base64")}`]) {
    const res = await fetch(path, authorization === undefined ? {} : { headers: { authorization } });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
  }
  expect(await put(`/data/${A}/${blob(2)}`, new Uint8Array(1), auth(B, tokenB))).toMatchObject({ status: 403 });
  expect((await fetch(path, { headers: { authorization: auth(B, tokenB) } })).status).toBe(200);
  expect((await fetch(`${base}/data/${A}/short`, { headers: { authorization: auth(A, tokenA) } })).status).toBe(404);
  expect((await fetch(path, { method: "DELETE", headers: { authorization: auth(A, tokenA) } })).status).toBe(405);
  expect((await fetch(`${base}/health`)).status).toBe(200);
});

test("CORS: a preflight from another origin may send the authorization header; answers carry the allow-origin", async () => {
  const pre = await fetch(`${base}/data/${A}/${blob(1)}`, { method: "OPTIONS", headers: { origin: "http://example.test", "access-control-request-method": "PUT" } });
  expect(pre.status).toBe(204);
  expect(pre.headers.get("access-control-allow-origin")).toBe("*");
  expect(pre.headers.get("access-control-allow-methods")).toMatch(/PUT/);
  expect(pre.headers.get("access-control-allow-headers")).toMatch(/authorization/);
  const denied = await fetch(`${base}/data/${A}/${blob(1)}`);
  expect(denied.headers.get("access-control-allow-origin")).toBe("*");
});

test("an upload trickled slower than the upload timeout is refused with 408 and frees its slot", async () => {
  await reflector.close();
  const blobs = createMemoryStore();
  const sessions = new SessionStore(blobs);
  const verifier = new Uint8Array(createHash("sha256").update(tokenA).digest());
  await sessions.create({ sessionId: A, persistentId: "p", tps: 20, verifier, check: new Uint8Array(4), createdAt: 1 });
  reflector = await startReflector({ port: 0, logger: silentLogger, storage: blobs, caps: { maxDataBytes: 1000, dataUploadTimeoutMs: 300 } });
  base = reflector.url.replace(/^ws/, "http").replace(/\/$/, "");
  const started = Date.now();
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${base}/data/${A}/${blob(1)}`, { method: "PUT", headers: { authorization: auth(A, tokenA), "content-length": "500" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.write(Buffer.alloc(10)); // 10 of the 500 bytes it announced, then nothing
  });
  expect(status).toBe(408);
  expect(JSON.parse(body).error).toMatch(/longer than this reflector allows \(300 ms, flag --data-upload-timeout-ms\)/);
  expect(Date.now() - started).toBeLessThan(5000);
  // The slot is free again, and nothing was stored.
  expect((await fetch(`${base}/data/${A}/${blob(1)}`, { headers: { authorization: auth(A, tokenA) } })).status).toBe(404);
  expect(await put(`/data/${A}/${blob(1)}`, new Uint8Array(100).fill(3))).toEqual({ status: 201 });
});
