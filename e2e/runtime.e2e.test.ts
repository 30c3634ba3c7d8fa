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
  // reflectorId: the keyed id the reflector knows the session by (derived from the password).
  expect(joining).toMatch(
    new RegExp(`^log: \\[Lockstep\\] Joining session \\(sessionId: ${ids.id}, persistentId: ${ids.persistentId}, versionId: ${ids.versionId}, viewId: ${ids.viewId}, reflectorId: [A-Za-z0-9_-]{43}\\)$`),
  );
  // Without the flag, the library says nothing.
  const quiet = await joinUser(bed.browser, bed.server.exampleUrl("hello", sessionName("quiet"), "pw"));
  expect(quiet.console.filter((line) => line.includes("[Lockstep]"))).toEqual([]);
  await Promise.all([user.context.close(), quiet.context.close()]);
});

test("another #pw= gets a session of its own: empty, showing no error, and neither page sees the other", async () => {
  const name = sessionName("pw");
  const owner = await joinUser(bed.browser, bed.server.exampleUrl("hello", name, "right"));
  await owner.page.waitForFunction(countAtLeast(3));
  // The session's wire id is derived from the password: another one reaches a different, new session.
  const other = await joinUser(bed.browser, bed.server.exampleUrl("hello", name, "other"));
  const views = (page: typeof owner.page) => page.evaluate(() => (window as unknown as { session: { model: { viewCount: number } } }).session.model.viewCount);
  const count = (page: typeof owner.page) => page.evaluate(() => (window as unknown as { session: { model: { count: number } } }).session.model.count);
  expect(await count(other.page)).toBeLessThan(await count(owner.page));
  expect(await views(other.page)).toBe(1);
  expect(await views(owner.page)).toBe(1);
  expect(await other.page.locator(".lockstep-toast-error").count()).toBe(0);
  expect(other.errors).toEqual([]);
  // The spinner is gone: the other page is simply joined.
  expect(await other.page.locator("#croquet_spinnerOverlay").isVisible()).toBe(false);
  await Promise.all([owner.context.close(), other.context.close()]);
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
