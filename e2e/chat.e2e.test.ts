import { joined, joinUser, screenshots, sessionName, stateHashes, useTestBed, type User } from "./harness";

const bed = useTestBed();

async function rename(user: User, name: string): Promise<void> {
  await user.page.locator("#name").fill(name);
  await user.page.locator("#name").press("Enter");
}

async function post(user: User, text: string): Promise<void> {
  await user.page.locator("#text").fill(text);
  await user.page.locator("#text").press("Enter");
}

const userNames = (user: User) => user.page.locator("#users li .name").allTextContents();

test("chat: names and messages show in the other page, the user list follows joins and exits, a reload keeps the history", async () => {
  const url = bed.server.exampleUrl("chat", sessionName("chat"), "chat-pw");
  const a = await joinUser(bed.browser, url);
  const b = await joinUser(bed.browser, url);
  await rename(a, "Alice");
  await rename(b, "Bob");
  await a.page.locator("#users li", { hasText: "Bob" }).waitFor();
  await b.page.locator("#users li.me", { hasText: "Bob" }).waitFor();
  await post(a, "hi Bob");
  const received = b.page.locator("#messages li.msg", { hasText: "hi Bob" });
  await received.waitFor();
  expect(await received.locator(".name").textContent()).toContain("Alice");
  await post(b, "hello Alice");
  await a.page.locator("#messages li.msg", { hasText: "hello Alice" }).waitFor();
  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  await screenshots("chat", [a, b]);

  // A third user comes and goes: the list follows view-join and view-exit.
  const c = await joinUser(bed.browser, url);
  await a.page.waitForFunction(() => document.querySelectorAll("#users li").length === 3);
  await c.context.close();
  await a.page.waitForFunction(() => document.querySelectorAll("#users li").length === 2);

  // Bob reloads: the history is there, and he is Bob again (his name is remembered by the page).
  await b.page.reload();
  await joined(b.page);
  await b.page.locator("#messages li.msg", { hasText: "hi Bob" }).waitFor();
  await b.page.locator("#messages li.msg", { hasText: "hello Alice" }).waitFor();
  await a.page.waitForFunction(() => document.querySelectorAll("#users li").length === 2);
  expect((await userNames(a)).some((n) => n.includes("Bob"))).toBe(true);
  const [ha2, hb2] = await stateHashes([a, b]);
  expect(ha2).toBe(hb2);
  expect([...a.errors, ...b.errors]).toEqual([]);
  await Promise.all([a.context.close(), b.context.close()]);
});

test("chat: a message sent while the reflector is down shows as pending, then appears once on both pages after it is back", async () => {
  const url = bed.server.exampleUrl("chat", sessionName("chat-offline"), "chat-pw");
  const a = await joinUser(bed.browser, url);
  const b = await joinUser(bed.browser, url);
  await post(a, "before the outage");
  await b.page.locator("#messages li.msg", { hasText: "before the outage" }).waitFor();
  await bed.stopServer();
  await a.page.waitForFunction(() => document.body.classList.contains("offline"));
  await post(a, "typed while offline");
  // Kept on screen, marked pending, and the input box is free for the next one.
  await a.page.locator("#messages li.msg.pending", { hasText: "typed while offline" }).waitFor();
  expect(await a.page.locator("#text").inputValue()).toBe("");
  await bed.startServer();
  for (const user of [a, b]) {
    await user.page.locator("#messages li.msg:not(.pending)", { hasText: "typed while offline" }).waitFor({ timeout: 30_000 });
    await user.page.waitForFunction(() => !document.body.classList.contains("offline"));
  }
  expect(await a.page.locator("#messages li.msg.pending").count()).toBe(0);
  for (const user of [a, b]) expect(await user.page.locator("#messages li.msg", { hasText: "typed while offline" }).count()).toBe(1);
  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  expect([...a.errors, ...b.errors]).toEqual([]);
  await Promise.all([a.context.close(), b.context.close()]);
});
