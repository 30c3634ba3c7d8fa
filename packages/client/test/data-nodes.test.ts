// The Data API of a session joined to several reflector nodes (a cluster, whose nodes share the
// blobs): a request that cannot reach one node goes to the next, and later ones start there.
import { DataError, httpDataAccess } from "../src/data/index";

function fakeFetch(down: Set<string>): { fetch: typeof globalThis.fetch; calls: string[] } {
  const calls: string[] = [];
  const fetch = (async (url: string | URL | Request) => {
    const text = String(url);
    calls.push(text);
    if ([...down].some((host) => text.includes(host))) throw new TypeError("fetch failed");
    return new Response(new Uint8Array([7]), { status: 200 });
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

const input = { wireSessionId: "space", accessToken: new Uint8Array(32), persistMaster: new Uint8Array(32) };

test("a node that cannot be reached is skipped, and the one that answered is asked first next time", async () => {
  const { fetch, calls } = fakeFetch(new Set(["a:1"]));
  const access = httpDataAccess({ ...input, reflector: ["ws://a:1/", "ws://b:2/"], fetch });
  expect(await access.get("space", "blob1")).toEqual(new Uint8Array([7]));
  expect(calls).toEqual(["http://a:1/data/space/blob1", "http://b:2/data/space/blob1"]);
  await access.put("blob2", new Uint8Array([1]));
  expect(calls.slice(2)).toEqual(["http://b:2/data/space/blob2"]);
});

test("every node down: one error naming them all", async () => {
  const { fetch } = fakeFetch(new Set(["a:1", "b:2"]));
  const access = httpDataAccess({ ...input, reflector: ["ws://a:1/", "wss://b:2/"], fetch });
  const error = await access.get("space", "blob1").then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(DataError);
  expect((error as DataError).message).toMatch(/could not reach any of the reflectors at http:\/\/a:1\/data\/, https:\/\/b:2\/data\//);
});

test("a refusal (an HTTP status) is an answer: no other node is tried", async () => {
  const calls: string[] = [];
  const fetch = (async (url: string | URL | Request) => {
    calls.push(String(url));
    return new Response(JSON.stringify({ error: "no" }), { status: 401 });
  }) as typeof globalThis.fetch;
  const access = httpDataAccess({ ...input, reflector: ["ws://a:1/", "ws://b:2/"], fetch });
  await expect(access.get("space", "blob1")).rejects.toMatchObject({ status: 401 });
  expect(calls).toHaveLength(1);
});
