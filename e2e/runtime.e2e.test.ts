import { createServer } from "node:net";
import { joinUser, openUser, sessionName, stateHashes, useTestBed } from "./harness";

const bed = useTestBed(async () => ({ reflectorPort: await freePort() }));

/** A loopback port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const countAtLeast = (n: number) => `Number(document.getElementById("count").textContent) >= ${n}`;

test("?debug=session prints the session's identity in the browser console", async () => {
  const url = bed.server.exampleUrl("hello", sessionName("debug"), "pw", "&debug=session");
  const user = await joinUser(bed.browser, url);
  const joining = user.console.find((line) => line.includes("[Lockstep] Joining session"));
  const ids = await user.page.evaluate(() => {
    const s = (window as unknown as { session: { id: string; persistentId: string; versionId: string; viewId: string } }).session;
    return { id: s.id, persistentId: s.persistentId, versionId: s.versionId, viewId: s.viewId };
  });
  expect(joining).toBe(`log: [Lockstep] Joining session (sessionId: ${ids.id}, persistentId: ${ids.persistentId}, versionId: ${ids.versionId}, viewId: ${ids.viewId})`);
  // Without the flag, the library says nothing.
  const quiet = await joinUser(bed.browser, bed.server.exampleUrl("hello", sessionName("quiet"), "pw"));
  expect(quiet.console.filter((line) => line.includes("[Lockstep]"))).toEqual([]);
  await Promise.all([user.context.close(), quiet.context.close()]);
});

test("a wrong #pw= shows a clear error on the page and joins nothing", async () => {
  const name = sessionName("pw");
  const owner = await joinUser(bed.browser, bed.server.exampleUrl("hello", name, "right"));
  const intruder = await openUser(bed.browser, bed.server.exampleUrl("hello", name, "wrong"));
  const toast = intruder.page.locator(".lockstep-toast-error");
  await toast.waitFor();
  expect(await toast.textContent()).toMatch(/wrong password for session "pw-/);
  expect(await intruder.page.evaluate(() => (window as unknown as { session?: { viewId?: string } }).session?.viewId)).toBeUndefined();
  // The spinner does not keep spinning over the error.
  expect(await intruder.page.locator("#lockstep-sync").isVisible()).toBe(false);
  await Promise.all([owner.context.close(), intruder.context.close()]);
});

test("an unreachable reflector gives a clear error on the page", async () => {
  const url = `${bed.server.url}hello/?q=${sessionName("down")}&reflector=${encodeURIComponent(`ws://127.0.0.1:${await freePort()}/`)}#pw=x`;
  const user = await openUser(bed.browser, url);
  const toast = user.page.locator(".lockstep-toast-error");
  await toast.waitFor();
  expect(await toast.textContent()).toMatch(/cannot reach the Lockstep reflector at ws:\/\/127\.0\.0\.1:\d+\/: is it running\?/);
  await user.context.close();
});

test("after the reflector goes away and comes back, both pages reconnect by themselves and stay in sync", async () => {
  const name = sessionName("drop");
  const url = bed.server.exampleUrl("hello", name, "pw");
  const a = await joinUser(bed.browser, url);
  const b = await joinUser(bed.browser, url);
  await b.page.waitForFunction(countAtLeast(2));
  await bed.stopServer();
  await a.page.locator(".lockstep-toast-warning", { hasText: "reconnecting" }).waitFor();
  await bed.startServer(); // the same reflector port: the pages' ?reflector= still points there
  await Promise.all([a, b].map((u) => u.page.locator(".lockstep-toast-status", { hasText: "Reconnected" }).waitFor()));
  await a.page.click("#reset");
  await b.page.waitForFunction(`Number(document.getElementById("count").textContent) <= 1`);
  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  expect([...a.errors, ...b.errors]).toEqual([]);
  await Promise.all([a.context.close(), b.context.close()]);
});

test("autoSleep: a page hidden for 10 s disconnects, and rejoins when it is visible again", async () => {
  const url = bed.server.exampleUrl("hello", sessionName("sleep"), "pw", "&debug=session");
  const a = await joinUser(bed.browser, url);
  const b = await joinUser(bed.browser, url);
  const setVisibility = (state: "hidden" | "visible") =>
    a.page.evaluate((s) => {
      Object.defineProperty(document, "visibilityState", { value: s, configurable: true });
      document.dispatchEvent(new Event("visibilitychange"));
    }, state);
  await setVisibility("hidden");
  await a.page.waitForEvent("console", { predicate: (msg) => msg.text().includes("Page hidden for 10 s"), timeout: 20_000 });
  await setVisibility("visible");
  await a.page.waitForEvent("console", { predicate: (msg) => msg.text().includes("[Lockstep] Rejoined session") });
  await a.page.click("#reset");
  await b.page.waitForFunction(`Number(document.getElementById("count").textContent) <= 1`);
  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  await Promise.all([a.context.close(), b.context.close()]);
});
