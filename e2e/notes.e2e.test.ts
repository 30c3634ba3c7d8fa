import { joinUser, screenshots, sessionName, stateHashes, useTestBed, type User } from "./harness";

const bed = useTestBed();

async function typeAtEnd(user: User, text: string): Promise<void> {
  const area = user.page.locator("#text");
  await area.click();
  await area.press("Control+End");
  await user.page.keyboard.type(text, { delay: 5 });
}

/**
 * Resolves once a console line of one of `users` matches `pattern` (already printed, or printed
 * within `timeout` ms); fails naming the pattern otherwise.
 */
async function consoleLine(users: readonly User[], pattern: RegExp, timeout = 10_000): Promise<void> {
  const waits = users.map((u) => u.page.waitForEvent("console", { predicate: (m) => pattern.test(m.text()), timeout }));
  for (const wait of waits) wait.catch(() => undefined);
  if (users.some((u) => u.console.some((line) => pattern.test(line)))) return;
  await Promise.any(waits).catch(() => {
    throw new Error(`no console line matched ${pattern} within ${timeout} ms`);
  });
}

const textOf = (user: User) => user.page.locator("#text").inputValue();
const waitForText = (user: User, part: string) =>
  user.page.waitForFunction((p) => (document.getElementById("text") as HTMLTextAreaElement).value.includes(p), part);

test("notes: two users edit one document under v1; after a server restart v2 code opens it migrated", async () => {
  const name = sessionName("notes");
  const v1 = bed.server.exampleUrl("notes/v1", name, "notes-pw", "&debug=session");
  const a = await joinUser(bed.browser, v1);
  const b = await joinUser(bed.browser, v1);
  expect(await a.page.textContent("#version")).toBe("v1");

  await typeAtEnd(a, " Alice was here.");
  await waitForText(b, "Alice was here.");
  await typeAtEnd(b, " Bob too.");
  await waitForText(a, "Bob too.");
  // Both edits landed, in the same place, on both screens.
  await a.page.waitForFunction(() => (document.getElementById("text") as HTMLTextAreaElement).value.endsWith(" Alice was here. Bob too."));
  await b.page.waitForFunction(() => (document.getElementById("text") as HTMLTextAreaElement).value.endsWith(" Alice was here. Bob too."));
  const typed = await textOf(a);
  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  await screenshots("notes-v1", [a, b]);

  // A reload joins the running session again: the text is there.
  await a.page.reload();
  await joinUser(bed.browser, v1).then((c) => c.context.close()); // a third user meanwhile, gone again
  await a.page.waitForFunction(() => (window as unknown as { session?: { viewId?: string } }).session?.viewId);
  await waitForText(a, "Bob too.");

  // Save now (the model's save delay may not be over) and leave. Only the session's first view
  // uploads: since a's reload that is b, so both flush; every replica logs the save once it is in
  // the stream, which may come after the flush returns.
  await Promise.all([a, b].map((u) => u.page.evaluate(() => (window as unknown as { session: { flushPersistence(): Promise<void> } }).session.flushPersistence())));
  await consoleLine([a, b], /\[Lockstep\] Persistent data saved \(\d+(\.\d)?K?B\)/);
  expect([...a.errors, ...b.errors]).toEqual([]);
  await Promise.all([a.context.close(), b.context.close()]);

  // Deploy v2: restart the server (same storage) and open the v2 build of the same session name.
  await bed.stopServer();
  await bed.startServer();
  const v2 = bed.server.exampleUrl("notes/v2", name, "notes-pw", "&debug=session");
  const c = await joinUser(bed.browser, v2);
  const d = await joinUser(bed.browser, v2);
  expect(await c.page.textContent("#version")).toBe("v2");
  expect(await textOf(c)).toBe(typed);
  await c.page.locator("#migrated").waitFor();
  const persistentId = await c.page.evaluate(() => (window as unknown as { session: { persistentId: string } }).session.persistentId);
  expect(c.console).toContain(`log: [Lockstep] Session loaded from persistent data (persistentId: ${persistentId})`);
  expect(c.console.some((line) => /^log: \[Lockstep\] Restoring \d+(\.\d)?K?B of persistent data$/.test(line))).toBe(true);
  // v2's own feature works on the migrated document, for both users.
  await c.page.locator("#tag-input").fill("migrated");
  await c.page.locator("#tag-input").press("Enter");
  await d.page.locator('#tags [data-tag="migrated"]').waitFor();
  expect(await textOf(d)).toBe(typed);
  const [hc, hd] = await stateHashes([c, d]);
  expect(hc).toBe(hd);
  await screenshots("notes-v2", [c, d]);
  expect([...c.errors, ...d.errors]).toEqual([]);
  await Promise.all([c.context.close(), d.context.close()]);
});
