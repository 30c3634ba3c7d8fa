import { joinUser, screenshots, sessionName, stateHashes, useTestBed, type User } from "./harness";

const bed = useTestBed();

/** Waits until the page shows exactly these todos. */
const waitForTodos = (user: User, expected: string[]) =>
  user.page.waitForFunction(
    (want) => JSON.stringify(Array.from(document.querySelectorAll("#todos li")).map((li) => `${li.classList.contains("done") ? "✓ " : ""}${li.querySelector(".text")!.textContent}`)) === JSON.stringify(want),
    expected,
  );

const waitForText = (user: User, selector: string, text: string) =>
  user.page.waitForFunction(([s, t]) => document.querySelector(s!)?.textContent === t, [selector, text] as const);

async function add(user: User, text: string): Promise<void> {
  await user.page.fill("#new", text);
  await user.page.press("#new", "Enter");
}

test("react-todo: two users share one list; an action in one re-renders the other; status and window count shown", async () => {
  const url = bed.server.exampleUrl("react-todo", sessionName("react-todo"), "secret");
  const a = await joinUser(bed.browser, url);
  const b = await joinUser(bed.browser, url);
  for (const user of [a, b]) {
    await waitForText(user, "#status", "connected");
    await waitForText(user, "#views", "2");
  }

  await add(a, "Buy milk");
  await waitForTodos(b, ["Buy milk"]);
  // A click, not check(): the box shows the model, which changes a round trip later.
  await b.page.click("#todos li:has-text('Buy milk') input[type=checkbox]");
  await waitForTodos(a, ["✓ Buy milk"]);
  await waitForTodos(b, ["✓ Buy milk"]);
  await add(b, "Walk the dog");
  await add(a, "Water the plants");
  await waitForTodos(a, ["✓ Buy milk", "Walk the dog", "Water the plants"]);
  await a.page.click("#todos li:has-text('Walk the dog') .delete");
  await waitForTodos(b, ["✓ Buy milk", "Water the plants"]);
  await b.page.click("#clear");
  await waitForTodos(a, ["Water the plants"]);
  await waitForText(a, "#left", "1");
  // b cleared, but a may re-render first: b shows it once its own event came back.
  await waitForTodos(b, ["Water the plants"]);

  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  // StrictMode mounted each provider twice: still one view per page.
  for (const user of [a, b]) expect(await user.page.textContent("#views")).toBe("2");
  await screenshots("react-todo", [a, b]);

  // One user leaves: the other's window count follows.
  await b.context.close();
  await waitForText(a, "#views", "1");
  expect([...a.errors, ...b.errors]).toEqual([]);
  await a.context.close();
});
