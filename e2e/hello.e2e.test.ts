import type { Browser } from "playwright-core";
import { joined, launchBrowser, joinUser, removeDir, screenshots, sessionName, startDevServer, stateHashes, type DevServer } from "./harness";

let browser: Browser;
let server: DevServer;
beforeAll(async () => {
  [browser, server] = await Promise.all([launchBrowser(), startDevServer()]);
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  if (server) removeDir(server.dataDir);
});

const count = (text: string | null): number => Number(text);

test("hello: two users count together, a reset in one shows in the other, a reload resumes the count", async () => {
  const url = server.exampleUrl("hello", sessionName("hello"), "secret");
  const a = await joinUser(browser, url);
  const b = await joinUser(browser, url);
  // Both climb together: the model counts once a second of session time.
  await b.page.waitForFunction(() => Number(document.getElementById("count")!.textContent) >= 3);
  await a.page.click("#reset");
  await b.page.waitForFunction(() => Number(document.getElementById("count")!.textContent) <= 1);
  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  await screenshots("hello", [a, b]);

  await a.page.waitForFunction(() => Number(document.getElementById("count")!.textContent) >= 2);
  const before = count(await b.page.textContent("#count"));
  await a.page.reload();
  await joined(a.page);
  // The reloaded page joins the running session: it resumes the shared count instead of starting at 0.
  expect(count(await a.page.textContent("#count"))).toBeGreaterThanOrEqual(before);
  const [ha2, hb2] = await stateHashes([a, b]);
  expect(ha2).toBe(hb2);
  expect([...a.errors, ...b.errors]).toEqual([]);
});
