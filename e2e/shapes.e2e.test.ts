import { joined, joinUser, screenshots, sessionName, stateHashes, useTestBed, type User } from "./harness";

const bed = useTestBed();

interface ShapeState {
  x: number;
  y: number;
  owner: string;
}

const shapeIn = (user: User, id: string): Promise<ShapeState> =>
  user.page.evaluate((shapeId) => {
    const el = document.querySelector(`#board g.shape[data-shape-id="${shapeId}"]`)!;
    return { x: Number(el.getAttribute("data-x")), y: Number(el.getAttribute("data-y")), owner: el.getAttribute("data-owner") ?? "" };
  }, id);

/**
 * A shape whose centre is not covered by another one: shapes start at random places, so the
 * first one may lie under another, and a press on its centre would grab that other shape.
 */
const uncoveredShape = (user: User): Promise<string> =>
  user.page.evaluate(() => {
    for (const el of Array.from(document.querySelectorAll("#board g.shape"))) {
      const r = el.getBoundingClientRect();
      if (document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)?.closest("g.shape") === el) return el.getAttribute("data-shape-id")!;
    }
    throw new Error("every shape's centre is covered by another shape");
  });

/** Screen pixels per board unit (the 800×500 board is scaled to fit the page). */
const scaleOf = (user: User): Promise<number> =>
  user.page.evaluate(() => (document.getElementById("board") as unknown as SVGSVGElement).getBoundingClientRect().width / 800);

test("shapes: a drag in one page moves the shape in the other, with the dragger's cursor live; a reload keeps positions", async () => {
  const url = bed.server.exampleUrl("shapes", sessionName("shapes"), "shapes-pw");
  const a = await joinUser(bed.browser, url);
  const b = await joinUser(bed.browser, url);
  const viewA = await joined(a.page);
  await b.page.locator("#board g.shape").first().waitFor();
  await a.page.locator("#board g.shape").first().waitFor();
  const id = await uncoveredShape(a);
  const selector = `#board g.shape[data-shape-id="${id}"]`;

  const start = await shapeIn(a, id);
  const scale = await scaleOf(a);
  // Move towards the board's middle, so clamping at the edges never shortens the move.
  const dx = (start.x < 400 ? 120 : -120) * scale;
  const dy = (start.y < 250 ? 80 : -80) * scale;
  const box = (await a.page.locator(selector).boundingBox())!;
  const from = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  await a.page.mouse.move(from.x, from.y);
  await a.page.mouse.down();
  await a.page.mouse.move(from.x + dx / 2, from.y + dy / 2, { steps: 5 });
  // Mid-drag, the other page shows the shape held by a and a's pointer.
  await b.page.waitForFunction((p) => document.querySelector(p.selector)!.getAttribute("data-owner") === p.owner, { selector, owner: viewA });
  await b.page.locator(`#board g.cursor[data-view-id="${viewA}"]`).waitFor();
  await a.page.mouse.move(from.x + dx, from.y + dy, { steps: 5 });
  await a.page.mouse.up();
  // Both pages have rendered the drop (a's last frame may still show the last move before it).
  const dropped = (sel: string): boolean => document.querySelector(sel)!.getAttribute("data-owner") === "";
  await Promise.all([a.page.waitForFunction(dropped, selector), b.page.waitForFunction(dropped, selector)]);

  const inA = await shapeIn(a, id);
  await b.page.waitForFunction(
    (p) => {
      const el = document.querySelector(p.selector)!;
      return Number(el.getAttribute("data-x")) === p.x && Number(el.getAttribute("data-y")) === p.y;
    },
    { x: inA.x, y: inA.y, selector },
  );
  expect(Math.abs(inA.x - start.x - dx / scale)).toBeLessThan(4);
  expect(Math.abs(inA.y - start.y - dy / scale)).toBeLessThan(4);
  // View-side smoothing settles exactly on the model position.
  await b.page.waitForFunction(
    (p) => document.querySelector(p.selector)!.getAttribute("transform") === `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})`,
    { x: inA.x, y: inA.y, selector },
  );
  const [ha, hb] = await stateHashes([a, b]);
  expect(ha).toBe(hb);
  await screenshots("shapes", [a, b]);

  // A reload joins the running session: the shape is where it was left.
  await b.page.reload();
  await joined(b.page);
  await b.page.locator(selector).waitFor();
  expect(await shapeIn(b, id)).toEqual({ x: inA.x, y: inA.y, owner: "" });
  const [ha2, hb2] = await stateHashes([a, b]);
  expect(ha2).toBe(hb2);
  expect([...a.errors, ...b.errors]).toEqual([]);
  await Promise.all([a.context.close(), b.context.close()]);
});
