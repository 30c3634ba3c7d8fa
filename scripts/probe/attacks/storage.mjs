// Attacks through the data directory: damaged log segments and meta files (10), and a directory
// the reflector cannot write (11).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { WebSocket } from "ws";
import { CloseCode, MessageType, encodeSend } from "@lockstep/protocol";
import { createFsStore } from "@lockstep/reflector";
import { counterModel, honestJoin, loadClient } from "../lib/clients.mjs";
import { MiB } from "../lib/format.mjs";
import { randomId } from "../lib/ids.mjs";
import { damageOnDisk, storedSessionIds } from "../lib/fs-log.mjs";
import { ROOT } from "../lib/processes.mjs";
import { newIdentity, rawJoin } from "../lib/raw.mjs";
import { sleep, until } from "../lib/time.mjs";

const CLI = join(ROOT, "reflector", "bin", "lockstep-reflector.js");

// ============================================================================ attack 10: damaged storage

/**
 * Attack 10: a raw session written entry by entry, the reflector stopped, the last log segment
 * truncated or overwritten with garbage, the reflector restarted; then a damaged meta record (a
 * byte flipped in the log file), under a raw Join and under a real client whose connection drops.
 * @param {import("../lib/scope.mjs").Scope} scope
 */
export async function attack10(scope) {
  const dataDir = scope.run.freshDir("a10-data");
  const idle = { sessionIdleMs: 200 }; // sessions leave memory soon after their last member, so joins read storage
  const r1 = await scope.reflector("a10-first", idle, { dataDir });
  const sends = 8;
  const truncated = newIdentity();
  const garbled = newIdentity();
  for (const id of [truncated, garbled]) {
    const c = await rawJoin(r1.url, id);
    // One Send at a time, each relayed (so stored) before the next: one log segment per entry.
    for (let i = 0; i < sends; i++) {
      c.send(encodeSend(randomBytes(200)));
      await c.next(MessageType.Relay);
    }
  }
  await r1.stop(); // members get ServerShutdown; no view-exits are stamped
  // The last log segment of each, through the data directory's store (the reflector is stopped):
  // one cut in half (a torn put), one replaced by garbage of the same size.
  const store = await createFsStore(dataDir);
  const lastSegment = async (id) => (await store.list(`sessions/${id.sessionId}/log/`)).at(-1);
  const t = await lastSegment(truncated);
  const tValue = await store.get(t);
  await store.put(t, tValue.subarray(0, Math.floor(tValue.length / 2)));
  const g = await lastSegment(garbled);
  await store.put(g, randomBytes((await store.get(g)).length));
  await store.close();
  const r2 = await scope.reflector("a10-second", idle, { dataDir });
  const recovered = async (id) => {
    try {
      const c = await rawJoin(r2.url, id);
      c.leave();
      return c.sync.seq;
    } catch (error) {
      return `refused ${error.code}`;
    }
  };
  const good = sends; // ViewJoin (seq 1) + sends; the last segment held the last Send
  const rTrunc = await recovered(truncated);
  const rGarbled = await recovered(garbled);

  // Garbage in a session's meta: a raw Join must be refused with SessionDamaged.
  const damaged = newIdentity();
  (await rawJoin(r2.url, damaged)).leave();
  await sleep(600); // dropped from memory
  damageOnDisk(dataDir, `sessions/${damaged.sessionId}/meta`); // a flipped byte in the log file, under the running reflector
  let rawCode;
  try {
    (await rawJoin(r2.url, damaged)).leave();
    rawCode = "admitted";
  } catch (error) {
    rawCode = error.code;
  }

  // The same under a real library client that is in the session when its connection drops: it
  // must not keep retrying a permanently damaged session.
  const client = await loadClient("a10");
  const Counter = counterModel(client, "Probe.DamagedCounter");
  let attempts = 0;
  const rejoinCloses = [];
  let counting = false;
  let stopped = false;
  let current;
  const socket = async (url) => {
    if (stopped) return new Promise(() => {}); // after the window: hang, never retry again
    if (counting) {
      attempts++;
      await sleep(1000); // let the reflector drop the emptied session, so the rejoin reads the damaged meta
    }
    current = new WebSocket(url, { maxPayload: 1024 * MiB });
    if (counting) current.once("close", (code) => rejoinCloses.push(code));
    return current;
  };
  const idsBefore = new Set(storedSessionIds(dataDir));
  const honest = await honestJoin(client, Counter, { url: r2.url, appId: "probe.damaged", name: `damaged-${randomId(6)}`, password: "pw", socket });
  honest.view.publish("probe", "inc");
  await until(() => honest.model.count === 1, 5000);
  const id = storedSessionIds(dataDir).find((d) => !idsBefore.has(d));
  damageOnDisk(dataDir, `sessions/${id}/meta`);
  counting = true;
  current.terminate(); // a network drop
  await sleep(5000);
  stopped = true;
  honest.leave().catch(() => undefined);

  const seqOk = (x) => (x === good ? `${x}/${good + 1}` : `${x} (want ${good}/${good + 1})`);
  return {
    figure:
      `last segment truncated → Sync up to seq ${seqOk(rTrunc)}, garbage → ${seqOk(rGarbled)}; ` +
      `damaged meta → raw Join ${rawCode === CloseCode.SessionDamaged ? "4012" : `got ${rawCode}`}, library client made ${attempts} attempts in 5 s (closed ${rejoinCloses.join(", ") || "-"})`,
    ok: rTrunc === good && rGarbled === good && rawCode === CloseCode.SessionDamaged && attempts <= 2,
  };
}

// ============================================================================ attack 11: read-only data directory

/**
 * Attack 11: the real CLI on a 0555 data directory (as uid/gid 65534 when root) must exit 1 naming it.
 * @param {import("../lib/scope.mjs").Scope} scope
 */
export async function attack11(scope) {
  const dataDir = join(scope.run.freshDir("a11"), "data");
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o555);
  // root writes through 0555; an unprivileged user does not.
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const child = scope.run.track(
    spawn(process.execPath, [CLI, "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], ...asNobody }),
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  // A reflector that does not check its directory listens instead: no need to wait the full 8 s then.
  const listened = until(() => /listening on/.test(out), 8000).then(() => sleep(1000));
  const code = await Promise.race([exited, listened.then(() => "running")]);
  if (code === "running") {
    child.kill("SIGKILL");
    await exited;
  }
  const listening = /listening on/.test(out);
  const message = err.trim().split("\n")[0].slice(0, 400);
  return {
    figure:
      code === "running"
        ? `still running on a read-only directory${listening ? " (it listened)" : " after 8 s"}`
        : `exit ${code}${listening ? " after it listened" : ""}: ${JSON.stringify(message)}`,
    ok: code === 1 && !listening && message.includes(dataDir),
  };
}
