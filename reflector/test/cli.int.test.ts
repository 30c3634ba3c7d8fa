import { WebSocket } from "ws";
import { main, USAGE } from "../src/cli";
import { fakeIo } from "./cli-io";
import { readyUrl } from "./cli-process";

describe("main", () => {
  test("bad arguments print the usage to stderr and exit 2 (at a terminal; else one JSON line)", async () => {
    const f = fakeIo({ isTTY: true });
    await main(["--bogus"], f.io);
    expect(f.exits).toEqual([2]);
    expect(f.err.join("\n")).toContain("unknown argument");
    expect(f.err.join("\n")).toContain(USAGE);
    expect(f.out).toEqual([]);
    const g = fakeIo();
    await main(["--bogus"], g.io);
    expect(g.exits).toEqual([2]);
    expect(g.err).toHaveLength(1);
    expect(JSON.parse(g.err[0]!)).toMatchObject({ level: "error", event: "usage.error", fields: { message: 'unknown argument "--bogus"' } });
  });

  test("--help prints the usage to stdout and exits 0", async () => {
    const f = fakeIo();
    await main(["--help"], f.io);
    expect(f.out).toEqual([USAGE]);
    expect(f.exits).toEqual([0]);
  });

  test("starts, prints the ready line, and shuts down cleanly on a signal", async () => {
    const f = fakeIo();
    await main(["--port", "0", "--log-level", "silent", "--memory"], f.io);
    expect(f.out).toHaveLength(1);
    const url = readyUrl(f.out[0]!);
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    expect(JSON.parse(f.out[0]!)).toMatchObject({ level: "info", event: "ready", fields: { message: `Lockstep reflector listening on ${url}` } });
    const ws = new WebSocket(url!);
    const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
    await new Promise((resolve) => ws.once("open", resolve));
    f.signal("SIGTERM");
    expect(await f.exit).toBe(0);
    expect(await closed).toBe(4007);
    expect(f.hasHandler()).toBe(false);
  });

  test("a port in use exits 1 with a message", async () => {
    const first = fakeIo();
    await main(["--port", "0", "--log-level", "silent", "--memory"], first.io);
    const port = /:(\d+)\/$/.exec(readyUrl(first.out[0]!)!)![1]!;
    const second = fakeIo();
    await main(["--port", port, "--log-level", "silent", "--memory"], second.io);
    expect(second.exits).toEqual([1]);
    expect(second.err.join("\n")).toContain(port);
    first.signal("SIGINT");
    expect(await first.exit).toBe(0);
  });
});
