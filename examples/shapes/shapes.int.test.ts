import { Session, type LockstepSession } from "@lockstep/client";
import { startReflector, silentLogger, type Reflector } from "@lockstep/reflector";
import { expectSame, hashesWhen, until } from "@lockstep/test-support";
import { ShapesModel } from "./model";

type Board = LockstepSession<ShapesModel>;

let reflector: Reflector;
beforeAll(async () => {
  reflector = await startReflector({ port: 0, host: "127.0.0.1", logger: silentLogger });
});
afterAll(() => reflector.close());

/** Every session a test joined; left after each test, even a failed one, so none outlives the reflector. */
const joined: Board[] = [];
afterEach(async () => {
  await Promise.all(joined.splice(0).map((s) => s.leave()));
});

async function join(name: string): Promise<Board> {
  const session = await Session.join({
    appId: "dev.lockstep.shapes",
    name,
    password: "pw",
    model: ShapesModel,
    reflector: reflector.url,
    tps: 60,
  });
  joined.push(session);
  return session;
}

function send(s: Board, event: string, data?: unknown): void {
  s.view.publish("shapes", event, data);
}

const shape = (s: Board, id: string) => s.model.shapes.get(id)!;
const copy = (s: Board) => structuredClone([...s.model.shapes.values()]);

test("every replica starts alike; a drag by one reaches all; a late joiner sees it; leaving releases grabs and cursors", async () => {
  const a = await join("board-1");
  const b = await join("board-1");
  await until(a, () => a.model.viewColors.has(b.viewId));
  expect(b.model.shapes).toEqual(a.model.shapes);
  expect(a.model.shapes.size).toBe(ShapesModel.COUNT);
  for (const s of a.model.shapes.values()) {
    expect(s.x - s.size / 2).toBeGreaterThanOrEqual(0);
    expect(s.x + s.size / 2).toBeLessThanOrEqual(ShapesModel.WIDTH);
    expect(s.y - s.size / 2).toBeGreaterThanOrEqual(0);
    expect(s.y + s.size / 2).toBeLessThanOrEqual(ShapesModel.HEIGHT);
    expect(s.owner).toBeNull();
  }

  const grabbed = hashesWhen([a, b], (s) => shape(s, "s0").owner === a.viewId);
  send(a, "grab", { viewId: a.viewId, id: "s0" });
  expectSame(await grabbed);
  const topZ = b.model.topZ;
  expect(shape(b, "s0").z).toBe(topZ);

  // b can neither take nor move a's shape; its pointer still counts.
  const at = { x: shape(b, "s0").x, y: shape(b, "s0").y };
  send(b, "grab", { viewId: b.viewId, id: "s0" });
  send(b, "move", { viewId: b.viewId, id: "s0", x: 10, y: 10 });
  send(b, "drop", { viewId: b.viewId, id: "s0", x: 10, y: 10 });
  send(b, "pointer", { viewId: b.viewId, x: 120, y: 80 });
  await until(a, () => a.model.cursors.has(b.viewId));
  expect(shape(a, "s0")).toMatchObject({ owner: a.viewId, ...at });
  expect(a.model.cursors.get(b.viewId)).toEqual({ x: 120, y: 80 });

  const moved = hashesWhen([a, b], (s) => shape(s, "s0").x === 400);
  send(a, "pointer", { viewId: a.viewId, x: 390, y: 240 });
  send(a, "move", { viewId: a.viewId, id: "s0", x: 400, y: 250 });
  expectSame(await moved);
  expect(shape(b, "s0")).toMatchObject({ x: 400, y: 250, owner: a.viewId });

  // A late joiner restores the board as it is: the shape mid-drag, both cursors.
  const c = await join("board-1");
  expect(c.model.shapes).toEqual(a.model.shapes);
  expect(c.model.cursors).toEqual(new Map([[b.viewId, { x: 120, y: 80 }], [a.viewId, { x: 390, y: 240 }]]));

  // The dragger leaves mid-drag: its grab is released and its cursor removed everywhere.
  const left = hashesWhen([b, c], (s) => !s.model.viewColors.has(a.viewId));
  await a.leave();
  expectSame(await left);
  expect(shape(c, "s0")).toMatchObject({ owner: null, x: 400, y: 250 });
  expect([...c.model.cursors.keys()]).toEqual([b.viewId]);

  // Now b can take it; a drop off the board keeps the whole shape on it.
  const dropped = hashesWhen([b, c], (s) => shape(s, "s0").owner === null && shape(s, "s0").x !== 400);
  send(b, "grab", { viewId: b.viewId, id: "s0" });
  send(b, "drop", { viewId: b.viewId, id: "s0", x: -50, y: 9999 });
  expectSame(await dropped);
  const s0 = shape(c, "s0");
  expect([s0.x, s0.y]).toEqual([s0.size / 2, ShapesModel.HEIGHT - s0.size / 2]);
  expect(s0.z).toBe(topZ); // already on top: no new layer

  // pointer-out hides a cursor.
  const out = hashesWhen([b, c], (s) => s.model.cursors.size === 0);
  send(b, "pointer-out", { viewId: b.viewId });
  expectSame(await out);
});

test("malformed and unauthorized events change nothing; coordinates are clamped", async () => {
  const a = await join("board-2");
  const b = await join("board-2");
  await until(a, () => a.model.viewColors.size === 2);
  const before = copy(a);

  send(a, "grab");
  send(a, "grab", null);
  send(a, "grab", "s1");
  send(a, "grab", { viewId: a.viewId, id: "nope" });
  send(a, "grab", { viewId: a.viewId, id: { toString: "s1" } });
  send(a, "grab", { viewId: "ghost-view", id: "s1" });
  send(a, "move", { viewId: a.viewId, id: "s1", x: 5, y: 5 }); // not grabbed
  send(a, "drop", { viewId: a.viewId, id: "s1", x: 5, y: 5 });
  send(a, "pointer", { viewId: a.viewId, x: Number.NaN, y: 1 });
  send(a, "pointer", { viewId: a.viewId, x: "1", y: 1 });
  send(a, "pointer", { viewId: a.viewId, x: Number.POSITIVE_INFINITY, y: 1 });
  send(a, "pointer", { viewId: "ghost-view", x: 1, y: 1 });
  send(a, "pointer-out", { viewId: b.viewId, extra: [1, 2, 3] });
  send(a, "pointer-out", 7);
  // Now a grabs s1 for real; malformed moves of it still do nothing, huge ones are clamped.
  send(a, "grab", { viewId: a.viewId, id: "s1" });
  send(a, "move", { viewId: a.viewId, id: "s1", x: Number.NaN, y: 100 });
  send(a, "move", { viewId: a.viewId, id: "s1", x: 100 });
  send(a, "move", { viewId: a.viewId, id: "s1", x: null, y: null });
  send(a, "drop", { viewId: a.viewId, id: "s1", x: "100", y: 100 }); // drops without moving
  send(a, "grab", { viewId: a.viewId, id: "s1" });
  send(a, "move", { viewId: a.viewId, id: "s1", x: 1e12, y: -1e12 });
  send(a, "pointer", { viewId: a.viewId, x: -5, y: 1e6 });
  send(a, "pointer", { viewId: a.viewId, x: 123.456, y: 78.91 });

  const done = hashesWhen([a, b], (s) => shape(s, "s1").owner === null && s.model.cursors.get(a.viewId)?.x === 123.5);
  send(a, "drop", { viewId: a.viewId, id: "s1" });
  expectSame(await done);

  const s1 = shape(b, "s1");
  expect([s1.x, s1.y]).toEqual([ShapesModel.WIDTH - s1.size / 2, s1.size / 2]);
  expect(b.model.cursors).toEqual(new Map([[a.viewId, { x: 123.5, y: 78.9 }]]));
  const after = copy(b);
  const unchanged = (list: typeof before) => list.filter((s) => s.id !== "s1");
  expect(unchanged(after)).toEqual(unchanged(before));
  expect(after.find((s) => s.id === "s1")).toMatchObject({ ...before.find((s) => s.id === "s1"), x: s1.x, y: s1.y, z: s1.z });
  expect([...b.model.viewColors.keys()]).toEqual([a.viewId, b.viewId]);
});

test("two sessions of another name start from other positions", async () => {
  const a = await join("board-3");
  const b = await join("board-4");
  expect(copy(a)).not.toEqual(copy(b));
});
