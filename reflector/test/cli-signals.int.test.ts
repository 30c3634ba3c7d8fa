/**
 * The CLI's shutdown bounds: a second signal exits 1 at once, and a drain that outlasts
 * --drain-timeout-ms (here: a client that never answers the close) exits 1 when it runs out.
 */
import { WebSocket } from "ws";
import { main } from "../src/cli";
import { fakeIo } from "./cli-io";
import { readyUrl } from "./cli-process";

async function openClient(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  ws.on("error", () => undefined);
  await new Promise((resolve) => ws.once("open", resolve));
  return ws;
}

test("a second signal during the drain exits 1 at once", async () => {
  const f = fakeIo();
  await main(["--port", "0", "--host", "127.0.0.1", "--memory", "--log-level", "silent"], f.io);
  const ws = await openClient(readyUrl(f.out[0]!)!);
  // Not reading: the drain waits for its closing handshake.
  ws.pause();
  f.signal("SIGTERM");
  f.signal("SIGINT");
  expect(f.exits).toEqual([1]);
  expect(JSON.parse(f.err[0]!)).toMatchObject({ level: "error", event: "shutdown.forced", fields: { signal: "SIGINT" } });
  // In a real process that was the end; here the in-process reflector finishes its drain.
  ws.terminate();
  await f.exitedTimes(2);
  expect(f.exits).toEqual([1, 0]);
});

test("a drain longer than --drain-timeout-ms exits 1 when it runs out", async () => {
  const f = fakeIo();
  await main(["--port", "0", "--host", "127.0.0.1", "--memory", "--log-level", "silent", "--drain-timeout-ms", "100"], f.io);
  const ws = await openClient(readyUrl(f.out[0]!)!);
  ws.pause();
  const started = Date.now();
  f.signal("SIGTERM");
  expect(await f.exit).toBe(1);
  // Not before the time it was given (had the drain ended first, by cutting the client off after 1 s, the exit would be 0).
  expect(Date.now() - started).toBeGreaterThanOrEqual(95);
  expect(JSON.parse(f.err[0]!)).toMatchObject({ level: "error", event: "shutdown.timeout", fields: { drainTimeoutMs: 100 } });
  ws.terminate();
  await f.exitedTimes(2);
});
