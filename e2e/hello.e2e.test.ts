import { joined, joinUser, screenshots, sessionName, stateHashes, useTestBed } from "./harness";

const bed = useTestBed();

const count = (text: string | null): number => Number(text);

test("hello: two users count together, a reset in one shows in the other, a reload resumes the count", async () => {
  const url = bed.server.exampleUrl("hello", sessionName("hello"), "secret");
  const a = await joinUser(bed.browser, url);
  const b = await joinUser(bed.browser, url);
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
