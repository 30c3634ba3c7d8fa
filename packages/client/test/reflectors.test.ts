/**
 * Several reflector URLs (the nodes of a cluster): how the `reflector` option is read, which URL
 * each connection attempt goes to, which Redirect targets a client follows, and what the two
 * cluster close codes mean to a session (PROTOCOL.md §17).
 */
import { CloseCode } from "@lockstep/protocol";
import { JoinError } from "../src/errors";
import { classifyClose, isRetryable } from "../src/session/close-verdict";
import { MAX_HOPS_AT_ONCE, ReflectorRoute, redirectTarget, reflectorList, reflectorOption } from "../src/session/reflectors";

const A = "ws://10.0.0.1:8787/";
const B = "ws://10.0.0.2:8787/";
const C = "wss://node-c.example:443/";

describe("reflectorList", () => {
  test("one URL, several in one string (commas or whitespace), or an array; repeats dropped", () => {
    expect(reflectorList(A)).toEqual([A]);
    expect(reflectorList(`${A},${B}`)).toEqual([A, B]);
    expect(reflectorList(` ${A} ,  ${B}\n${C} `)).toEqual([A, B, C]);
    expect(reflectorList([A, `${B} ${C}`, A])).toEqual([A, B, C]);
  });

  test("a custom socket factory's scheme and the offline stand-in pass; they reach only that factory", () => {
    expect(reflectorList("mem://reflector-1/")).toEqual(["mem://reflector-1/"]);
    expect(reflectorList("offline:")).toEqual(["offline:"]);
  });

  test.each([
    ["http://127.0.0.1:8787/", /"http:\/\/127\.0\.0\.1:8787\/" is an HTTP URL: a reflector is reached over WebSocket, ws:\/\/127\.0\.0\.1:8787\//],
    ["https://reflector.example/", /is an HTTP URL: .*wss:\/\/reflector\.example\//],
    ["localhost:8787", /"localhost:8787" is not a ws:\/\/ or wss:\/\/ URL/],
    ["127.0.0.1:8787", /is not a URL: give ws:\/\/host:port\/ or wss:\/\/host\//],
    ["javascript:alert(1)", /is not a ws:\/\/ or wss:\/\/ URL/],
    ["", /names no URL/],
    [" , ", /names no URL/],
    [[], /names no URL/],
    [[A, 7], /an array with a non-string entry/],
    [8787, /must be a ws:\/\/ or wss:\/\/ URL, several of them .*got 8787/],
  ])("%j is refused with a JoinError that says what to give", (value, message) => {
    expect(() => reflectorList(value)).toThrow(JoinError);
    expect(() => reflectorList(value)).toThrow(message);
  });

  test("from a page's URL, only ws:// and wss:// count; the join parameters keep the list as one string", () => {
    expect(() => reflectorList("mem://reflector-1/", { webSocketOnly: true })).toThrow(/is not a ws:\/\/ or wss:\/\/ URL/);
    expect(() => reflectorList("offline:", { webSocketOnly: true })).toThrow(JoinError);
    expect(reflectorOption([A, `${B}\t${C}`], { webSocketOnly: true })).toBe(`${A}, ${B}, ${C}`);
    expect(reflectorList(reflectorOption(`${A} ${B}`))).toEqual([A, B]);
  });

  test("one bad entry in a list names that entry", () => {
    expect(() => reflectorList(`${A}, http://10.0.0.2:8787/`)).toThrow(/^Session\.join: reflector "http:\/\/10\.0\.0\.2:8787\/" is an HTTP URL/);
  });
});

describe("redirectTarget", () => {
  test("a ws:// or wss:// URL with a host is followed", () => {
    expect(redirectTarget(B, A)).toBe(B);
    expect(redirectTarget(C, A)).toBe(C);
    expect(redirectTarget("wss://x.example/", C)).toBe("wss://x.example/");
  });

  test.each([
    ["no URL", undefined, A],
    ["not a URL", "10.0.0.2:8787", A],
    ["another scheme", "http://10.0.0.2:8787/", A],
    ["a script", "javascript:alert(1)", A],
    ["off TLS (wss → ws)", B, C],
    ["absurdly long", `ws://x.example/${"a".repeat(3000)}`, A],
  ])("%s is not followed", (_what, url, from) => {
    expect(redirectTarget(url, from)).toBeUndefined();
  });
});

describe("ReflectorRoute", () => {
  test("a first pass tries the URLs in order; the one that worked is where rejoins start", () => {
    const route = new ReflectorRoute([A, B, C]);
    expect(route.next()).toBe(A);
    expect(route.failed(false)).toBe(true);
    expect(route.unreachable).toBe(false);
    expect(route.next()).toBe(B);
    route.opened();
    route.joined();
    // Lost while live: back to B first.
    expect(route.next()).toBe(B);
    expect(route.current).toBe(B);
  });

  test("a failed attempt rotates, wrapping around; every URL failing to open in a row is unreachable", () => {
    const route = new ReflectorRoute([A, B]);
    const seen: string[] = [];
    for (let i = 0; i < 2; i++) {
      seen.push(route.next());
      route.failed(false);
    }
    expect(seen).toEqual([A, B]);
    expect(route.unreachable).toBe(true);
    expect(route.next()).toBe(A);
    route.opened();
    expect(route.unreachable).toBe(false);
    // Opened, then ended before joining: still the next URL, but the node was there.
    route.failed(true);
    expect(route.unreachable).toBe(false);
    expect(route.next()).toBe(B);
  });

  test("a redirect sends one attempt to its target; if that fails, the list again where it was", () => {
    const route = new ReflectorRoute([A, B]);
    expect(route.next()).toBe(A);
    route.opened();
    expect(route.redirect(C)).toBe(true);
    expect(route.next()).toBe(C);
    expect(route.failed(false)).toBe(false); // not a configured URL: a first join backs off
    expect(route.unreachable).toBe(false);
    expect(route.next()).toBe(A);
  });

  test("a redirect to a configured URL goes on from there in the list", () => {
    const route = new ReflectorRoute([A, B, C]);
    route.next();
    route.redirect(C);
    expect(route.next()).toBe(C);
    route.joined();
    expect(route.next()).toBe(C);
    expect(route.failed(false)).toBe(true);
    expect(route.next()).toBe(A);
  });

  test("a redirect's target the session went live on is where rejoins start, until it fails", () => {
    const route = new ReflectorRoute([A, B]);
    route.next();
    route.opened();
    route.redirect(C);
    route.next();
    route.opened();
    route.joined();
    expect(route.next()).toBe(C);
    route.failed(false);
    expect(route.next()).toBe(A);
  });

  test(`redirects are followed at once ${MAX_HOPS_AT_ONCE} times in a row; a join starts the count again`, () => {
    const route = new ReflectorRoute([A]);
    const atOnce: boolean[] = [];
    for (let i = 0; i < MAX_HOPS_AT_ONCE + 2; i++) {
      route.next();
      atOnce.push(route.redirect(A));
    }
    expect(atOnce).toEqual([...Array(MAX_HOPS_AT_ONCE).fill(true), false, false]);
    route.next();
    route.joined();
    expect(route.redirect(B)).toBe(true);
  });

  test("a moved session goes on at the next URL (the same one, with one); moves count like redirects", () => {
    const route = new ReflectorRoute([A, B]);
    route.next();
    route.joined();
    expect(route.moved()).toBe(true);
    expect(route.next()).toBe(B);
    route.joined();
    route.moved();
    expect(route.next()).toBe(A);

    const one = new ReflectorRoute([A]);
    one.next();
    one.moved();
    expect(one.next()).toBe(A);
    for (let i = 1; i < MAX_HOPS_AT_ONCE; i++) expect(one.moved()).toBe(true);
    expect(one.moved()).toBe(false);
  });

  test("a session moved off a redirect's target goes back to the list, to the next URL", () => {
    const route = new ReflectorRoute([A, B]);
    route.next();
    route.redirect(C);
    route.next();
    route.joined();
    route.moved();
    expect(route.next()).toBe(B);
  });
});

describe("the cluster's close codes", () => {
  const joined = { joining: false, joinedOnce: true };
  const joining = { joining: true, joinedOnce: false };

  test("Redirect and SessionMoved are followed, joining or joined, never an error", () => {
    for (const session of [joined, joining]) {
      expect(classifyClose({ code: CloseCode.Redirect, reason: "Redirect" }, undefined, session)).toEqual({ kind: "redirect", detail: "close code 4017: Redirect" });
      expect(classifyClose({ code: CloseCode.SessionMoved, reason: "" }, undefined, session)).toEqual({ kind: "moved", detail: "close code 4018" });
    }
    // An Error frame with the code says the same, with its message.
    expect(classifyClose({ code: CloseCode.SessionMoved, reason: "" }, { code: CloseCode.SessionMoved, message: "node drained" }, joining)).toEqual({ kind: "moved", detail: "node drained (SessionMoved)" });
    expect(isRetryable(CloseCode.Redirect) && isRetryable(CloseCode.SessionMoved)).toBe(true);
    // The other codes keep their verdicts: a shutdown still fails a first join.
    expect(classifyClose({ code: CloseCode.ServerShutdown, reason: "" }, undefined, joining)).toMatchObject({ kind: "fatal" });
  });
});
